"""Optical flow between consecutive aligned frames — TV-L1 (the MOL flow target) and Farnebäck (a classical
reference) — and the Middlebury colour coding of flow fields. No JAX."""

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


def farneback_flow(frames: np.ndarray) -> np.ndarray:
  """frames (T, S, S) uint8 grey → (T−1, S, S, 2) float32 (dx, dy): OpenCV's Farnebäck flow of frame t
  towards t+1 (pyramid scale 0.5, 3 levels, window 9 — a window that fits 64-px faces)."""
  import cv2
  frames = np.asarray(frames)
  out = np.empty((max(len(frames) - 1, 0), *frames.shape[1:], 2), np.float32)
  for t in range(len(frames) - 1):
    out[t] = cv2.calcOpticalFlowFarneback(frames[t], frames[t + 1], None, 0.5, 3, 9, 3, 5, 1.1, 0)
  return out


def _middlebury_wheel() -> np.ndarray:
  """(55, 3) RGB in [0, 1]: the Middlebury colour wheel, six segments in which one channel ramps while
  another is full — red→yellow (15), yellow→green (6), green→cyan (4), cyan→blue (11), blue→magenta (13),
  magenta→red (6)."""
  rows = []
  # (length, ramping channel, full channel, rising?)
  for n, ramp, full, rising in ((15, 1, 0, True), (6, 0, 1, False), (4, 2, 1, True), (11, 1, 2, False),
                                (13, 0, 2, True), (6, 2, 0, False)):
    for i in range(n):
      c = np.zeros(3)
      c[full] = 255
      c[ramp] = np.floor(255 * i / n) if rising else 255 - np.floor(255 * i / n)
      rows.append(c)
  return np.array(rows) / 255


def flow_colour(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
  """(..., H, W, 2) flow → (..., H, W, 3) uint8 RGB in the Middlebury colour coding: hue = direction
  (right red, down yellow-green, left cyan, up blue-magenta), saturation = magnitude / `max_magnitude`
  (default: the largest in `flow`), white = no motion, darkened beyond the maximum. Pass one maximum to
  draw several fields on the same scale."""
  flow = np.asarray(flow, np.float64)
  u, v = flow[..., 0], flow[..., 1]
  magnitude = np.hypot(u, v)
  scale = max(float(magnitude.max()) if max_magnitude is None else float(max_magnitude), 1e-9)
  radius = magnitude / scale
  wheel = _middlebury_wheel()
  position = (np.arctan2(-v, -u) / np.pi + 1) / 2 * (len(wheel) - 1)     # hue position along the wheel
  k0 = np.floor(position).astype(int)
  k1 = (k0 + 1) % len(wheel)
  f = (position - k0)[..., None]
  colour = (1 - f) * wheel[k0] + f * wheel[k1]
  r = radius[..., None]
  colour = np.where(r <= 1, 1 - r * (1 - colour), colour * 0.75)
  return np.round(255 * colour).astype(np.uint8)
