"""Logged training curves: interval means accumulated inside the step, and the signals that show FDP's rank
scorer and decoder (and MOL's heads) at work, each against its trivial value."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from configs import synthetic
from conftest import OneFold
from fdp_jax import families, train, training_signals
from fdp_jax.families import build_model


def test_kendall_tau_matches_scipy_on_the_valid_frames():
  rng = np.random.default_rng(0)
  scores = rng.normal(size=(6, 7)).astype(np.float32)
  mask = np.ones((6, 7), bool)
  mask[1, 5:] = False
  mask[2, ::2] = False
  mask[3, 1:] = False                       # one valid frame: nothing to order
  tau = np.asarray(training_signals.kendall_tau(jnp.asarray(scores), jnp.asarray(mask)))
  for b in range(6):
    valid = np.flatnonzero(mask[b])
    want = stats.kendalltau(valid, scores[b, valid]).statistic if len(valid) > 1 else 0.0
    np.testing.assert_allclose(tau[b], want, atol=1e-6)
  ordered = jnp.arange(5.0)[None]
  full = jnp.ones((1, 5), bool)
  assert float(training_signals.kendall_tau(ordered, full)[0]) == 1.0
  assert float(training_signals.kendall_tau(-ordered, full)[0]) == -1.0
  assert float(training_signals.kendall_tau(jnp.zeros((1, 5)), full)[0]) == 0.0   # ties: neither


def test_dynamic_image_unexplained_is_one_for_the_batch_mean_and_zero_when_exact():
  rng = np.random.default_rng(1)
  target = rng.uniform(size=(4, 8, 8)).astype(np.float32)
  mask = np.array([True, True, True, False])
  target[3] = 5.0                            # a padding clip counts for nothing
  mean = target[:3].mean(0)
  unexplained = training_signals.dynamic_image_unexplained
  np.testing.assert_allclose(unexplained(jnp.broadcast_to(mean, target.shape), target, mask), 1.0, rtol=1e-5)
  assert float(unexplained(jnp.asarray(target), target, mask)) == 0.0
  noisy = target + rng.normal(0, 0.05, target.shape).astype(np.float32)
  assert 0 < float(unexplained(jnp.asarray(noisy), target, mask)) < 0.2


def test_mol_signals_read_one_for_zero_flow_and_zero_for_exact_landmarks():
  rng = np.random.default_rng(2)
  batch = {'flow': rng.normal(size=(2, 3, 8, 8, 2)).astype(np.float32),
           'landmarks': rng.uniform(0, 64, (2, 3, 68, 2)).astype(np.float32), 'mask': np.ones(2, bool)}
  out = training_signals.mol_signals({'flow': jnp.zeros_like(batch['flow']), 'landmarks': batch['landmarks']},
                                     batch)
  np.testing.assert_allclose(out['flow_epe_vs_zero'], 1.0, rtol=1e-6)
  assert float(out['landmark_nme']) == 0.0


def _batch(frames=4, image=32, size=4):
  rng = np.random.default_rng(0)
  return {'frames': rng.uniform(-1, 1, (size, frames, image, image, 1)).astype(np.float32),
          'frame_mask': np.ones((size, frames), bool),
          'dynamic_image': rng.uniform(0, 1, (size, image, image)).astype(np.float32),
          'label': np.arange(size, dtype=np.int32) % 5, 'mask': np.ones((size,), bool)}


def _config(pooling='rank'):
  config = synthetic.get_config()
  config.model.temporal_pooling = pooling
  config.train.learning_rate, config.train.schedule = 3e-3, 'constant'
  config.data.image_size, config.data.num_frames = 32, 4
  return config


def test_the_step_returns_the_mean_of_every_step_since_the_last_logging_point():
  config, batch = _config(), _batch()
  model = build_model(config.model, 5, 32)
  every_step, every_third = OneFold(config, model, batch, 1), OneFold(config, model, batch, 3)
  a, b = every_step.init(jax.random.key(0)), every_third.init(jax.random.key(0))
  single, means = [], []
  for step in range(7):
    a, m1 = every_step.train(a, batch, step)
    b, m3 = every_third.train(b, batch, step)
    single.append(m1)
    means.append(m3)
  assert {'loss', 'accuracy', 'grad_norm', 'rank_tau', 'di_unexplained'} <= set(single[0])
  for key in ('loss', 'loss_rank', 'rank_tau', 'di_unexplained', 'grad_norm'):
    values = [float(m[key]) for m in single]
    if key in ('loss', 'grad_norm'):                          # they move, so a mean differs from a value
      assert len(set(np.round(values, 6))) == len(values), (key, values)
    for step, start in ((0, 0), (1, 0), (2, 0), (3, 3), (5, 3), (6, 6)):   # restarts after steps 3 and 6
      np.testing.assert_allclose(float(means[step][key]), np.mean(values[start:step + 1]), rtol=2e-4, atol=1e-6,
                                 err_msg=f'{key} at step {step}')
  assert float(every_third.unstack(b).metric_sums['steps']) == 1.0


@pytest.mark.parametrize('pooling, signals', [('rank', {'rank_tau', 'di_unexplained'}),
                                              ('arp', {'di_unexplained'})])
def test_only_a_model_with_a_rank_scorer_logs_its_kendall_tau(pooling, signals):
  config = _config(pooling)
  options = train.options_for(config, 'cpu')
  outputs = {'dynamic_image': jnp.zeros((4, 32, 32)), 'rank_scores': jnp.zeros((4, 4)), 'logits': jnp.zeros((4, 5))}
  assert set(options.train_metrics(outputs, _batch())) == signals
  assert families.family(config.model).name == 'fdp'
