"""Procedural long videos for spotting, with exact ground truth (numpy only).

A video is one synthetic subject's face (`face_drawing`, the same faces as `synthetic_me` for the same
seed and subject index) filmed for `num_frames` frames at 30 fps. Expressions are AU displacement fields of
the recognition corpus's classes, at known intervals:
  micro   onset→offset 8–14 frames (0.27–0.47 s), apex amplitude 1.5–2.5 px on a 128-px face;
  macro   onset→offset 24–60 frames (0.8–2 s), apex amplitude 3.5–5.5 px.
And what a spotter must not fire on:
  blink         the upper lids close and open in 5–8 frames (2.5–3.5 px, larger than a micro-expression);
  gaze shift    both irises move sideways in 3 frames, hold 15–45 frames, move back;
  head drift    slow translation (up to ~1.5 px) and roll (~0.9°) over seconds, plus the clips' jitter;
  brightness    the light ramps up or down 4–10 % over 5–15 frames, twice per video;
  face away     (half the videos) 30–50 frames without the face: background and noise, face_present False.
Events never overlap and keep 8 frames apart. The frame t is rendered like a clip frame whose field is the
sum of the events active at t, each scaled by its own intensity profile.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fdp_jax.corpora import face_drawing, face_motion
from fdp_jax.corpora import synthetic_faces as faces

CORPUS = 'synthetic_long'
FPS = 30.0
GAP = 8
# (kind, count per video, duration range in frames (onset..offset inclusive), amplitude range, 128-px units)
EVENTS = (('macro', 2, (24, 60), (3.5, 5.5)), ('micro', 3, (8, 14), (1.5, 2.5)),
          ('gaze', 2, (21, 51), (1.5, 2.5)), ('blink', 5, (5, 8), (2.5, 3.5)))


@dataclasses.dataclass(frozen=True)
class Event:
  kind: str                # 'micro' | 'macro' | 'blink' | 'gaze' | 'away'
  onset: int
  apex: int
  offset: int
  label: int = -1          # class of synthetic_faces.CLASS_NAMES for expressions
  centres: np.ndarray | None = None
  sigmas: np.ndarray | None = None
  vectors: np.ndarray | None = None

  def intensity(self, t: np.ndarray) -> np.ndarray:
    if self.kind == 'gaze':   # a fast move, a hold, a fast move back
      rise = np.clip((t - self.onset + 1) / 3, 0, 1)
      fall = np.clip((self.offset + 1 - t) / 3, 0, 1)
      return np.minimum(rise, fall)
    residual = 0.02 if self.kind == 'blink' else 0.15
    profile = face_motion.intensity_profile(int(t.max()) + 1, self.onset, self.apex, self.offset, residual)[t]
    # Past the offset the decay goes on to zero within half the expression's length (no lasting residue).
    tail = np.clip(1 - (t - self.offset) / max(1, (self.offset - self.onset) // 2), 0, 1)
    return np.where(t <= self.offset, profile, profile * tail)


def _place(rng: np.random.Generator, busy: np.ndarray, length: int) -> int | None:
  """A random start for `length` frames that keeps GAP frames from every busy frame, or None."""
  n = len(busy)
  padded = np.convolve(busy.astype(int), np.ones(2 * GAP + 1, int), 'same') > 0
  free = np.flatnonzero([not padded[s:s + length].any() for s in range(GAP, n - length - GAP)]) + GAP
  if not len(free):
    return None
  start = int(rng.choice(free))
  busy[start:start + length] = True
  return start


def _eye_components(g: dict, kind: str, direction: float) -> list:
  if kind == 'blink':   # the upper lid region pulled down over the eye
    return [(g['face_x'] + s * g['eye_dx'], g['eye_y'] - 0.6 * g['eye_h'], 0.0, 1.0) for s in (-1, 1)]
  return [(g['face_x'] + s * g['eye_dx'], g['eye_y'], direction, 0.0) for s in (-1, 1)]


def _gentle(subject: face_drawing.Subject, centres, sigmas, vectors, max_slope: float = 0.5):
  """The field scaled down where its steepest slope (Frobenius norm of its Jacobian on a 2x grid) exceeds
  `max_slope`: the renderer inverts p + G(p) by fixed-point iteration, which needs a contraction, and
  neighbouring AU components add their slopes."""
  field = face_motion.ClipMotion(0.0, np.zeros(1), np.zeros((1, 2)), np.ones(1), centres, sigmas, vectors, 0, 0, 0)
  grid = face_drawing.pixel_grid(subject.image_size, 2)
  g = field.au_field(grid)
  dy, dx = np.gradient(g, 0.5, axis=(0, 1))
  slope = float(np.sqrt((dx ** 2).sum(-1) + (dy ** 2).sum(-1)).max())
  return centres, sigmas, vectors * min(1.0, max_slope / max(slope, 1e-9))


def plan_video(subject: face_drawing.Subject, video: int, seed: int, num_frames: int) -> dict:
  """The events, head pose (angle (N,), shift (N, 2)) and light gain (N,) of one video."""
  rng = np.random.default_rng([seed, subject.index, 7, video])
  u = subject.image_size / face_drawing.REF_SIZE
  busy = np.zeros(num_frames, bool)
  events = []
  if rng.uniform() < 0.5:
    length = int(rng.integers(30, 51))
    start = _place(rng, busy, length)
    if start is not None:
      events.append(Event('away', start, start + length // 2, start + length - 1))
  for kind, count, (short, long), (low, high) in EVENTS:
    for _ in range(count):
      length = int(rng.integers(short, long + 1))
      start = _place(rng, busy, length)
      if start is None:
        raise ValueError(f'a {num_frames}-frame video has no room for its events: use more frames')
      offset = start + length - 1
      apex = start + max(1, round((length - 1) * rng.uniform(0.3, 0.45)))
      amplitude = u * rng.uniform(low, high)
      if kind in ('micro', 'macro'):
        label = int(rng.integers(len(faces.CLASS_NAMES)))
        field = face_motion.au_field(subject, rng, face_motion._class_aus(rng, label), amplitude,
                                     (7, 10) if kind == 'macro' else (6, 10))
      else:
        label = -1
        comps = _eye_components(subject.geometry, kind, float(rng.choice([-1.0, 1.0])))
        field = face_motion.au_field(subject, rng, None, amplitude, (5, 7) if kind == 'blink' else (2.5, 3.5), comps)
      events.append(Event(kind, start, apex, offset, label, *_gentle(subject, *field)))
  t = np.arange(num_frames)
  # Head drift: a sum of slow sinusoids (periods 4–12 s at 30 fps) on top of the clips' small jitter. The
  # videos stand for faces already aligned frame by frame (`preprocess.long_video`), so the drift is what
  # alignment leaves: up to ~1.5 px on a 128-px face, as much as a micro-expression, but slow.
  drift = np.zeros((num_frames, 3))
  for _ in range(3):
    period, phase = rng.uniform(120, 360), rng.uniform(0, 2 * np.pi)
    drift += np.sin(2 * np.pi * t / period + phase)[:, None] * rng.uniform(0.3, 1.0, 3)
  drift *= [0.5 * u, 0.5 * u, np.deg2rad(0.3)]
  angle, shift = face_motion._head_jitter(rng, num_frames, u)
  gain = np.ones(num_frames)
  for _ in range(2):
    start, ramp = int(rng.integers(0, num_frames)), int(rng.integers(5, 16))
    gain *= 1 + rng.choice([-1, 1]) * rng.uniform(0.04, 0.10) * np.clip((t - start) / ramp, 0, 1)
  return {'events': sorted(events, key=lambda e: e.onset), 'angle': angle + drift[:, 2],
          'shift': shift + drift[:, :2], 'gain': gain}


def render_video(subject: face_drawing.Subject, plan: dict, noise_seed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(frames (N, S, S, 1) uint8, landmarks (N, 68, 2) float32, face_present (N,) bool)."""
  n, s = len(plan['gain']), subject.image_size
  t = np.arange(n)
  expressions = [e for e in plan['events'] if e.kind != 'away']
  weights = np.stack([e.intensity(t) for e in expressions])          # (E, N)
  away = np.zeros(n, bool)
  for e in plan['events']:
    if e.kind == 'away':
      away[e.onset:e.offset + 1] = True
  rng = np.random.default_rng(noise_seed)
  frames = np.empty((n, s, s, 1), np.float32)
  landmarks = np.zeros((n, 68, 2), np.float32)
  centre = (s - 1) / 2
  for i in range(n):
    active = [k for k in range(len(expressions)) if weights[k, i] > 1e-3]
    if active:
      centres = np.concatenate([expressions[k].centres for k in active])
      sigmas = np.concatenate([expressions[k].sigmas for k in active])
      vectors = np.concatenate([expressions[k].vectors * weights[k, i] for k in active])
    else:
      centres, sigmas, vectors = np.zeros((1, 2)), np.ones(1), np.zeros((1, 2))
    motion = face_motion.ClipMotion(centre, plan['angle'][i:i + 1], plan['shift'][i:i + 1], np.ones(1), centres,
                                    sigmas, vectors, 0, 0, 0)
    if away[i]:
      frames[i] = face_drawing.face_intensity(subject, np.full((s, s, 2), -1e3))[..., None]   # background only
    else:
      frames[i] = faces.render_frames(subject, motion, quantize=False)[0]
      landmarks[i] = motion.forward(subject.landmarks, 0)
  gain = plan['gain'][:, None, None, None] * (1 + faces._FLICKER * rng.standard_normal((n, 1, 1, 1)))
  frames = frames * gain + rng.normal(0, faces._NOISE_GREY, frames.shape)
  return np.clip(np.rint(frames), 0, 255).astype(np.uint8), landmarks, ~away


def make_video(subject: face_drawing.Subject, video: int, seed: int, num_frames: int) -> dict:
  """One record of `schema.long_video_features`: micro and macro intervals only (the distractors are not
  annotated, as in a real corpus)."""
  plan = plan_video(subject, video, seed, num_frames)
  frames, landmarks, present = render_video(subject, plan, [seed, subject.index, 8, video])
  expressions = [e for e in plan['events'] if e.kind in ('micro', 'macro')]
  sid = f's{subject.index:02d}'
  return {
      'video_id': f'{sid}/v{video}', 'corpus': CORPUS, 'subject': sid, 'fps': np.float32(FPS),
      'frames': frames, 'frame_numbers': np.arange(num_frames, dtype=np.int32), 'landmarks': landmarks,
      'face_present': present,
      'intervals': {'onset': np.asarray([e.onset for e in expressions], np.int32),
                    'apex': np.asarray([e.apex for e in expressions], np.int32),
                    'offset': np.asarray([e.offset for e in expressions], np.int32),
                    'type': [e.kind for e in expressions],
                    'emotion': [faces.CLASS_NAMES[e.label] for e in expressions]},
  }
