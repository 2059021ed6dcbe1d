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

# Compared against recorded values or across compiled programs: CI runs it for an older CPU too.
pytestmark = pytest.mark.numerics


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
  """One compiled step run from the same state at two logging intervals (every step: each step's own value;
  every third: the means since the last multiple of 3). The parameters follow the same floats in both, so
  the means are those of the very values the step logs one by one — Kendall's τ included, which jumps when
  two scores swap, so that it could not be compared across two differently compiled programs."""
  config, batch = _config(), _batch()
  model = build_model(config.model, 5, 32)
  options = train.options_for(config, 'cpu')
  state = train.with_metric_sums(train.create_train_state(model, config.train, batch, jax.random.key(0)), batch,
                                 options)

  @jax.jit
  def step(state, log_every):
    return train.train_step(state, batch, jax.random.fold_in(jax.random.key(1), state.step),
                            options._replace(log_every_steps=log_every))

  a, b, single, means = state, state, [], []
  for _ in range(7):
    a, m1 = step(a, np.int32(1))
    single.append(m1)
  programs = step._cache_size()
  for _ in range(7):
    b, m3 = step(b, np.int32(3))
    means.append(m3)
  assert step._cache_size() == programs                        # the second interval ran the same programs
  assert {'loss', 'accuracy', 'grad_norm', 'rank_tau', 'di_unexplained'} <= set(single[0])
  jax.tree.map(np.testing.assert_array_equal, a.params, b.params)     # the logging interval left them alone
  for key in single[0]:
    values = [float(m[key]) for m in single]
    if key in ('loss', 'grad_norm', 'rank_tau'):              # they move, so a mean differs from a value
      assert len(set(np.round(values, 6))) > 3, (key, values)
    for at, start in ((0, 0), (1, 0), (2, 0), (3, 3), (4, 3), (5, 3), (6, 6)):   # restarts after steps 2 and 5
      np.testing.assert_allclose(float(means[at][key]), np.mean(values[start:at + 1]), rtol=1e-6, atol=1e-7,
                                 err_msg=f'{key} at step {at}')
  assert float(b.metric_sums['steps']) == 1.0 and float(a.metric_sums['steps']) == 1.0


def test_the_trainers_steps_log_interval_means_at_the_configured_interval():
  """The trainer's own jitted steps (another program than the test above's) with train.log_every_steps=3
  against the same steps logging every step: the continuous signals agree to rounding (a discontinuous one,
  Kendall's τ, may move by a whole swapped pair on another CPU's rounding, so it is left out here)."""
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
  for key in ('loss', 'loss_rank', 'di_unexplained', 'grad_norm'):
    values = [float(m[key]) for m in single]
    for step, start in ((0, 0), (2, 0), (3, 3), (5, 3), (6, 6)):
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
