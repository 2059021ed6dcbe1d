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
"""

from __future__ import annotations

import dataclasses

import numpy as np

CLASS_NAMES = ('happiness', 'surprise', 'disgust', 'repression', 'others')
# CASME II samples per class (same order), the target class proportions of every subject.
CASME2_CLASS_COUNTS = (32, 25, 63, 27, 99)
CORPUS = 'synthetic_me'

_REF_SIZE = 128.0
# Fixed-point inversion stops once |phi_t(p) - x| is below this (px): well under the 1e-4 px contract.
_INVERSE_TOL = 1e-5
_NOISE_GREY = 1.0      # sensor noise std in grey levels
_FLICKER = 0.01        # per-frame brightness gain std


@dataclasses.dataclass(frozen=True)
class Subject:
  """One subject's canonical face; all positions in pixels of the stored (image_size)^2 frame."""
  index: int
  image_size: int
  geometry: dict       # feature placement and sizes (px), see `make_subject`
  tones: dict          # grey levels of background, skin, sclera, iris, darkenings
  blobs: np.ndarray    # (K, 4) texture Gaussians: x, y, sigma, amplitude (grey levels)
  waves: np.ndarray    # (M, 4) texture sinusoids: kx, ky (rad/px), phase, amplitude
  lighting: np.ndarray  # (2,) multiplicative light gradient along x, y per image width
  landmarks: np.ndarray  # (68, 2) float64 canonical iBUG-68 landmarks (x, y)


def make_subject(seed: int, subject_index: int, image_size: int) -> Subject:
  """Draws the subject's face from the generator seeded by (seed, subject_index)."""
  rng = np.random.default_rng([seed, subject_index, 0])
  u = image_size / _REF_SIZE
  c = (image_size - 1) / 2

  def draw(mean, sd):  # in 128-px units; clipped so no feature collides with its neighbour
    return u * (mean + sd * float(np.clip(rng.standard_normal(), -2.5, 2.5)))

  fx, fy = c + draw(0, 2), c + draw(4, 2)
  g = dict(face_x=fx, face_y=fy, face_a=draw(47, 2.5), face_b=draw(56, 2.5),
           eye_y=fy + draw(-17, 2.5), eye_dx=draw(19, 1.5), eye_w=draw(8.5, 0.8),
           eye_h=draw(3.4, 0.4), iris_r=draw(3.0, 0.3), brow_len=draw(9, 1),
           brow_th=draw(2.0, 0.3), brow_arch=draw(2.5, 0.8), nose_w=draw(6, 0.7),
           nose_y=fy + draw(9, 2.0), mouth_y=fy + draw(27, 3), mouth_w=draw(14.5, 2),
           lip_up=draw(3.2, 0.5), lip_low=draw(4.2, 0.6), mouth_curve=draw(0, 0.8),
           # Edge softness: ~1 px at 128 px, never so sharp that 2x2 supersampling aliases badly.
           edge=max(u, 0.35))
  g['brow_y'] = g['eye_y'] - draw(10, 1.5)
  skin = rng.uniform(115, 185)
  tones = dict(background=rng.uniform(25, 80), skin=skin, shade=rng.uniform(15, 35),
               sclera=min(skin + rng.uniform(25, 50), 235.0), iris=rng.uniform(35, 70),
               lid=rng.uniform(25, 45), brow=rng.uniform(45, 85), lip=skin - rng.uniform(30, 50),
               mouth_line=rng.uniform(35, 60), nostril=rng.uniform(35, 55), nose_side=rng.uniform(6, 14))
  k = 8  # texture blobs spread over the face, so flow has texture to follow inside the skin
  r, th = np.sqrt(rng.uniform(0, 0.8, k)), rng.uniform(0, 2 * np.pi, k)
  blobs = np.stack([fx + g['face_a'] * r * np.cos(th), fy + g['face_b'] * r * np.sin(th),
                    u * rng.uniform(4, 14, k), rng.normal(0, 7, k)], axis=1)
  wave_dir = rng.uniform(0, 2 * np.pi, 2)
  wave_k = 2 * np.pi / (u * rng.uniform(15, 45, 2))
  waves = np.stack([wave_k * np.cos(wave_dir), wave_k * np.sin(wave_dir),
                    rng.uniform(0, 2 * np.pi, 2), rng.uniform(1, 3, 2)], axis=1)
  return Subject(subject_index, image_size, g, tones, blobs, waves, rng.uniform(-0.35, 0.35, 2),
                 _canonical_landmarks(g))


