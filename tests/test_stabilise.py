"""Registering a clip's frames (fdp_jax/preprocess/stabilise.py): a face that only jitters comes out still, and
the flow and landmark targets follow the frames."""

import cv2
import numpy as np
import pytest

from configs import mol_synthetic
from fdp_jax import input_pipeline
from fdp_jax.corpora import face_drawing, face_motion, synthetic_faces
from fdp_jax.preprocess import stabilise

S, T = 64, 6


def _affine(rng) -> np.ndarray:
  """A small per-frame alignment error: ±0.3 px shifts, ±1 % scale, ±0.3° about the centre."""
  angle, scale = np.deg2rad(rng.normal(0, 0.3)), 1 + rng.normal(0, 0.01)
  rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
  centre = np.array([S / 2 - 0.5] * 2)
  return np.concatenate([rotation, (centre - rotation @ centre + rng.normal(0, 0.3, 2))[:, None]], 1)


@pytest.fixture(scope='module')
def jittered():
  """T frames of one face, frame t = face(A_t·x); the exact flow between them and 68 points that move with
  them."""
  rng = np.random.default_rng(0)
  face = face_drawing.face_intensity(face_drawing.make_subject(0, 0, S),
                                     np.stack(np.meshgrid(np.arange(S), np.arange(S)), -1).astype(np.float64))
  warps = np.stack([_affine(rng) for _ in range(T)]).astype(np.float32)
  frames = np.stack([cv2.warpAffine(face, w, (S, S), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                    borderMode=cv2.BORDER_REPLICATE) for w in warps])
  grid = np.stack(np.meshgrid(np.arange(S, dtype=np.float32), np.arange(S, dtype=np.float32)), -1)
  inverse = [cv2.invertAffineTransform(w) for w in warps]
  flow = np.stack([(grid @ warps[t][:, :2].T + warps[t][:, 2]) @ inverse[t + 1][:, :2].T + inverse[t + 1][:, 2]
                   - grid for t in range(T - 1)])
  canonical = rng.uniform(16, 48, (68, 2)).astype(np.float32)
  points = np.stack([canonical @ m[:, :2].T + m[:, 2] for m in inverse])      # where each frame shows them
  return frames, flow, points


def test_a_face_that_only_jitters_comes_out_still_and_its_flow_goes_to_zero(jittered):
  frames, flow, points = jittered
  registered, warps = stabilise.register_to_clip_mean(frames)
  inside = (slice(None), slice(8, -8), slice(8, -8))
  before, after = frames.std(0)[inside[1:]].mean(), registered.std(0)[inside[1:]].mean()
  assert after < 0.25 * before, (before, after)
  carried = stabilise.carry_flow(flow, warps)
  magnitude = lambda f: float(np.linalg.norm(f[inside], axis=-1).mean())  # noqa: E731
  assert magnitude(carried) < 0.15 * magnitude(flow), (magnitude(flow), magnitude(carried))
  moved = stabilise.carry_points(points, warps)
  spread = lambda p: float(np.linalg.norm(p - p.mean(0), axis=-1).mean())  # noqa: E731
  assert spread(moved) < 0.2 * spread(points), (spread(points), spread(moved))


def test_the_clip_transform_registers_frames_and_carries_the_mol_targets():
  """Through `data.stabilise='affine'` the exact flow of a jittered synthetic clip shrinks to what moves in
  the face, and still predicts the next frame: the second frame, sampled at x + flow, matches the first as
  well as without registration."""
  config = mol_synthetic.get_config('small')
  record = synthetic_faces.make_clip(face_drawing.make_subject(0, 1, 128), 0, 1, 0, 14, 16, with_flow=True,
                                     alignment=face_motion.MOL_ALIGNMENT)
  record = dict(record, _index=0)
  out = {}
  for rule in ('none', 'affine'):
    config.data.stabilise = rule
    out[rule] = input_pipeline.ClipTransform(config.data, train=False)(record)
  grid = np.stack(np.meshgrid(np.arange(64, dtype=np.float32), np.arange(64, dtype=np.float32)), -1)

  def photometric(example):
    frames = example['frames'][..., 0]
    errors = []
    for t in range(len(frames) - 1):
      at = grid + example['flow'][t]
      warped = cv2.remap(frames[t + 1], at[..., 0], at[..., 1], cv2.INTER_LINEAR)
      errors.append(np.abs(warped - frames[t])[8:-8, 8:-8].mean())
    return float(np.mean(errors))

  spread = {rule: float(np.linalg.norm(e['flow'], axis=-1).mean()) for rule, e in out.items()}
  assert spread['affine'] < 0.6 * spread['none'], spread
  assert photometric(out['affine']) < 1.1 * photometric(out['none'])
  assert out['affine']['landmarks'].shape == out['none']['landmarks'].shape
  assert not np.allclose(out['affine']['landmarks'], out['none']['landmarks'])


def test_an_unknown_rule_is_refused():
  config = mol_synthetic.get_config('small')
  config.data.stabilise = 'similarity'
  with pytest.raises(ValueError, match='data.stabilise'):
    input_pipeline.ClipTransform(config.data, train=False)
