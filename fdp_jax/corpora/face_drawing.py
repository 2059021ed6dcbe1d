"""The synthetic corpus's subjects: one analytic grey face F(p) per subject, its canonical landmarks, and
the grid of points a frame samples it at (numpy only).

F is made of smooth ellipses, sigmoids and Gaussians for the outline, eyes, brows, nose shading and lips,
plus a low-frequency texture of Gaussian blobs and sinusoids. Coordinates are (x, y) pixels of the stored
frame, y pointing down; the centre of the pixel in row i, column j is (j, i). Geometry constants are written
in pixels of a 128-px face and scaled by size / 128.
"""

from __future__ import annotations

import dataclasses

import numpy as np

REF_SIZE = 128.0   # the face size the geometry constants are written for (px)


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
  u = image_size / REF_SIZE
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


def lip_line(g, x):
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
    line, s = lip_line(g, x)
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
  line, s = lip_line(g, x)
  dy = y - line
  inside = _sig((g['mouth_w'] - np.abs(x - g['face_x'])) / e)
  lips = _sig((dy + g['lip_up'] * s) / e) * _sig((g['lip_low'] * s - dy) / e) * inside
  img = img + (tn['lip'] - img) * lips
  img = img - tn['mouth_line'] * np.exp(dy * dy * (-0.5 / (0.8 * e) ** 2)) * inside
  return img.astype(np.float32)


def pixel_grid(image_size: int, supersample: int = 1) -> np.ndarray:
  """(S*n, S*n, 2) float64 (x, y) sample points; n = 1 gives the pixel centres (j, i)."""
  n = supersample
  v = (np.arange(image_size * n) + 0.5) / n - 0.5
  xx, yy = np.meshgrid(v, v)
  return np.stack([xx, yy], -1)
