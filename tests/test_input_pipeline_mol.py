"""MOL targets (data.targets 'mol'): composed flow and landmarks between the sampled frames, through
the same crop and resize as the frames."""

import numpy as np
import pytest

from configs import synthetic
from fdp_jax import input_pipeline

N, SIZE = 20, 40            # stored frames and side of the hand-made records
ONSET, OFFSET = 3, 15       # the 'onset_offset' window: 13 frames, 'released' step 13 // 4 = 3


def _landmarks(n=N):
  """(n, 68, 2): frame t's point j at (12 + 0.5 t + 0.1 j, 14 + 0.3 t + 0.15 j), inside the face."""
  t, j = np.arange(n, dtype=np.float32)[:, None], np.arange(68, dtype=np.float32)
  return np.stack([12 + 0.5 * t + 0.1 * j, 14 + 0.3 * t + 0.15 * j], axis=-1).astype(np.float32)


def _translations(n=N, size=SIZE):
  """Flow (n−1, size, size, 2) where step t moves every pixel by steps[t] = (dx_t, dy_t)."""
  t = np.arange(n - 1, dtype=np.float32)
  steps = np.stack([0.1 * (t + 1), 0.2 - 0.05 * t], axis=-1).astype(np.float32)
  return np.broadcast_to(steps[:, None, None], (n - 1, size, size, 2)).copy(), steps


def _shear(axis, n=N, size=SIZE):
  """Flow along `axis` (0: dx, 1: dy) that depends only on the other coordinate, a_t + b_t · u: pixels move
  along lines where the field is constant, so the composed flow is exactly the sum and it reveals the crop
  offset across the motion. Returns the flow and (a, b) (n−1,)."""
  t = np.arange(n - 1, dtype=np.float32)
  a, b = 0.1 * (t + 1), 0.01 * (t + 2)
  u = np.arange(size, dtype=np.float32)
  field = a[:, None] + b[:, None] * u                                 # (n−1, size) over the other coordinate
  flow = np.zeros((n - 1, size, size, 2), np.float32)
  flow[..., axis] = field[:, :, None] if axis == 0 else field[:, None, :]
  return flow, (a, b)


def _record(flow, frames=None, seed=0, onset=ONSET, offset=OFFSET):
  n, size = flow.shape[0] + 1, flow.shape[1]
  if frames is None:
    frames = np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 1), dtype=np.uint8)
  return {'frames': frames, 'landmarks': _landmarks(n), 'flow': flow, 'label': 1, '_index': seed,
          'onset': onset, 'apex': onset, 'offset': offset}


@pytest.fixture
def data_config():
  cfg = synthetic.get_config().data
  cfg.image_size, cfg.num_frames, cfg.crop_scale = 32, 4, 0.8      # crop side round(40 · 0.8) = 32
  cfg.frame_sampling, cfg.temporal_jitter, cfg.horizontal_flip = 'released', True, False
  cfg.frame_reference = 'none'
  cfg.targets = 'mol'
  return cfg


def _pair_sums(values, idx):
  """(T−1, ...): values (N−1, ...) summed over the stored steps between consecutive sampled frames."""
  return np.stack([values[a:b].sum(axis=0) for a, b in zip(idx[:-1], idx[1:])])


def test_compose_flows_of_translations_is_their_sum_and_of_no_step_is_zero():
  flow, steps = _translations(n=5, size=12)
  np.testing.assert_array_equal(input_pipeline.compose_flows(flow[:0]), np.zeros((12, 12, 2)))
  np.testing.assert_array_equal(input_pipeline.compose_flows(flow[2:3]), flow[2])
  np.testing.assert_allclose(input_pipeline.compose_flows(flow), np.broadcast_to(steps.sum(0), (12, 12, 2)),
                             atol=1e-6)


def test_compose_flows_follows_non_uniform_motion():
  size, a, b = 48, 3.0, 2.0
  y, x = np.mgrid[:size, :size].astype(np.float64)
  # Step 1 shifts each row by a · sin(y / 10); step 2 each column by b · sin(x / 10), read where step 1 went.
  first = np.stack([a * np.sin(y / 10), np.zeros_like(y)], axis=-1)
  second = np.stack([np.zeros_like(x), b * np.sin(x / 10)], axis=-1)
  got = input_pipeline.compose_flows(np.stack([first, second]))
  want = np.stack([a * np.sin(y / 10), b * np.sin((x + a * np.sin(y / 10)) / 10)], axis=-1)
  inner = (slice(4, -4), slice(4, -4))
  np.testing.assert_allclose(got[inner], want[inner], atol=1e-2)
  # Three small rotations about the centre compose into one rotation by the summed angle.
  c, angles = (size - 1) / 2, [0.02, -0.05, 0.04]

  def rotation(theta):
    ry = c + np.sin(theta) * (x - c) + np.cos(theta) * (y - c)
    rx = c + np.cos(theta) * (x - c) - np.sin(theta) * (y - c)
    return np.stack([rx - x, ry - y], axis=-1)

  got = input_pipeline.compose_flows(np.stack([rotation(t) for t in angles]))
  np.testing.assert_allclose(got[inner], rotation(sum(angles))[inner], atol=1e-2)


