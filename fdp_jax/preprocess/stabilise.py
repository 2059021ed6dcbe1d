"""Registering a clip's frames to each other: what undoes per-frame alignment jitter.

A pipeline that aligns every frame on its own landmarks (MOL's release) leaves each frame off by its own
small similarity transform — on real faces about as large as a micro-expression's motion
(benchmarks/README.md, "Face motion between aligned frames"). `register_to_clip_mean` fits, for each
sampled frame, the affine warp that best maps the clip's mean frame onto it (OpenCV's ECC, Evangelidis &
Psarakis 2008, image-based: it needs no landmarks) and resamples the frame through it, so that the frames
keep only what moves inside the face. `carry_flow` and `carry_points` move flow and landmark targets into
the registered frames. Host-side numpy/OpenCV; nothing here is jitted.

A warp A (2, 3) maps a registered pixel x to the original frame's pixel A·[x, 1] (OpenCV's
WARP_INVERSE_MAP convention): registered(x) = original(A·[x, 1]).
"""

from __future__ import annotations

import cv2
import numpy as np

STABILISE = ('none', 'affine')

# ECC's stopping rule: at most this many Gauss-Newton iterations, or a parameter change below EPS.
ITERATIONS, EPS = 30, 1e-4


def _fit(reference: np.ndarray, frame: np.ndarray) -> np.ndarray:
  """The (2, 3) affine warp with frame(A·x) ≈ reference(x); the identity where ECC does not converge."""
  warp = np.eye(2, 3, dtype=np.float32)
  try:
    _, warp = cv2.findTransformECC(reference, frame, warp, cv2.MOTION_AFFINE,
                                   (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ITERATIONS, EPS), None, 3)
  except cv2.error:   # a flat or featureless frame: ECC's correlation is undefined; leave the frame as it is
    return np.eye(2, 3, dtype=np.float32)
  return warp


def register_to_clip_mean(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """frames (T, S, S) uint8 or float → (registered frames (T, S, S) float32 on the input's scale, warps
  (T, 2, 3) float32). Each frame is warped onto the mean of the T frames; pixels the warp brings in from
  outside the frame repeat the border."""
  frames = np.asarray(frames, np.float32)
  reference = frames.mean(axis=0)
  warps = np.stack([_fit(reference, f) for f in frames])
  size = frames.shape[2], frames.shape[1]
  registered = np.stack([cv2.warpAffine(f, w, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                        borderMode=cv2.BORDER_REPLICATE) for f, w in zip(frames, warps)])
  return registered, warps


def _apply(warp: np.ndarray, points: np.ndarray) -> np.ndarray:
  return points @ warp[:, :2].T + warp[:, 2]


def _invert(warp: np.ndarray) -> np.ndarray:
  return cv2.invertAffineTransform(warp.astype(np.float64)).astype(np.float32)


def carry_points(points: np.ndarray, warps: np.ndarray) -> np.ndarray:
  """Points (T, K, 2) (x, y) of the original frames → the same points in the registered frames
  (A_t⁻¹ applied to frame t's points); `warps` (T, 2, 3)."""
  return np.stack([_apply(_invert(w), p) for w, p in zip(warps, np.asarray(points, np.float32))])


def carry_flow(flow: np.ndarray, warps: np.ndarray) -> np.ndarray:
  """Flow (T−1, S, S, 2) from frame t to t+1 of the original frames → the flow between the registered
  frames: a registered pixel x shows the original point p = A_t·x, which moves to p + F_t(p) in frame t+1,
  which is A_{t+1}⁻¹(p + F_t(p)) in registered frame t+1. F_t(p) is read bilinearly (border repeated);
  `warps` (T, 2, 3)."""
  flow = np.asarray(flow, np.float32)
  h, w = flow.shape[1:3]
  grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), axis=-1)
  out = np.empty_like(flow)
  for t in range(len(flow)):
    p = _apply(warps[t], grid)                                                          # (S, S, 2)
    moved = cv2.remap(flow[t], p[..., 0], p[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out[t] = _apply(_invert(warps[t + 1]), p + moved) - grid
  return out
