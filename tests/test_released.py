"""The released FDP variant (fdp_jax.models.fdp_released): parity of its heads with the released PyTorch code,
the reshape that interleaves time and features, and the train / eval behaviour of the whole model."""

import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import FIXTURES, reference_variables
from fdp_jax.models import fdp_released, layers
from fdp_jax.models.lgfat import EncoderSpec

# Compared against recorded values or across compiled programs: CI runs it for an older CPU too.
pytestmark = pytest.mark.numerics

# A CPU-sized encoder and SegNet; the volume, the CLSNet and the 4096-d frame features keep released sizes.
# A high drop-path rate, so that two dropout keys surely give different outputs.
TINY_MODEL = fdp_released.ReleasedFDP(
    encoder=EncoderSpec(stem_channels=(8, 8, 8), depths=(1, 1), channels=(16, 16), drop_path_rate=0.5,
                        block_layout='released'),
    segnet_channels=(4, 4, 4, 4, 4))


def assert_close_to_reference(actual, reference):
  """max|Δ| ≤ 1e-4·max|ref| + 1e-6: float32 parity, scaled to the output's magnitude."""
  actual, reference = np.asarray(actual), np.asarray(reference)
  assert actual.shape == reference.shape
  assert np.max(np.abs(actual - reference)) <= 1e-4 * np.max(np.abs(reference)) + 1e-6


@pytest.mark.parametrize('routing', layers.CONV_ROUTINGS[1:])
def test_cls_net_matches_released(routing):
  fixture = np.load(FIXTURES / 'fdp_cls_net.npz')
  volume = fixture['input/0'].transpose(0, 2, 3, 4, 1)              # NCDHW → NDHWC
  head = fdp_released.CLSNet()
  with layers.conv_routing(routing):
    logits, feat = head.apply(reference_variables(fixture, head, volume), volume)
  assert feat.shape == (2, 64, 64, 1, 8)
  assert_close_to_reference(feat, fixture['output/0'].transpose(0, 2, 3, 4, 1))
  assert_close_to_reference(logits, fixture['output/1'])


