"""The Linen modules of the model families: the LGFAT frame encoder (`lgfat`), rank pooling, the
dynamic-image decoder, FDP as the paper describes it (`fdp`), FDP as released (`fdp_released`) and MOL as
released (`mol`), on the shared layers of `layers`. Which module a config builds, its losses and outputs:
`fdp_jax.families`."""
