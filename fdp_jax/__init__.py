"""fdp_jax: FDP and MOL micro-expression recognition in JAX/Flax."""