def test_max_pool_and_unpool_match_released_with_ties():
  fixture = np.load(FIXTURES / 'maxpool_unpool_ties.npz')
  nhwc = lambda a: a.transpose(0, 2, 3, 1)
  pooled, indices = fdp_released.max_pool_2x2_with_indices(nhwc(fixture['input']))
  np.testing.assert_array_equal(pooled, nhwc(fixture['pooled']))
  # Window positions → PyTorch's flat per-channel indices (row-major on the 8×8 map).
  i, j = np.meshgrid(np.arange(4), np.arange(4), indexing='ij')
  flat = (2 * i[:, :, None] + indices // 2) * 8 + 2 * j[:, :, None] + indices % 2
  np.testing.assert_array_equal(flat, nhwc(fixture['indices']))
  np.testing.assert_array_equal(fdp_released.max_unpool_2x2(pooled, indices), nhwc(fixture['unpooled']))


def test_max_pool_gradient_goes_to_the_winner_only():
  x = jnp.zeros((1, 2, 2, 1))                                       # a four-way tie
  grad = jax.grad(lambda x: fdp_released.max_pool_2x2_with_indices(x)[0].sum())(x)
  np.testing.assert_array_equal(grad[0, :, :, 0], [[1, 0], [0, 0]])


def test_volume_interleaves_time_and_features_like_torch_view():
  b, t, d = 2, 8, 4096
  features = np.arange(b * t * d, dtype=np.float32).reshape(b, t, d)  # exact in float32 (< 2^24)
  volume = np.asarray(fdp_released.released_volume(jnp.asarray(features)))
  assert volume.shape == (2, 64, 64, 8, 1)
  bb, tt, ff = np.meshgrid(np.arange(b), np.arange(t), np.arange(d), indexing='ij')
  np.testing.assert_array_equal(volume[bb, 8 * tt + ff // 512, (ff % 512) // 8, ff % 8, 0], features)
  # Rows 8t … 8t+7 of the 64×64 map hold frame t only; the last axis is the feature index mod 8.
  frame_of_row = (volume[0, :, :, :, 0] // d).reshape(64, -1)
  np.testing.assert_array_equal(frame_of_row, np.repeat(np.arange(8), 8)[:, None] * np.ones((1, 512)))
  np.testing.assert_array_equal(volume[1, 5, 7, :, 0] % 8, np.arange(8))
  with pytest.raises(ValueError, match='needs T·D = 32768'):
    fdp_released.released_volume(jnp.zeros((1, 4, 4096)))


@functools.lru_cache(maxsize=None)
def _apply(train):
  if train:
    return jax.jit(lambda v, x, key: TINY_MODEL.apply(v, x, train=True, rngs={'dropout': key},
                                                      mutable=['batch_stats']))
  return jax.jit(lambda v, x: TINY_MODEL.apply(v, x, train=False))


@pytest.fixture(scope='module')
def tiny():
  """The tiny model, random variables of its shapes and frames. The variables are drawn with numpy from
  the shapes (`eval_shape`), because compiling `init` costs three times as long as compiling `apply`."""
  model = TINY_MODEL
  rng = np.random.default_rng(0)
  frames = jnp.asarray(rng.uniform(-1, 1, (2, 8, 64, 64, 1)), jnp.float32)
  abstract = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), frames)

  def draw(path, leaf):
    name = path[-1].key
    if name in ('scale', 'var'):
      return np.ones(leaf.shape, leaf.dtype)
    if name in ('bias', 'mean'):
      return np.zeros(leaf.shape, leaf.dtype)
    fan_in = np.prod(leaf.shape[:-1])
    return rng.normal(0, fan_in ** -0.5, leaf.shape).astype(leaf.dtype)
  return model, jax.tree_util.tree_map_with_path(draw, abstract), frames


def test_released_fdp_eval_shapes_and_determinism(tiny):
  _, variables, frames = tiny
  out = _apply(False)(variables, frames)
  logits, dynamic_image = out['logits'], out['dynamic_image']
  assert logits.shape == (2, 5) and dynamic_image.shape == (2, 64, 64)
  assert np.all((dynamic_image >= 0) & (dynamic_image <= 1)) and np.all(np.isfinite(logits))
  again = _apply(False)(variables, frames)
  np.testing.assert_array_equal(logits, again['logits'])
  np.testing.assert_array_equal(dynamic_image, again['dynamic_image'])


def test_released_fdp_train_draws_dropout_and_updates_batch_stats(tiny):
  model, variables, frames = tiny
  with pytest.raises(flax.errors.InvalidRngError):
    jax.eval_shape(lambda v, x: model.apply(v, x, train=True, mutable=['batch_stats']), variables, frames)
  out_a, updated = _apply(True)(variables, frames, jax.random.key(0))
  out_b, _ = _apply(True)(variables, frames, jax.random.key(1))
  assert not np.allclose(out_a['logits'], out_b['logits'])                        # drop-path masks differ
  old, new = variables['batch_stats'], updated['batch_stats']
  assert jax.tree.structure(old) == jax.tree.structure(new)
  for path in (('frame_rep', 'stem_0', 'norm', 'mean'), ('dyimg_net', 'bn53d', 'var')):
    assert not np.allclose(_get(old, path), _get(new, path))


def _get(tree, path):
  for name in path:
    tree = tree[name]
  return np.asarray(tree)


def test_torch_batch_norm_is_successive_pytorch_calls_one_per_group():
  """groups = T on clip-major (B·T, …) frames: frame t of every clip normalised by the statistics of frame
  t alone, and the running statistics after T successive PyTorch updates (momentum 0.1, unbiased
  variance), computed here call by call."""
  from fdp_jax.models.layers import TorchBatchNorm
  b, t, c = 3, 4, 5
  rng = np.random.default_rng(0)
  # Each frame index with its own offset and spread, so per-frame and pooled statistics differ widely.
  x = (rng.normal(0, 1, (b, t, 6, 7, c)) * np.arange(1, t + 1)[None, :, None, None, None]
       + np.arange(t)[None, :, None, None, None]).astype(np.float32)
  flat = x.reshape(b * t, 6, 7, c)
  variables = {'params': {'scale': rng.uniform(0.5, 1.5, c).astype(np.float32),
                          'bias': rng.normal(0, 0.1, c).astype(np.float32)},
               'batch_stats': {'mean': rng.normal(0, 0.1, c).astype(np.float32),
                               'var': rng.uniform(0.5, 2, c).astype(np.float32)}}
  y, updated = TorchBatchNorm(use_running_average=False, groups=t).apply(variables, flat,
                                                                          mutable=['batch_stats'])
  mean, var = variables['batch_stats']['mean'].astype(np.float64), variables['batch_stats']['var'].astype(np.float64)
  scale, bias = variables['params']['scale'], variables['params']['bias']
  expected = np.empty_like(x, np.float64)
  for frame in range(t):                               # one PyTorch call per frame index
    xf = x[:, frame].astype(np.float64)
    mu, sigma2 = xf.mean(axis=(0, 1, 2)), xf.var(axis=(0, 1, 2))
    expected[:, frame] = (xf - mu) / np.sqrt(sigma2 + 1e-5) * scale + bias
    n = xf.size // c
    mean = 0.9 * mean + 0.1 * mu
    var = 0.9 * var + 0.1 * sigma2 * n / (n - 1)
  np.testing.assert_allclose(np.asarray(y).reshape(x.shape), expected, atol=2e-5)
  np.testing.assert_allclose(updated['batch_stats']['mean'], mean, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(updated['batch_stats']['var'], var, rtol=1e-5)
  # Eval: the running statistics, the same for every frame.
  y_eval = TorchBatchNorm(use_running_average=True, groups=t).apply(variables, flat)
  np.testing.assert_allclose(
      y_eval, (flat - variables['batch_stats']['mean']) / np.sqrt(variables['batch_stats']['var'] + 1e-5)
      * scale + bias, atol=1e-5)
  with pytest.raises(ValueError, match='interleaved BatchNorm groups'):
    TorchBatchNorm(use_running_average=False, groups=5).apply(variables, flat, mutable=['batch_stats'])


def test_torch_batch_norm_follows_a_given_call_order():
  """`order` lists the groups' calls when a group is called more than once (the release's FlowNet sees
  frame t as the second frame of pair t−1 and again as the first of pair t): the running statistics take
  those calls' updates in that order, computed here call by call; the output is unchanged."""
  from fdp_jax.models.layers import TorchBatchNorm, update_weights
  b, g, c, order = 2, 3, 4, (0, 1, 1, 2)
  rng = np.random.default_rng(1)
  x = (rng.normal(0, 1, (b, g, 5, c)) * np.arange(1, g + 1)[None, :, None, None]
       + 3 * np.arange(g)[None, :, None, None]).astype(np.float32)
  variables = {'params': {'scale': np.ones(c, np.float32), 'bias': np.zeros(c, np.float32)},
               'batch_stats': {'mean': rng.normal(0, 1, c).astype(np.float32),
                               'var': rng.uniform(0.5, 2, c).astype(np.float32)}}
  module = TorchBatchNorm(use_running_average=False, groups=g, order=order)
  y, updated = module.apply(variables, x.reshape(b * g, 5, c), mutable=['batch_stats'])
  plain, _ = TorchBatchNorm(use_running_average=False, groups=g).apply(variables, x.reshape(b * g, 5, c),
                                                                       mutable=['batch_stats'])
  np.testing.assert_array_equal(y, plain)
  mean, var = (variables['batch_stats'][k].astype(np.float64) for k in ('mean', 'var'))
  for k in order:                                      # one PyTorch call per entry of the order
    xk = x[:, k].astype(np.float64)
    n = xk.size // c
    mean = 0.9 * mean + 0.1 * xk.mean(axis=(0, 1))
    var = 0.9 * var + 0.1 * xk.var(axis=(0, 1)) * n / (n - 1)
  np.testing.assert_allclose(updated['batch_stats']['mean'], mean, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(updated['batch_stats']['var'], var, rtol=1e-5)
  decay, weights = update_weights(0.9, g, order)
  assert decay == pytest.approx(0.9 ** 4) and weights.sum() + decay == pytest.approx(1.0)
  for bad in ((0, 2), (0, 1, 3, 2), ()):
    with pytest.raises(ValueError, match='must call every one of the 3 groups'):
      update_weights(0.9, 3, bad)


def test_released_encoder_in_training_is_one_call_per_frame(tiny):
  """The released encoder trains as the release runs it, frame by frame: FrameRep on all B·T frames with
  per-frame statistics gives the features and running statistics of T successive calls, one per frame
  index, each with one set of statistics. Every BatchNorm of the encoder must take part for this to hold."""
  _, variables, frames = tiny
  b, t = frames.shape[:2]
  # Brightness that changes over the clip, so that each frame index has statistics of its own.
  frames = frames * 0.5 + jnp.linspace(-0.4, 0.4, t)[None, :, None, None, None]
  kwargs = dict(spec=EncoderSpec(stem_channels=(8, 8, 8), depths=(1, 1), channels=(16, 16), drop_path_rate=0.0,
                                 block_layout='released'))
  encoder_vars = {'params': variables['params']['frame_rep'],
                  'batch_stats': variables['batch_stats']['frame_rep']}
  together, stats = jax.jit(lambda v, x: fdp_released.FrameRep(**kwargs, bn_groups=t).apply(
      v, x, train=True, mutable=['batch_stats']))(encoder_vars, frames.reshape(b * t, 64, 64, 1))
  one_call = jax.jit(lambda v, x: fdp_released.FrameRep(**kwargs, bn_groups=1).apply(
      v, x, train=True, mutable=['batch_stats']))
  running = encoder_vars
  for frame in range(t):
    features, new_stats = one_call(running, frames[:, frame])
    np.testing.assert_allclose(np.asarray(together).reshape(b, t, -1)[:, frame], features, atol=2e-5,
                               rtol=1e-4)
    running = {'params': encoder_vars['params'], 'batch_stats': new_stats['batch_stats']}
  jax.tree.map(lambda a, e: np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-6),
               stats['batch_stats'], running['batch_stats'])
  # Pooled statistics (one call over all B·T frames) would give other features: the test can tell.
  pooled, _ = one_call(encoder_vars, frames.reshape(b * t, 64, 64, 1))
  assert not np.allclose(pooled, together, atol=1e-3)
