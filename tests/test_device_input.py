"""The corpus on the device (fdp_jax.device_input): evaluation batches identical to the host pipeline's,
training batches drawn from the same distributions (frame index rules, crops, flips, epochs), when it is
chosen, and a LOSO run that samples on the device and resumes exactly."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_config
from fdp_jax import data_sources, device_input, experiment, input_pipeline
from fdp_jax.cv import loso


@pytest.fixture(scope='module')
def corpus(tiny_data_dir):
  config = tiny_config(tiny_data_dir)
  source, index, _ = data_sources.load_corpus(config.data)
  return source, index


def data_config(tiny_data_dir, **overrides):
  config = tiny_config(tiny_data_dir).data
  for key, value in overrides.items():
    config[key] = value
  return config


def host_eval_batch(source, records, data, position, normalization=None):
  return next(input_pipeline.eval_batches(source, records, data, len(records), normalization, position))


@pytest.mark.numerics
@pytest.mark.parametrize('overrides, position', [
    ({}, None),                                                           # segments, onset–offset window
    ({'frame_sampling': 'released', 'window': 'whole'}, 0.3),             # the released rule, a view
    ({'frame_reference': 'first', 'reference_gain': 2.0}, 0.7),
])
def test_device_evaluation_batches_are_the_hosts(tiny_data_dir, corpus, overrides, position):
  source, _ = corpus
  data = data_config(tiny_data_dir, **overrides)
  clips = device_input.load_clips(source, data)
  records = np.array([0, 3, 7, 12, 39])
  host = host_eval_batch(source, records, data, position)
  positions = device_input.eval_frame_indices(clips['length'], data, position)[records]
  table = device_input.fold_table(np.zeros((1,), np.int32), np.zeros(5, np.float32), None, len(clips['length']))
  device = jax.jit(lambda c, t, r, m, p: device_input.eval_batch(c, t, r, m, p, data))(
      clips, table, records, np.ones(len(records), bool), positions)
  np.testing.assert_allclose(device['frames'], host['frames'], rtol=0, atol=1e-6)
  for key in ('frame_mask', 'label', 'index', 'mask'):
    np.testing.assert_array_equal(device[key], host[key], err_msg=key)
  # The dynamic-image target: the same uint8 image up to one grey level (float32 against float64).
  assert np.abs(np.asarray(device['dynamic_image']) - host['dynamic_image']).max() <= 1 / 255 + 1e-6


@pytest.mark.numerics
def test_cropped_and_resized_evaluation_frames_are_the_hosts_to_a_grey_level(tiny_data_dir, corpus):
  """A centred 24-px crop of the 32-px faces resized back to 32: PIL (host) and jax.image.resize (device)
  interpolate alike, in float32, and both round to the nearest grey level."""
  source, _ = corpus
  data = data_config(tiny_data_dir, crop_scale=0.75, frame_reference='none')   # the frames themselves
  clips = device_input.load_clips(source, data)
  records = np.arange(8)
  host = host_eval_batch(source, records, data, None)
  positions = device_input.eval_frame_indices(clips['length'], data, None)[records]
  table = device_input.fold_table(np.zeros((1,), np.int32), np.zeros(5, np.float32), None, len(clips['length']))
  device = device_input.eval_batch(clips, table, records, np.ones(8, bool), positions, data)
  np.testing.assert_allclose(device['frames'], host['frames'], rtol=0, atol=1e-6)


def _device_positions(n, t, rule, draws, seed=0):
  u = jax.random.uniform(jax.random.key(seed), (draws, t))
  return np.asarray(jax.vmap(lambda u: device_input._frame_positions(jnp.int32(n), t, rule, u))(u))


@pytest.mark.numerics
@pytest.mark.parametrize('rule', ['segments', 'released'])
def test_training_frame_indices_follow_the_hosts_rules(rule):
  """For each window length, every frame index drawn on the device is one the host rule can draw, every
  one the host draws shows up, in the same proportions (5000 draws each, within 4 percentage points)."""
  rng = np.random.default_rng(0)
  for n in (3, 4, 7, 9, 16, 23, 36):
    device = _device_positions(n, 4, rule, 5000)
    host = np.stack([input_pipeline.sample_frame_indices(n, 4, rule, rng) for _ in range(5000)])
    assert np.all(np.diff(device, axis=1) >= 0) and device.min() >= 0 and device.max() <= n - 1
    for i in range(4):
      assert set(device[:, i]) == set(host[:, i]), (n, i)
      values = sorted(set(host[:, i]))
      share = lambda a: np.array([(a[:, i] == v).mean() for v in values])   # noqa: E731
      assert np.abs(share(device) - share(host)).max() < 0.04, (n, i)
    if rule == 'released' and n >= 8:       # one random offset shared by all T frames, as the host's
      assert np.all(np.diff(device, axis=1) == n // 4)


def test_training_batches_crop_flip_and_cover_each_epoch(tiny_data_dir, corpus):
  source, index = corpus
  data = data_config(tiny_data_dir, crop_scale=0.75, horizontal_flip=True)
  clips = device_input.load_clips(source, data)
  train_indices = np.arange(10, 40)                              # 30 training records; B = 4
  table = device_input.fold_table(train_indices, np.linspace(1, 2, 5), None, len(clips['length']))
  batch = jax.jit(lambda step: device_input.train_batch(clips, table, jax.random.key(1), jax.random.key(2),
                                                        step, data, 4))
  seen = np.concatenate([np.asarray(batch(s)['index']) for s in range(15)])     # 60 = two epochs
  assert sorted(seen[:30]) == sorted(seen[30:]) == list(train_indices)          # each epoch: every record once
  assert seen[:30].tolist() != seen[30:].tolist()                               # reshuffled per epoch
  one = batch(3)
  again = batch(3)
  for key in one:                                     # a step's batch is a function of the key and step
    np.testing.assert_array_equal(one[key], again[key])
  np.testing.assert_allclose(one['class_weight'], np.linspace(1, 2, 5)[np.asarray(one['label'])], rtol=1e-6)
  assert one['frames'].shape == (4, data.num_frames, 32, 32, 1) and one['dynamic_image'].shape == (4, 32, 32)
  # Crops: the 24-px window's corner is uniform over the 9 × 9 positions; flips: half the time. Checked on
  # the helper's draws.
  keys = jax.random.split(jax.random.key(5), 4000)
  corners = np.asarray(jax.vmap(lambda k: jax.random.randint(k, (2,), 0, 32 - 24 + 1))(keys))
  assert corners.min() == 0 and corners.max() == 8
  assert np.abs(np.bincount(corners[:, 0], minlength=9) / 4000 - 1 / 9).max() < 0.03


def test_the_device_path_is_chosen_where_it_fits(tiny_data_dir, corpus):
  _, index = corpus
  data = data_config(tiny_data_dir)

  class Accelerator:
    platform = 'tpu'

    def __init__(self, limit):
      self.limit = limit

    def memory_stats(self):
      return {'bytes_limit': self.limit}

  need = device_input.stored_bytes(index, data)
  assert need == len(index) * int(index.window_lengths.max()) * 32 * 32
  assert device_input.use_device_input(data, index, Accelerator(8 * need))         # 1/8 of the device's memory
  assert not device_input.use_device_input(data, index, Accelerator(2 * need))     # above data.device_share
  assert not device_input.use_device_input(data, index, jax.devices()[0])          # CPU: the host pipeline
  data.on_device = 'always'
  assert device_input.use_device_input(data, index, jax.devices()[0])
  data.targets = 'mol'
  with pytest.raises(ValueError, match="needs data.targets 'mer'"):
    device_input.use_device_input(data, index, Accelerator(8 * need))


def test_a_loso_run_samples_on_the_device_and_resumes_exactly(tiny_data_dir, tmp_path, monkeypatch):
  """data.on_device='always': the run trains from the on-device sampler; killed after its step-2
  checkpoint and rerun, it finishes with the results of an uninterrupted run."""
  config = tiny_config(tiny_data_dir, num_steps=4, log_every_steps=2)
  config.data.on_device = 'always'
  config.cv.checkpoint_every_steps = 2
  straight = experiment.main(config, str(tmp_path / 'straight'))
  assert all(np.isfinite(f['metrics']['uf1']) for f in straight['folds'])
  history = json.load(open(tmp_path / 'straight' / 'train_history.json'))
  assert all(np.isfinite(h['loss']).all() for h in history.values())

  make = loso.make_group_steps

  class Interrupted(Exception):
    pass

  def interrupted(*a, **kw):
    fsteps = make(*a, **kw)
    assert fsteps.corpus is not None

    def train_on_device(state, tables, keys, step, clips):
      if step == 3:
        raise Interrupted
      return fsteps.train_on_device(state, tables, keys, step, clips)
    return fsteps._replace(train_on_device=train_on_device)

  monkeypatch.setattr(loso, 'make_group_steps', interrupted)
  with pytest.raises(Interrupted):
    experiment.main(config, str(tmp_path / 'resumed'))
  monkeypatch.setattr(loso, 'make_group_steps', make)
  resumed = experiment.main(config, str(tmp_path / 'resumed'))
  assert os.path.exists(tmp_path / 'resumed' / 'results.json')
  assert resumed == straight
