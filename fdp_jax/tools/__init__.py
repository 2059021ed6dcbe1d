"""Command-line tools over the library: each runs as `python -m fdp_jax.tools.<name>`."""
