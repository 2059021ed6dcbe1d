"""Real training steps: the loss goes down, padding is ignored, and the optimisers behave as stated."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import synthetic
from fdp_jax import cross_validation, train
from fdp_jax.models import build_model


def _setup(pooling='rank', batch=4, frames=4, image=32):
  config = synthetic.get_config()
  config.model.temporal_pooling = pooling
  config.train.learning_rate = 3e-3
  config.train.schedule = 'constant'
  rng = np.random.default_rng(0)
  b = {
      'frames': rng.uniform(-1, 1, (batch, frames, image, image, 1)).astype(np.float32),
      'frame_mask': np.ones((batch, frames), bool),
      'dynamic_image': rng.uniform(0, 1, (batch, image, image)).astype(np.float32),
      'label': np.arange(batch, dtype=np.int32) % 5,
      'mask': np.ones((batch,), bool),
  }
  model = build_model(config.model, 5, image)
  steps = train.make_steps(model, config.train, cross_validation.loss_weights(config), b)
  return config, steps, b


@pytest.mark.parametrize('pooling', ['rank', 'static'])
def test_train_steps_lower_the_loss_on_a_tiny_batch(pooling):
  config, steps, batch = _setup(pooling)
  state = steps.init(jax.random.key(0))
  losses = []
  for i in range(12):
    state, m = steps.train(state, batch, jax.random.key(i))
    losses.append(float(m['loss']))
  assert all(np.isfinite(losses))
  assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses
  assert int(state.step) == 12


def test_padding_examples_do_not_change_the_losses():
  config, steps, batch = _setup('arp')
  state = steps.init(jax.random.key(0))
  outputs = state.apply_fn({'params': state.params, 'batch_stats': state.batch_stats}, batch['frames'],
                           batch['frame_mask'], train=False)
  weights = cross_validation.loss_weights(config)
  full = train.fdp_losses(outputs, {**batch, 'mask': np.array([1, 1, 0, 0], bool)}, weights)
  half = train.fdp_losses(jax.tree.map(lambda x: x[:2], outputs),
                          {k: v[:2] for k, v in batch.items()}, weights)
  for k in ('loss_mer', 'loss_dynamic_image', 'loss'):
    np.testing.assert_allclose(full[k], half[k], rtol=1e-5)


def test_rank_loss_weight_only_applies_with_a_rank_scorer():
  config = synthetic.get_config()
  assert cross_validation.loss_weights(config).rank == config.loss.rank > 0
  config.model.temporal_pooling = 'arp'
  assert cross_validation.loss_weights(config).rank == 0.0


def test_adam_l2_couples_weight_decay_into_the_gradient():
  config = synthetic.get_config().train
  config.optimizer, config.schedule, config.learning_rate, config.weight_decay = 'adam_l2', 'constant', 0.1, 0.5
  config.grad_clip_norm = 0.0
  tx = train.make_optimizer(config)
  params = {'w': jnp.array([2.0])}
  updates, _ = tx.update({'w': jnp.array([0.0])}, tx.init(params), params)
  # zero loss gradient: Adam sees g = wd·w = 1.0, so its first normalised step is −lr·sign = −0.1
  np.testing.assert_allclose(updates['w'], [-0.1], rtol=1e-4)


def test_unknown_optimizer_and_schedule_are_named():
  config = synthetic.get_config().train
  config.optimizer = 'sgdx'
  with pytest.raises(ValueError, match='sgdx'):
    train.make_optimizer(config)
  config.optimizer, config.schedule = 'adamw', 'cosinex'
  with pytest.raises(ValueError, match='cosinex'):
    train.make_optimizer(config)
