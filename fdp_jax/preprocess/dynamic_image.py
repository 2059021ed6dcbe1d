"""Dynamic-image targets: approximate rank pooling of grey frames, min-max scaled to uint8.

This is the numpy twin of `fdp_jax.models.rank_pooling.approximate_rank_pooling`, used where no JAX
should run (the input pipeline's worker threads); `arp_coefficients` is the one definition of the coefficients
both use, and the tests check that the two poolings agree.
"""

from __future__ import annotations

import numpy as np


def arp_coefficients(num_frames: int) -> np.ndarray:
  """Bilen et al.'s exact coefficients α_t = 2(T − t + 1) − (T + 1)(H_T − H_{t−1}), t = 1..T; (T,) float64."""
  t = np.arange(1, num_frames + 1, dtype=np.float64)
  harmonic = np.concatenate([[0.0], np.cumsum(1.0 / t)])      # H_0 .. H_T
  return 2.0 * (num_frames - t + 1) - (num_frames + 1) * (harmonic[num_frames] - harmonic[:-1])


def dynamic_image_raw(frames: np.ndarray) -> np.ndarray:
  """frames: (T, H, W[, C]) float in [0, 1], chronological → Σ_t α_t frame_t, (H, W[, C]) float32."""
  frames = np.asarray(frames, np.float64)
  return np.tensordot(arp_coefficients(frames.shape[0]), frames, axes=(0, 0)).astype(np.float32)


def dynamic_image_uint8(frames: np.ndarray) -> np.ndarray:
  """The released target: the raw dynamic image min-max normalised to [0, 255] and truncated to uint8.

  frames: (T, H, W) or (T, H, W, 1) float in [0, 1] → (H, W) uint8. A clip without motion (constant raw
  image) gives all zeros instead of dividing by zero.
  """
  raw = dynamic_image_raw(frames)
  if raw.ndim == 3:
    raw = raw[..., 0]
  raw = raw.astype(np.float64)
  lo, hi = raw.min(), raw.max()
  if hi - lo <= 1e-12:
    return np.zeros(raw.shape, np.uint8)
  return ((raw - lo) * (255.0 / (hi - lo))).astype(np.uint8)
