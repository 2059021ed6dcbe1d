"""The sampling, augmentation and normalisation rules (fdp_jax.clip_rules): one function per rule, which the host
pipeline runs on numpy and the on-device sampler on jnp, giving the same frames."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import synthetic
from fdp_jax import clip_rules, device_input, input_pipeline
from fdp_jax.preprocess.dynamic_image import dynamic_image_uint8

WINDOWS = np.arange(1, 41)


def _on_device(rule, t, fraction, offset):
  """frame_positions on jnp under jit, for every window length of WINDOWS: (len(WINDOWS), T)."""
  return np.asarray(jax.jit(jax.vmap(lambda n: clip_rules.frame_positions(n, t, rule, fraction, offset, jnp)))(
      jnp.asarray(WINDOWS, jnp.int32)))


@pytest.mark.parametrize('t', [3, 4, 8])
def test_released_rule_takes_the_same_frames_on_numpy_and_jnp(t):
  for offset in range(3):
    host = np.stack([clip_rules.frame_positions(int(n), t, 'released', offset=min(offset, max(n // t - 1, 0)))
                     for n in WINDOWS])
    device = np.asarray(jax.jit(jax.vmap(lambda n: clip_rules.frame_positions(
        n, t, 'released', offset=jnp.clip(offset, 0, jnp.maximum(n // t - 1, 0)), xp=jnp)))(
            jnp.asarray(WINDOWS, jnp.int32)))
    np.testing.assert_array_equal(device, host)
  np.testing.assert_array_equal(clip_rules.frame_positions(3, 6, 'released'), [0, 0, 1, 1, 2, 2])   # short: repeats
  # A view's offset: the same on both, and always a valid one.
  for fraction in (0.0, 0.3, 0.5, 0.9, 0.9999999):
    host = np.array([clip_rules.released_offset(fraction, int(n), t) for n in WINDOWS if n >= t])
    device = jax.vmap(lambda n: clip_rules.released_offset(jnp.float32(fraction), n, t, jnp))(
        jnp.asarray(WINDOWS[WINDOWS >= t], jnp.int32))
    np.testing.assert_array_equal(device, host)
    assert np.all((0 <= host) & (host < WINDOWS[WINDOWS >= t] // t))


@pytest.mark.parametrize('t', [2, 4, 8])
def test_segment_rule_takes_the_same_frames_on_numpy_and_jnp(t):
  """Segment centres, evaluation views and per-segment points on a 1/16 grid, where both executors'
  arithmetic is exact: the same frames, each inside its segment."""
  grid = (np.arange(16 * t) % 16 / 16).reshape(16, t)
  for fraction in [0.5] + [(v + 0.5) / 4 for v in range(4)] + list(grid):
    host = np.stack([clip_rules.frame_positions(int(n), t, 'segments', fraction) for n in WINDOWS])
    device = _on_device('segments', t, jnp.asarray(fraction, jnp.float32), 0)
    np.testing.assert_array_equal(device, host)
    edges = WINDOWS[:, None] * np.arange(t + 1) / t
    assert np.all((host >= np.floor(edges[:, :-1])) & (host < edges[:, 1:]))
  with pytest.raises(ValueError, match='unknown frame sampling'):
    clip_rules.frame_positions(10, 4, 'random')


def test_frames_targets_crop_and_flip_are_the_same_on_numpy_and_jnp():
  rng = np.random.default_rng(0)
  grey = rng.integers(0, 256, size=(4, 12, 12), dtype=np.uint8)
  config = synthetic.get_config().data
  for reference, normalization in [('none', None), ('clip_mean', (0.1, 0.8)), ('first', (-0.2, 1.3))]:
    config.frame_reference, config.reference_gain = reference, 3.0
    host = clip_rules.model_frames(grey, config, normalization)
    device = jax.jit(lambda g, s: clip_rules.model_frames(g, config, s, jnp))(
        grey.astype(np.float32), None if normalization is None else jnp.asarray(normalization, jnp.float32))
    assert host[0].shape == device[0].shape == (4, 12, 12, 1) and host[1].shape == device[1].shape == (12, 12)
    np.testing.assert_allclose(device[0], host[0], rtol=0, atol=1e-6)
    assert np.abs(np.asarray(device[1]) - host[1]).max() <= 1 / 255 + 1e-7      # float32 against float64
  for flip in (False, True):
    np.testing.assert_array_equal(jax.jit(lambda g, f: clip_rules.flip_horizontally(g, f, jnp))(grey, flip),
                                  clip_rules.flip_horizontally(grey, flip))
  np.testing.assert_array_equal(clip_rules.flip_horizontally(grey, True), grey[:, :, ::-1])
  resized = np.array([-0.4, 0.5, 1.5, 2.5, 254.6, 255.4], np.float32)
  np.testing.assert_array_equal(clip_rules.grey_levels(resized), [0, 0, 2, 2, 255, 255])
  np.testing.assert_array_equal(clip_rules.grey_levels(jnp.asarray(resized), jnp), clip_rules.grey_levels(resized))
  assert clip_rules.crop_side(40, 0.8) == 32 and clip_rules.centred_corner(40, 32) == 4
  assert clip_rules.centred_corner(40, 33) == 3                                     # rounded towards the top left


def test_the_host_target_is_the_released_uint8_dynamic_image():
  frames01 = np.random.default_rng(1).integers(0, 256, size=(8, 16, 16)).astype(np.float32) / 255
  np.testing.assert_array_equal(clip_rules.dynamic_image_target(frames01),
                                dynamic_image_uint8(frames01).astype(np.float32) / 255.0)
  still = np.repeat(frames01[:1], 8, axis=0)
  assert not clip_rules.dynamic_image_target(still).any()


def test_both_executors_sample_through_the_same_rules(monkeypatch):
  """The host pipeline and the device sampler call the one implementation, each with its own namespace."""
  calls = []

  def spy(name):
    rule = getattr(clip_rules, name)

    def recording(*args, **kwargs):
      xp = kwargs.get('xp') or next((a for a in args if a is np or a is jnp), np)
      calls.append((name, xp.__name__))
      return rule(*args, **kwargs)
    return recording

  for name in ('frame_positions', 'model_frames'):
    monkeypatch.setattr(clip_rules, name, spy(name))
  config = synthetic.get_config().data
  config.num_frames, config.image_size = 4, 12
  record = {'frames': np.zeros((10, 12, 12, 1), np.uint8), 'label': 1, '_index': 0, 'onset': 1, 'offset': 8}
  input_pipeline.ClipTransform(config, train=True)(record, np.random.default_rng(0))
  assert calls == [('frame_positions', 'numpy'), ('model_frames', 'numpy')]
  calls.clear()
  device_input._frame_positions(jnp.int32(8), 4, 'segments', jnp.full((4,), 0.5))
  clips = device_input.load_clips([record], config)
  table = device_input.fold_table(np.zeros(1, np.int32), np.ones(5, np.float32), None, 1)
  device_input.eval_batch(clips, table, np.zeros(1, np.int32), np.ones(1, bool), np.zeros((1, 4), np.int32), config)
  assert calls == [('frame_positions', 'jax.numpy'), ('model_frames', 'jax.numpy')]
