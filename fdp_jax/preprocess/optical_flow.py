"""TV-L1 optical flow between consecutive aligned frames, the MOL flow target. No JAX."""

from __future__ import annotations

import numpy as np


def tvl1_flow(frames: np.ndarray) -> np.ndarray:
  """frames (T, S, S) uint8 grey → (T−1, S, S, 2) float32 (dx, dy) flow of frame t towards frame t+1.

  OpenCV-contrib's Dual TV-L1 with its default parameters, as the released MOL preprocessing uses it.
  """
  import cv2
  if not hasattr(cv2, 'optflow'):
    raise RuntimeError('TV-L1 flow needs opencv-contrib: pip install opencv-contrib-python-headless')
  frames = np.asarray(frames)
  if frames.ndim != 3 or frames.dtype != np.uint8:
    raise ValueError(f'frames must be uint8 (T, S, S), got {frames.dtype} {frames.shape}')
  tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
  size = frames.shape[1:]
  out = np.empty((max(len(frames) - 1, 0), *size, 2), np.float32)
  for t in range(len(frames) - 1):
    out[t] = tvl1.calc(frames[t], frames[t + 1], None)
  return out