def _brow_curve(g, side, x):
  """y of the brow centre line at x; side -1 is the image-left brow."""
  bx = g['face_x'] + side * g['eye_dx']
  return g['brow_y'] - g['brow_arch'] * (1 - ((x - bx) / g['brow_len']) ** 2)


def _lip_line(g, x):
  """y of the line between the lips at x, and the lips' half-height profile s(x) in [0, 1]."""
  xr = (x - g['face_x']) / g['mouth_w']
  return g['mouth_y'] - g['mouth_curve'] * xr ** 2, np.sqrt(np.clip(1 - xr ** 2, 0, None))


def _canonical_landmarks(g) -> np.ndarray:
  """(68, 2) iBUG-68 points on the drawn features.

  Jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67, each ordered as in iBUG (image left first).
  """
  fx, fy, a, b = g['face_x'], g['face_y'], g['face_a'], g['face_b']
  beta = np.arcsin(np.clip((fy - g['eye_y'] - 3 * g['edge']) / b, 0, 0.9))
  th = np.pi + beta - np.arange(17) * (np.pi + 2 * beta) / 16   # image-left temple -> chin -> right
  pts = [np.stack([fx + a * np.cos(th), fy + b * np.sin(th)], 1)]
  for side in (-1, 1):
    bx = fx + side * g['eye_dx'] + g['brow_len'] * np.linspace(-0.9, 0.9, 5)
    pts.append(np.stack([bx, _brow_curve(g, side, bx)], 1))
  pts.append(np.stack([np.full(4, fx), np.linspace(g['eye_y'], g['nose_y'], 4)], 1))
  nx = fx + g['nose_w'] * np.linspace(-1, 1, 5)
  pts.append(np.stack([nx, g['nose_y'] + g['edge'] + np.abs(nx - fx) * 0.15], 1))
  for side in (-1, 1):  # clockwise from the image-left corner: corner, upper lid, corner, lower lid
    ex, ey, w, h = fx + side * g['eye_dx'], g['eye_y'], g['eye_w'], g['eye_h']
    dx = w * np.array([-1, -0.4, 0.4, 1, 0.4, -0.4])
    lid = h * np.sqrt(1 - (dx / w) ** 2) * np.array([0, -1, -1, 0, 1, 1])
    pts.append(np.stack([ex + dx, ey + lid], 1))
  w = g['mouth_w']
  outer = np.array([-1, -0.6, -0.25, 0, 0.25, 0.6, 1, 0.6, 0.25, 0, -0.25, -0.6])
  inner = np.array([-0.9, -0.4, 0, 0.4, 0.9, 0.4, 0, -0.4])
  for xr, up, low in ((outer, g['lip_up'], g['lip_low']), (inner, 0.0, 0.0)):
    x = fx + w * xr
    line, s = _lip_line(g, x)
    upper = np.arange(len(xr)) <= len(xr) // 2   # first half (incl. right corner) is the upper lip
    pts.append(np.stack([x, np.where(upper, line - up * s, line + low * s)], 1))
  return np.concatenate(pts).astype(np.float64)


def _sig(z):
  return 0.5 + 0.5 * np.tanh(0.5 * z)