def test_eval_example_has_composed_flow_and_second_frame_landmarks_in_the_centred_crop(data_config):
  flow, steps = _translations()
  record = _record(flow)
  ex = input_pipeline.ClipTransform(data_config, train=False)(record)
  idx = ONSET + input_pipeline.sample_frame_indices(OFFSET - ONSET + 1, 4, 'released')
  np.testing.assert_array_equal(idx, [3, 6, 9, 12])
  assert ex['flow'].shape == (3, 32, 32, 2) and ex['flow'].dtype == np.float32
  assert ex['landmarks'].shape == (3, 68, 2) and ex['landmarks'].dtype == np.float32
  np.testing.assert_allclose(ex['flow'], np.broadcast_to(_pair_sums(steps, idx)[:, None, None], (3, 32, 32, 2)),
                             atol=1e-5)
  np.testing.assert_allclose(ex['landmarks'], _landmarks()[idx[1:]] - 4, atol=1e-5)   # (40 − 32) // 2
  # The MER keys are those of targets 'mer', which has no MOL targets.
  data_config.targets = 'mer'
  mer = input_pipeline.ClipTransform(data_config, train=False)(record)
  assert set(ex) - set(mer) == {'flow', 'landmarks'}
  for k in mer:
    np.testing.assert_array_equal(ex[k], mer[k])


def test_repeated_frames_of_a_short_window_have_zero_flow(data_config):
  flow, steps = _translations()
  ex = input_pipeline.ClipTransform(data_config, train=False)(_record(flow, onset=3, offset=5))
  # 3 frames for T = 4: floor(i · 3 / 4) = 0, 0, 1, 2 → stored frames 3, 3, 4, 5.
  np.testing.assert_allclose(ex['flow'][:, 0, 0], [[0, 0], steps[3], steps[4]], atol=1e-6)
  np.testing.assert_allclose(ex['landmarks'], _landmarks()[[3, 4, 5]] - 4, atol=1e-5)


def test_train_targets_follow_the_random_crop_and_temporal_offset_of_the_frames(data_config):
  transform = input_pipeline.ClipTransform(data_config, train=True)
  rows, (a_rows, b_rows) = _shear(axis=0)           # dx depends on y: reveals the crop's y0
  cols, (a_cols, b_cols) = _shear(axis=1)           # dy depends on x: reveals the crop's x0
  u = np.arange(32, dtype=np.float32)
  seen = set()
  for seed in range(6):
    replay = np.random.default_rng(seed)           # the transform's draws: temporal offset, then crop
    idx = ONSET + input_pipeline.sample_frame_indices(OFFSET - ONSET + 1, 4, 'released', replay)
    y0, x0 = replay.integers(0, 40 - 32 + 1, size=2)
    seen.add((idx[0], y0, x0))
    ex = transform(_record(rows, seed=seed), np.random.default_rng(seed))
    raw = _record(rows, seed=seed)['frames'][idx, y0:y0 + 32, x0:x0 + 32, 0].astype(np.float32)
    np.testing.assert_allclose(ex['frames'][..., 0], (raw / 255 - 0.5) / 0.5, atol=1e-6)
    np.testing.assert_allclose(ex['landmarks'], _landmarks()[idx[1:]] - [x0, y0], atol=1e-5)
    want_dx = _pair_sums(a_rows, idx)[:, None] + _pair_sums(b_rows, idx)[:, None] * (u + y0)   # (3, rows)
    np.testing.assert_allclose(ex['flow'][..., 0], np.broadcast_to(want_dx[:, :, None], (3, 32, 32)), atol=1e-5)
    np.testing.assert_array_equal(ex['flow'][..., 1], 0)
    ex = transform(_record(cols, seed=seed), np.random.default_rng(seed))
    want_dy = _pair_sums(a_cols, idx)[:, None] + _pair_sums(b_cols, idx)[:, None] * (u + x0)   # (3, cols)
    np.testing.assert_allclose(ex['flow'][..., 1], np.broadcast_to(want_dy[:, None, :], (3, 32, 32)), atol=1e-5)
  assert len(seen) > 1


