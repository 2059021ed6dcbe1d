"""How a synthetic clip moves its subject's face (`face_drawing`): a forward map of canonical face coordinates p
to image coordinates,

  phi_t(p) = c + R_t (p + a_t G(p) - c) + s_t,

where G is a class-specific, localised AU displacement field (a sum of Gaussian-windowed vectors, its
maximum magnitude 1-2 px on a 128-px face), a_t in [0, 1] the onset -> apex -> offset intensity profile, and
R_t, s_t a small head jitter about the image centre c; optionally each frame's own alignment error on top.
The map is invertible, so landmarks (phi_t of the canonical landmarks) and the flow between frames
(phi_{t+1}(phi_t^{-1}(x)) - x) are exact, not estimated.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fdp_jax.corpora.face_drawing import REF_SIZE, Subject, lip_line, pixel_grid

# Fixed-point inversion stops once |phi_t(p) - x| is below this (px): well under the 1e-4 px contract.
_INVERSE_TOL = 1e-5


@dataclasses.dataclass(frozen=True)
class AlignmentJitter:
  """The frame-to-frame error of aligning every frame on its own landmarks (as MOL's release does): each
  frame's aligned face is off by its own small similarity transform about the image centre, drawn
  independently per frame. Standard deviations, in a 128-px face."""
  translation: float   # px, per axis
  rotation: float      # degrees
  scale: float         # relative (0.01: 1 %)


# Each frame's alignment error in synthetic_me's `mol` and `mol_dev` corpora (1.2.0): the proportions measured
# on a still real face aligned frame by frame (0.19 px : 0.137 deg : 1.09 %) × 0.78, the factor that brings
# the exact flow between consecutive frames, with the corpus's own head jitter (0.074 px) and AU motion, to
# the calm real videos' 0.49 px standard deviation (benchmarks/mol_motion.py).
MOL_ALIGNMENT = AlignmentJitter(translation=0.148, rotation=0.107, scale=0.0085)


@dataclasses.dataclass(frozen=True)
class ClipMotion:
  """The frame-t map phi_t(p) = c + k_t R_t (p + intensity[t] G(p) - c) + shift[t]; T frames (k_t: `scale`,
  1 unless the clip carries a per-frame alignment error).

  G(p) = sum_k au_vectors[k] exp(-|p - au_centres[k]|^2 / (2 au_sigmas[k]^2)), its maximum magnitude
  the apex displacement amplitude.
  """
  centre: float            # rotation centre (c, c), the image centre
  angle: np.ndarray        # (T,) head roll, radians
  shift: np.ndarray        # (T, 2) head translation, px
  intensity: np.ndarray    # (T,) AU intensity in [0, 1]; 0 before onset, 1 at apex
  au_centres: np.ndarray   # (K, 2) px
  au_sigmas: np.ndarray    # (K,) px
  au_vectors: np.ndarray   # (K, 2) px
  onset: int
  apex: int
  offset: int
  scale: np.ndarray | None = None   # (T,) per-frame scale k_t; None: 1

  def _scale(self, t: int) -> float:
    return 1.0 if self.scale is None else float(self.scale[t])

  def _field(self, x, y):
    """G at flat points x, y (N,) -> gx, gy (N,) float32; (K, N) layout keeps numpy's inner loops long."""
    # float32 is ~2x (exp ~30x) faster than float64 here and rounds p by < 1e-5 px, moving G by < 1e-6 px.
    cx, cy = (self.au_centres[:, i, None].astype(np.float32) for i in (0, 1))
    k = (-0.5 / self.au_sigmas[:, None] ** 2).astype(np.float32)
    w = np.exp(((x.astype(np.float32) - cx) ** 2 + (y.astype(np.float32) - cy) ** 2) * k)
    g = self.au_vectors.T.astype(np.float32) @ w
    return g[0], g[1]

  def au_field(self, p: np.ndarray) -> np.ndarray:
    """G(p): (..., 2) -> (..., 2) float64 apex displacement in px."""
    flat = np.asarray(p, np.float64).reshape(-1, 2)
    return np.stack(self._field(flat[:, 0], flat[:, 1]), -1).astype(np.float64).reshape(np.shape(p))

  def forward(self, p: np.ndarray, t: int) -> np.ndarray:
    """phi_t(p) for canonical points p (..., 2) -> image points (..., 2)."""
    moved = p + self.intensity[t] * self.au_field(p) - self.centre
    return self._scale(t) * _rotate(moved, self.angle[t]) + self.centre + self.shift[t]

  def inverse(self, x: np.ndarray, t: int) -> np.ndarray:
    """phi_t^{-1}(x) for image points x (..., 2), by fixed-point iteration p <- q - a_t G(p)."""
    q = np.asarray(x, np.float64) - self.shift[t] - self.centre
    q = _rotate(q / self._scale(t), -self.angle[t]) + self.centre
    a = self.intensity[t]
    if a == 0:
      return q
    qx, qy = q[..., 0].ravel(), q[..., 1].ravel()
    gx, gy = self._field(qx, qy)
    px, py = qx - a * gx, qy - a * gy
    active = np.arange(len(px))
    for _ in range(60):  # G's slope is < 0.5, so the error shrinks at least 2x per step
      ax, ay = px[active], py[active]
      gx, gy = self._field(ax, ay)
      nx, ny = qx[active] - a * gx, qy[active] - a * gy
      px[active], py[active] = nx, ny
      # |n - a| = |a + a_t G(a) - q| = |phi_t(a) - x|: only points not yet within tolerance iterate on.
      active = active[np.maximum(np.abs(nx - ax), np.abs(ny - ay)) > _INVERSE_TOL]
      if not active.size:
        return np.stack([px, py], -1).reshape(q.shape)
    raise RuntimeError('phi_t inversion did not converge; the AU field is too steep.')

  def flow(self, x: np.ndarray, t: int) -> np.ndarray:
    """(dx, dy) motion of image points x (..., 2) from frame t to frame t + 1."""
    return self.forward(self.inverse(x, t), t + 1) - x


def _rotate(v, angle):
  cos, sin = np.cos(angle), np.sin(angle)
  return np.stack([cos * v[..., 0] - sin * v[..., 1], sin * v[..., 0] + cos * v[..., 1]], -1)


def intensity_profile(num_frames, onset, apex, offset, residual) -> np.ndarray:
  """(T,) asymmetric ME intensity: 0 up to onset, a smooth fast rise to 1 at apex, a slower decay that
  leaves `residual` of the apex at offset (real MEs are not back to neutral at the coded offset)."""
  t = np.arange(num_frames, dtype=np.float64)
  rise = 0.5 - 0.5 * np.cos(np.pi * np.clip((t - onset) / max(apex - onset, 1), 0, 1))
  decay = np.exp(np.log(residual) * ((t - apex) / max(offset - apex, 1)) ** 2)
  return np.where(t <= apex, rise, decay)


def _head_jitter(rng, num_frames, u):
  """Smooth (AR(1)) sub-pixel translation and sub-degree roll around a per-clip pose offset."""
  rho = 0.7
  steps = rng.standard_normal((num_frames, 3)) * np.sqrt(1 - rho ** 2)
  walk = np.empty_like(steps)
  walk[0] = rng.standard_normal(3)
  for t in range(1, num_frames):
    walk[t] = rho * walk[t - 1] + steps[t]
  # Residual motion of an *aligned* face: alignment removes most head motion, and what is left must stay
  # well below the 1–2 px AU motion or it buries it (at 4x these amplitudes FDP did not learn at all).
  base = rng.uniform(-1, 1, 3) * [0.125 * u, 0.125 * u, np.deg2rad(0.075)]
  jitter = base + walk * [0.09 * u, 0.09 * u, np.deg2rad(0.05)]
  return jitter[:, 2], jitter[:, :2]


def _action_units(g, u):
  """AU name -> list of (x, y, vx, vy): Gaussian centres on the subject's features and unit-ish pulls."""
  fx, ey, my = g['face_x'], g['eye_y'], g['mouth_y']
  inner = g['eye_dx'] - 0.6 * g['brow_len']
  outer = g['eye_dx'] + 0.6 * g['brow_len']
  corners = [(fx + s * g['mouth_w'], lip_line(g, fx + s * g['mouth_w'])[0], s) for s in (-1, 1)]
  return {
      'AU1': [(fx + s * inner, g['brow_y'], 0, -1) for s in (-1, 1)],
      'AU2': [(fx + s * outer, g['brow_y'], 0, -1) for s in (-1, 1)],
      'AU4': [(fx + s * inner, g['brow_y'], -0.5 * s, 1) for s in (-1, 1)],
      'AU5': [(fx + s * g['eye_dx'], ey - g['eye_h'], 0, -0.5) for s in (-1, 1)],
      'AU6': [(fx + s * g['eye_dx'], ey + g['eye_h'] + 4 * u, 0, -0.5) for s in (-1, 1)],
      'AU7': [(fx + s * g['eye_dx'], ey + g['eye_h'], 0, -0.8) for s in (-1, 1)],
      'AU9': [(fx + s * 0.8 * g['nose_w'], g['nose_y'] - 8 * u, -0.3 * s, -1) for s in (-1, 1)],
      'AU10': [(fx, my - g['lip_up'] - 2 * u, 0, -1)],
      'AU12': [(x, y, s, -0.7) for x, y, s in corners],
      'AU12L': [(x, y, s, -0.7) for x, y, s in corners[:1]],
      'AU12R': [(x, y, s, -0.7) for x, y, s in corners[1:]],
      'AU14': [(x, y, -0.7 * s, 0) for x, y, s in corners],
      'AU15': [(x, y, 0, 1) for x, y, s in corners],
      'AU17': [(fx, my + g['lip_low'] + 8 * u, 0, -1), (fx, my + g['lip_low'], 0, -0.5)],
      'AU24': [(fx, my - g['lip_up'], 0, 1), (fx, my + g['lip_low'], 0, -1)],
  }


def _class_aus(rng, label):
  """The AUs of one clip of class `label` (`synthetic_faces.CLASS_NAMES` order); optional AUs drawn at random."""
  coin = lambda prob: rng.uniform() < prob
  if label == 0:
    return ['AU12'] + ['AU6'] * coin(0.4)
  if label == 1:
    return ['AU1', 'AU2'] + ['AU5'] * coin(0.3)
  if label == 2:
    return [['AU9'], ['AU10'], ['AU9', 'AU10']][rng.integers(3)]
  if label == 3:
    return ['AU24'] + ['AU14'] * coin(0.5)
  others = ['AU4', 'AU7', 'AU12L', 'AU12R', 'AU17', 'AU15']
  while True:
    aus = list(rng.choice(others, size=rng.integers(1, 3), replace=False))
    # AU12L + AU12R is AU12, happiness's motion: such an 'others' clip would carry a contradicting label.
    # Redrawing touches only the clips that drew it (each clip has a generator of its own).
    if not {'AU12L', 'AU12R'} <= set(aus):
      return aus


def make_motion(subject: Subject, clip_index: int, label: int, seed: int, min_frames: int,
                max_frames: int, alignment: AlignmentJitter | None = None) -> ClipMotion:
  """Timing, head jitter and AU field of one clip, from the generator seeded by (seed, subject, clip); with
  `alignment`, each frame's own alignment error on top, from a generator of its own (so every other draw,
  and a clip built without it, stays as it was)."""
  if min_frames < 10 or max_frames < min_frames:
    raise ValueError(f'need 10 <= min_frames <= max_frames, got {min_frames}, {max_frames}')
  rng = np.random.default_rng([seed, subject.index, 1, clip_index])
  u = subject.image_size / REF_SIZE
  num_frames = int(rng.integers(min_frames, max_frames + 1))
  onset = int(rng.integers(2, 5))                      # a few neutral frames first
  offset = num_frames - 1 - int(rng.integers(0, 3))
  apex = onset + max(1, round((offset - onset) * rng.uniform(0.25, 0.4)))
  intensity = intensity_profile(num_frames, onset, apex, offset, rng.uniform(0.1, 0.3))
  angle, shift = _head_jitter(rng, num_frames, u)
  amplitude = u * rng.uniform(1.0, 2.0)
  # Label-dependent draws come last, so everything above (and every neutral frame) is label-independent.
  centres, sigmas, vectors = au_field(subject, rng, _class_aus(rng, label), amplitude)
  scale = None
  if alignment is not None:
    errors = np.random.default_rng([seed, subject.index, 4, clip_index]).standard_normal((num_frames, 4))
    angle = angle + np.deg2rad(alignment.rotation) * errors[:, 0]
    shift = shift + alignment.translation * u * errors[:, 1:3]
    scale = 1.0 + alignment.scale * errors[:, 3]
  return ClipMotion((subject.image_size - 1) / 2, angle, shift, intensity, centres, sigmas, vectors, onset,
                    apex, offset, scale)


def au_field(subject: Subject, rng: np.random.Generator, aus, amplitude: float, sigma_range=(6, 10),
             components: list | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(centres (K, 2), sigmas (K,), vectors (K, 2)) of the displacement field of action units `aus` (names
  of `_action_units`) or of explicit `components` [(x, y, vx, vy)], placement jittered, scaled so that its
  largest displacement (on a 4x-supersampled grid) is `amplitude` px; sigmas in 128-px units."""
  u = subject.image_size / REF_SIZE
  units = _action_units(subject.geometry, u)
  comps = np.array(components if components is not None else [c for au in aus for c in units[au]], np.float64)
  k = len(comps)
  centres = comps[:, :2] + rng.normal(0, u, (k, 2))
  turn = rng.normal(0, 0.15, k)
  vx, vy = comps[:, 2], comps[:, 3]
  vectors = np.stack([np.cos(turn) * vx - np.sin(turn) * vy, np.sin(turn) * vx + np.cos(turn) * vy], 1)
  vectors *= rng.uniform(0.75, 1.25, (k, 1))
  sigmas = u * rng.uniform(*sigma_range, k)
  field = ClipMotion(0.0, np.zeros(1), np.zeros((1, 2)), np.ones(1), centres, sigmas, vectors, 0, 0, 0)
  peak = np.linalg.norm(field.au_field(pixel_grid(subject.image_size, 4)), axis=-1).max()
  return centres, sigmas, vectors * (amplitude / peak)