def face_intensity(subject: Subject, p: np.ndarray) -> np.ndarray:
  """The analytic canonical face F at points p (..., 2) (x, y): (...) float32 grey levels."""
  g, tn, e = subject.geometry, subject.tones, subject.geometry['edge']
  x, y = (np.asarray(p[..., i], np.float32) for i in (0, 1))
  r = np.sqrt(((x - g['face_x']) / g['face_a']) ** 2 + ((y - g['face_y']) / g['face_b']) ** 2)
  face = _sig((1 - r) * (min(g['face_a'], g['face_b']) / e))
  # Darker towards the outline (the face curving away from the light), texture attached to the skin.
  skin = tn['skin'] - tn['shade'] * r * r
  for bx, by, bs, amp in subject.blobs.tolist():  # Python floats keep the maths float32
    skin = skin + amp * np.exp(((x - bx) ** 2 + (y - by) ** 2) * (-0.5 / bs ** 2))
  for kx, ky, ph, amp in subject.waves.tolist():
    skin = skin + amp * np.sin(kx * x + ky * y + ph)
  img = tn['background'] + (skin - tn['background']) * face
  for side in (-1, 1):
    ex = g['face_x'] + side * g['eye_dx']
    dx, dy = x - ex, y - g['eye_y']
    eye = _sig((1 - np.sqrt((dx / g['eye_w']) ** 2 + (dy / g['eye_h']) ** 2)) * (g['eye_h'] / e))
    img = img + (tn['sclera'] - img) * eye
    iris = _sig((g['iris_r'] - np.sqrt(dx * dx + dy * dy)) / e) * eye
    img = img + (tn['iris'] - img) * iris
    lid_y = g['eye_y'] - g['eye_h'] * np.sqrt(np.clip(1 - (dx / g['eye_w']) ** 2, 0, None))
    img = img - tn['lid'] * np.exp((y - lid_y) ** 2 * (-0.5 / e ** 2)) * _sig((g['eye_w'] - np.abs(dx)) / e)
    bx = g['face_x'] + side * g['eye_dx']
    brow = (_sig((g['brow_th'] - np.abs(y - _brow_curve(g, side, x))) / e)
            * _sig((g['brow_len'] - np.abs(x - bx)) / e))
    img = img - tn['brow'] * brow
    nose_x, nose_mid = g['face_x'] + side * 0.6 * g['nose_w'], 0.5 * (g['eye_y'] + g['nose_y'])
    nose_len = 0.3 * (g['nose_y'] - g['eye_y'])
    img = img - tn['nose_side'] * np.exp(-0.5 * ((x - nose_x) / (2 * e)) ** 2
                                         - 0.5 * ((y - nose_mid) / nose_len) ** 2)
    nostril_x = g['face_x'] + side * 0.55 * g['nose_w']
    img = img - tn['nostril'] * np.exp(-0.5 * (((x - nostril_x) / (0.3 * g['nose_w'])) ** 2
                                               + ((y - g['nose_y'] - e) / (1.2 * e)) ** 2))
  line, s = _lip_line(g, x)
  dy = y - line
  inside = _sig((g['mouth_w'] - np.abs(x - g['face_x'])) / e)
  lips = _sig((dy + g['lip_up'] * s) / e) * _sig((g['lip_low'] * s - dy) / e) * inside
  img = img + (tn['lip'] - img) * lips
  img = img - tn['mouth_line'] * np.exp(dy * dy * (-0.5 / (0.8 * e) ** 2)) * inside
  return img.astype(np.float32)


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
  corners = [(fx + s * g['mouth_w'], _lip_line(g, fx + s * g['mouth_w'])[0], s) for s in (-1, 1)]
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
  """The AUs of one clip of class `label` (CLASS_NAMES order); optional AUs drawn at random."""
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
  u = subject.image_size / _REF_SIZE
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
  u = subject.image_size / _REF_SIZE
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


def pixel_grid(image_size: int, supersample: int = 1) -> np.ndarray:
  """(S*n, S*n, 2) float64 (x, y) sample points; n = 1 gives the pixel centres (j, i)."""
  n = supersample
  v = (np.arange(image_size * n) + 0.5) / n - 0.5
  xx, yy = np.meshgrid(v, v)
  return np.stack([xx, yy], -1)


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
