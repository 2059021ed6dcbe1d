"""Preprocessing shared by the corpus builders, the input pipeline and prediction (numpy, no JAX)."""
