"""Real training steps: the loss goes down, padding is ignored, and the optimisers behave as stated."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import synthetic
from conftest import OneFold
from fdp_jax import families, losses, train
from fdp_jax.families import build_model


def _setup(pooling='rank', batch=4, frames=4, image=32, ema_decay=0.0):
  config = synthetic.get_config()
  config.model.temporal_pooling = pooling
  config.train.ema_decay = ema_decay
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
  config.data.image_size, config.data.num_frames = image, frames
  model = build_model(config.model, 5, image)
  return config, OneFold(config, model, b), b


@pytest.mark.parametrize('pooling', ['rank', 'static'])
def test_train_steps_lower_the_loss_on_a_tiny_batch(pooling):
  # with the moving average the EMA test below uses: the same compiled steps, and the loss is unaffected
  config, steps, batch = _setup(pooling, ema_decay=0.9)
  state = steps.init(jax.random.key(0))
  values, mer, accuracy = [], [], []
  for i in range(12):
    state, m = steps.train(state, batch, i)
    values.append(float(m['loss']))
    mer.append(float(m['loss_mer']))
    accuracy.append(float(m['accuracy']))
  assert all(np.isfinite(values))
  assert np.mean(values[-3:]) < 0.8 * np.mean(values[:3]), values
  # The classification itself learns, not only the dynamic-image and ranking targets, which can lower the
  # total alone: measured, the cross-entropy falls from 1.6 to 1e-4 and the batch goes from 0 to 4 of 4 right.
  assert np.mean(mer[-3:]) < 0.05 * np.mean(mer[:3]), mer
  assert accuracy[0] <= 0.25 and accuracy[-3:] == [1.0] * 3, accuracy
  assert int(steps.unstack(state).step) == 12


def test_padding_examples_do_not_change_the_losses():
  config, steps, batch = _setup('arp')
  state = steps.unstack(steps.init(jax.random.key(0)))
  apply = jax.jit(lambda v, x, m: state.apply_fn(v, x, m, train=False))   # op by op is slower
  outputs = apply({'params': state.params, 'batch_stats': state.batch_stats}, batch['frames'],
                  batch['frame_mask'])
  weights = families.family(config.model).loss_weights(config)
  full = losses.fdp_losses(outputs, {**batch, 'mask': np.array([1, 1, 0, 0], bool)}, weights)
  half = losses.fdp_losses(jax.tree.map(lambda x: x[:2], outputs),
                          {k: v[:2] for k, v in batch.items()}, weights)
  for k in ('loss_mer', 'loss_dynamic_image', 'loss'):
    np.testing.assert_allclose(full[k], half[k], rtol=1e-5)


def test_rank_loss_weight_only_applies_with_a_rank_scorer():
  config = synthetic.get_config()
  family = families.family(config.model)
  assert family.loss_weights(config).rank == config.loss.rank > 0
  config.model.temporal_pooling = 'arp'
  assert family.loss_weights(config).rank == 0.0


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


def test_balanced_class_weights_equalise_classes_and_keep_the_mean():
  labels = np.array([0, 0, 0, 1, 2, 2])
  w = losses.balanced_class_weights(labels, 4)
  np.testing.assert_allclose(w, [2 / 3, 2, 1, 0], rtol=1e-6)          # class 3 has no examples
  np.testing.assert_allclose(w[labels].mean(), 1.0, rtol=1e-6)
  np.testing.assert_allclose(np.bincount(labels, weights=w[labels]), [2, 2, 2])


def test_class_weight_scales_each_example_cross_entropy():
  config, steps, batch = _setup('arp')
  state = steps.unstack(steps.init(jax.random.key(0)))
  apply = jax.jit(lambda v, x, m: state.apply_fn(v, x, m, train=False))   # op by op is slower
  outputs = apply({'params': state.params, 'batch_stats': state.batch_stats}, batch['frames'],
                  batch['frame_mask'])
  weights = families.family(config.model).loss_weights(config)
  plain = losses.fdp_losses(outputs, batch, weights)
  doubled = losses.fdp_losses(outputs, {**batch, 'class_weight': np.full(4, 2.0, np.float32)}, weights)
  one_only = losses.fdp_losses(outputs, {**batch, 'class_weight': np.array([4, 0, 0, 0], np.float32)}, weights)
  np.testing.assert_allclose(doubled['loss_mer'], 2 * plain['loss_mer'], rtol=1e-6)
  ce0 = -jax.nn.log_softmax(outputs['logits'][0])[batch['label'][0]]
  np.testing.assert_allclose(one_only['loss_mer'], ce0, rtol=1e-5)     # 4·ce0 / 4 examples
  np.testing.assert_allclose(doubled['loss_dynamic_image'], plain['loss_dynamic_image'])


def test_released_variant_trains_with_the_same_steps():
  """The released FDP (tiny encoder and SegNet; released volume and heads) through the trainer's steps: its
  family has no ranking loss (no rank scorer), the released recipe weighs the dynamic image 100, and a step
  changes every parameter."""
  from configs import released_recipe
  from fdp_jax.models.fdp_released import ReleasedFDP
  config = released_recipe.released_config('synthetic_me', 'default', 5)
  config.model.stem_channels, config.model.depths, config.model.channels = (8, 8, 8), (1, 1), (16, 16)
  config.model.segnet_channels = (4, 4, 4, 4, 4)
  config.train.batch_size = 2
  model = build_model(config.model, 5, 64)
  assert isinstance(model, ReleasedFDP)
  assert families.family(config.model).loss_weights(config).dynamic_image == 100.0
  rng = np.random.default_rng(0)
  batch = {'frames': rng.uniform(-1, 1, (2, 8, 64, 64, 1)).astype(np.float32),
           'frame_mask': np.ones((2, 8), bool),
           'dynamic_image': rng.uniform(0, 1, (2, 64, 64)).astype(np.float32),
           'label': np.array([1, 3], np.int32), 'mask': np.ones((2,), bool)}
  steps = OneFold(config, model, batch)
  state = steps.init(jax.random.key(0))
  before = jax.tree.map(np.asarray, state.params)
  state, m = steps.train(state, batch, 1)
  assert np.isfinite(float(m['loss'])) and 'loss_rank' not in m
  np.testing.assert_allclose(m['loss'], m['loss_mer'] + 100 * m['loss_dynamic_image'], rtol=1e-6)
  changed = jax.tree.map(lambda a, b: not np.array_equal(a, b), before, jax.device_get(state.params))
  assert all(jax.tree.leaves(changed))
  out = steps.eval(state, batch)
  assert out['probabilities'].shape == (2, 5)
  with pytest.raises(ValueError, match='64'):
    build_model(config.model, 5, 32)


def test_moving_average_of_parameters_follows_them_and_is_what_evaluation_uses():
  config, steps, batch = _setup(ema_decay=0.9)
  state = steps.init(jax.random.key(0))
  first = jax.tree.map(np.asarray, state.params)
  jax.tree.map(np.testing.assert_array_equal, first, jax.tree.map(np.asarray, state.ema_params))
  state, _ = steps.train(state, batch, 0)
  # Step 1: d = min(0.9, 2/11): the average moves most of the way to the new parameters.
  d = 2 / 11
  expected = jax.tree.map(lambda e, p: d * e + (1 - d) * np.asarray(p), first, state.params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), expected,
               jax.tree.map(np.asarray, state.ema_params))
  for i in range(1, 6):
    state, _ = steps.train(state, batch, i)
  probs_ema = np.asarray(steps.eval(state, batch)['probabilities'])
  probs_raw = np.asarray(steps.eval(state.replace(ema_params=None), batch)['probabilities'])
  assert not np.allclose(probs_ema, probs_raw)          # evaluation scores the averaged parameters
  with_average = state.replace(params=state.ema_params)
  np.testing.assert_allclose(probs_ema, np.asarray(steps.eval(with_average.replace(ema_params=None),
                                                              batch)['probabilities']), rtol=1e-6)


@pytest.mark.numerics
def test_initialisation_compiled_at_low_optimisation_gives_the_same_parameters():
  """`train.jit_init` (LLVM level 1, for compile time) draws bitwise the parameters a default compile does,
  with every initializer the models use, so results measured before the switch still reproduce."""
  import flax.linen as nn
  from fdp_jax.models import layers

  class Inits(nn.Module):
    @nn.compact
    def __call__(self, x):
      x = layers.conv(6, 3, use_bias=True, name='conv')(x)                      # truncated normal, zeros
      x = layers.conv(5, 3, kernel_init=layers.TORCH_DEFAULT_INIT, name='torch_conv')(x)
      x = nn.Conv(4, (2, 2, 1), kernel_init=layers.TORCH_DEFAULT_INIT, name='conv3d')(x[..., None])
      x = layers.dense(7, name='dense')(x.reshape(x.shape[0], -1))
      x = x + self.param('meta', nn.initializers.normal(0.02), (3, 7)).sum(0)
      return nn.BatchNorm(use_running_average=True, name='norm')(x)

  x = jnp.zeros((2, 9, 9, 3))
  init = lambda key: Inits().init(key, x)
  # XLA's default level, 3, named: the suite itself compiles at a lower one (conftest.py).
  default = jax.jit(init, compiler_options={'xla_backend_optimization_level': 3})
  for seed in (0, 1):
    a = default(jax.random.key(seed))
    b = train.jit_init(init)(jax.random.key(seed))
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      np.testing.assert_array_equal(u, v)