@pytest.mark.parametrize('crop_scale, image_size', [(0.5, 32), (0.8, 24)])   # crop 20 → 32, crop 32 → 24
def test_resize_scales_the_flow_and_maps_landmarks_like_the_pixels(data_config, crop_scale, image_size):
  data_config.crop_scale, data_config.image_size = crop_scale, image_size
  crop = int(round(SIZE * crop_scale))
  x0, ratio = (SIZE - crop) // 2, image_size / crop
  flow, steps = _translations()
  ramp = np.broadcast_to((6 * np.arange(SIZE)).astype(np.uint8)[None, None, :, None], (N, SIZE, SIZE, 1))
  ex = input_pipeline.ClipTransform(data_config, train=False)(_record(flow, frames=ramp.copy()))
  idx = np.array([3, 6, 9, 12])
  assert ex['flow'].shape == (3, image_size, image_size, 2)
  np.testing.assert_allclose(ex['flow'], np.broadcast_to(_pair_sums(steps, idx)[:, None, None] * ratio,
                                                         ex['flow'].shape), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(ex['landmarks'], (_landmarks()[idx[1:]] - x0 + 0.5) * ratio - 0.5, atol=1e-4)
  # The frames' grey level is 6 · (stored column): read at a landmark's output x, it gives back its stored x.
  grey = (ex['frames'][1:, 0, :, 0] * 0.5 + 0.5) * 255                                  # (3, image_size)
  read = np.stack([np.interp(ex['landmarks'][i, :, 0], np.arange(image_size), grey[i]) for i in range(3)])
  np.testing.assert_allclose(read / 6, _landmarks()[idx[1:], :, 0], atol=0.15)


def test_released_recipe_crop_is_128_at_offset_8_in_evaluation(data_config):
  data_config.image_size, data_config.num_frames, data_config.crop_scale = 128, 8, 128 / 144
  assert int(round(144 * data_config.crop_scale)) == 128
  flow, steps = _translations(n=17, size=144)
  ex = input_pipeline.ClipTransform(data_config, train=False)(_record(flow, onset=0, offset=16))
  idx = np.arange(8) * 2                                   # 17 // 8 = 2, offset 0 in evaluation
  assert ex['frames'].shape == (8, 128, 128, 1) and ex['flow'].shape == (7, 128, 128, 2)
  np.testing.assert_allclose(ex['flow'][:, 64, 64], _pair_sums(steps, idx), atol=1e-5)
  np.testing.assert_allclose(ex['landmarks'], _landmarks(17)[idx[1:]] - 8, atol=1e-5)


def test_missing_flow_horizontal_flip_and_unknown_targets_are_refused(data_config):
  record = _record(_translations()[0])
  del record['flow']
  with pytest.raises(ValueError, match='no flow.*_144_flow'):
    input_pipeline.ClipTransform(data_config, train=False)(record)
  data_config.horizontal_flip = True
  with pytest.raises(ValueError, match='horizontal_flip'):
    input_pipeline.ClipTransform(data_config, train=True)
  data_config.horizontal_flip, data_config.targets = False, 'flow'
  with pytest.raises(ValueError, match='unknown data.targets'):
    input_pipeline.ClipTransform(data_config, train=False)


def test_example_shapes_and_padded_eval_batches_carry_the_mol_targets(data_config):
  source = [_record(_translations()[0], seed=i) for i in range(3)]
  batches = list(input_pipeline.eval_batches(source, [0, 1, 2], data_config, batch_size=2))
  shapes = input_pipeline.example_shapes(data_config, 2)
  assert len(batches) == 2
  for batch in batches:
    assert set(batch) == set(shapes)
    for k, v in shapes.items():
      assert batch[k].shape == v.shape and batch[k].dtype == v.dtype, k
  last = batches[-1]
  np.testing.assert_array_equal(last['mask'], [True, False])
  assert not last['flow'][1].any() and not last['landmarks'][1].any()
  assert last['flow'][0].any() and last['landmarks'][0].any()
  assert shapes['flow'].shape == (2, 3, 32, 32, 2) and shapes['landmarks'].shape == (2, 3, 68, 2)
  data_config.targets = 'mer'
  assert not {'flow', 'landmarks'} & set(input_pipeline.example_shapes(data_config, 2))
