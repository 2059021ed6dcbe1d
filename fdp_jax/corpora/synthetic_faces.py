"""Procedural micro-expression clips with exact landmarks and optical flow (numpy only).

Each subject is an analytic grey face F(p): smooth ellipses, sigmoids and Gaussians for the outline,
eyes, brows, nose shading and lips, plus a low-frequency texture of Gaussian blobs and sinusoids. A clip
moves that face by a forward map of canonical face coordinates p to image coordinates,

  phi_t(p) = c + R_t (p + a_t G(p) - c) + s_t,

where G is a class-specific, localised AU displacement field (a sum of Gaussian-windowed vectors, its
maximum magnitude 1-2 px on a 128-px face), a_t in [0, 1] the onset -> apex -> offset intensity profile, and
R_t, s_t a small head jitter about the image centre c. Frame t is F evaluated at phi_t^{-1}(x) for every
(2x2 supersampled) pixel x, so landmarks (phi_t of the canonical landmarks) and the flow between frames
(phi_{t+1}(phi_t^{-1}(x)) - x) are exact, not estimated.

Coordinates are (x, y) pixels of the stored frame, y pointing down; the centre of the pixel in row i,
column j is (j, i). Geometry constants are written in pixels of a 128-px face and scaled by size / 128.
Appearance (placement jitter of several px) varies by subject far more than the AU motion, and the label
only enters through the motion, so no single frame gives the class away.

`face_drawing` draws the subjects' faces, `face_motion` moves them; this module holds the corpus's classes and
turns a subject and a clip's motion into frames and a record.
"""

from __future__ import annotations

import numpy as np

from fdp_jax.corpora.face_drawing import Subject, face_intensity, pixel_grid
from fdp_jax.corpora.face_motion import AlignmentJitter, ClipMotion, make_motion

CLASS_NAMES = ('happiness', 'surprise', 'disgust', 'repression', 'others')
# CASME II samples per class (same order), the target class proportions of every subject.
CASME2_CLASS_COUNTS = (32, 25, 63, 27, 99)
CORPUS = 'synthetic_me'

_NOISE_GREY = 1.0      # sensor noise std in grey levels
_FLICKER = 0.01        # per-frame brightness gain std


def render_frames(subject: Subject, motion: ClipMotion, noise_rng: np.random.Generator | None = None,
                  quantize: bool = True) -> np.ndarray:
  """(T, S, S, 1) uint8 frames; `noise_rng` None renders without sensor noise and flicker, and
  `quantize=False` returns the float32 grey levels before rounding (for exact-flow checks)."""
  s = subject.image_size
  points = pixel_grid(s, 2).reshape(-1, 2)
  c = (s - 1) / 2
  xy = pixel_grid(s)
  # Lighting is fixed in image space (the face moves under it), unlike the texture.
  light = 1 + (subject.lighting[0] * (xy[..., 0] - c) + subject.lighting[1] * (xy[..., 1] - c)) / s
  frames = np.empty((len(motion.intensity), s, s), np.float32)
  for t in range(len(frames)):  # one frame at a time keeps the temporaries in cache
    grey = face_intensity(subject, motion.inverse(points, t)).reshape(2 * s, 2 * s)
    frames[t] = (grey[::2, ::2] + grey[1::2, ::2] + grey[::2, 1::2] + grey[1::2, 1::2]) * (light / 4)
  if noise_rng is not None:
    gain = 1 + _FLICKER * noise_rng.standard_normal((len(frames), 1, 1))
    frames = frames * gain + noise_rng.normal(0, _NOISE_GREY, frames.shape)
  if not quantize:
    return frames[..., None]
  return np.clip(np.rint(frames), 0, 255).astype(np.uint8)[..., None]


def allocate_labels(seed: int, subject_index: int, clips_per_subject: int) -> np.ndarray:
  """(clips_per_subject,) int labels in CASME II proportions, shuffled per subject.

  Largest-remainder allocation; with >= 5 clips every class gets one (taken from the largest), so LOSO
  folds always see every class.
  """
  share = np.asarray(CASME2_CLASS_COUNTS, np.float64) / sum(CASME2_CLASS_COUNTS) * clips_per_subject
  counts = np.floor(share).astype(int)
  counts[np.argsort(counts - share, kind='stable')[:clips_per_subject - counts.sum()]] += 1
  if clips_per_subject >= len(CLASS_NAMES):
    for k in np.flatnonzero(counts == 0):
      counts[np.argmax(counts)] -= 1
      counts[k] = 1
  labels = np.repeat(np.arange(len(CLASS_NAMES)), counts)
  return np.random.default_rng([seed, subject_index, 3]).permutation(labels)


def make_clip(subject: Subject, clip_index: int, label: int, seed: int, min_frames: int,
              max_frames: int, *, with_flow: bool = False, noise: bool = True,
              alignment: AlignmentJitter | None = None) -> dict:
  """One record (keys of `fdp_jax.schema.me_features`); `noise=False` drops sensor noise and flicker;
  `alignment`: each frame's own alignment error (`make_motion`)."""
  motion = make_motion(subject, clip_index, label, seed, min_frames, max_frames, alignment)
  num_frames, s = len(motion.intensity), subject.image_size
  rng = np.random.default_rng([seed, subject.index, 2, clip_index]) if noise else None
  sid, cid = f's{subject.index:02d}', f'c{clip_index:03d}'
  record = {
      'sample_id': f'{sid}/{cid}', 'corpus': CORPUS, 'subject': sid, 'clip': cid, 'label': int(label),
      'frames': render_frames(subject, motion, rng),
      'frame_numbers': np.arange(num_frames, dtype=np.int32),
      'landmarks': np.stack([motion.forward(subject.landmarks, t) for t in range(num_frames)]
                            ).astype(np.float32),
      'onset': np.int32(motion.onset), 'apex': np.int32(motion.apex), 'offset': np.int32(motion.offset),
  }
  if with_flow:
    grid = pixel_grid(s).reshape(-1, 2)
    record['flow'] = np.stack([motion.flow(grid, t).reshape(s, s, 2) for t in range(num_frames - 1)]
                              ).astype(np.float32)
  return record
