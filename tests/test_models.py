"""The LGFAT frame encoder, the decoder and FDP (fdp_jax.models): shapes, layouts, pooling semantics and
numerical parity of the encoder blocks with the released PyTorch code."""

import dataclasses
import functools
import json
import math

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.fdp_sizes import fdp_model
from conftest import FIXTURES, reference_variables
from fdp_jax.families import build_model
from fdp_jax.models import fdp, fdp_released, layers, lgfat

POOLINGS = ('rank', 'arp', 'static')
B, T, SIZE = 2, 4, 32


def small_model(pooling='rank', layout='paper', image_size=SIZE):
  config = fdp_model('small')
  config.temporal_pooling = pooling
  config.block_layout = layout
  return build_model(config, num_classes=5, image_size=image_size)


def param_paths(params):
  return ['/'.join(k) for k in flax.traverse_util.flatten_dict(flax.core.unfreeze(params))]


def count(tree):
  return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))


def frames_like(seed, b=B, t=T, size=SIZE):
  """(b, t, size, size, 1) in [-1, 1]; numpy, because each jax.random shape costs a compilation."""
  return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, (b, t, size, size, 1)), jnp.float32)


@pytest.fixture(scope='module')
def variables():
  """Real `init` of the small paper-layout 'rank' model; 'arp'/'static' use the same minus the scorer."""
  return jax.jit(lambda x: small_model().init(jax.random.key(0), x, train=False))(frames_like(0))


@pytest.fixture(scope='module')
def conv3d_variables():
  """Real `init` of the small paper-layout model with the release's learned Conv3d pooling."""
  return jax.jit(lambda x: small_model('conv3d_released').init(jax.random.key(0), x, train=False))(
      frames_like(0))


def variables_for(variables, pooling):
  if pooling == 'rank':
    return variables
  params = {k: v for k, v in variables['params'].items() if k != 'rank_scorer'}
  return {'params': params, 'batch_stats': variables['batch_stats']}


@functools.lru_cache(maxsize=None)
def _eval_fn(pooling):
  # Jitted once per pooling: op-by-op dispatch would compile every primitive separately (slower).
  return jax.jit(lambda v, x, m: small_model(pooling).apply(v, x, m, train=False))


def apply_eval(variables, pooling, frames, mask=None):
  return _eval_fn(pooling)(variables_for(variables, pooling), frames, mask)


@pytest.mark.parametrize('layout', ['paper', 'released'])
@pytest.mark.parametrize('pooling', POOLINGS)
def test_output_shapes_small_64px(pooling, layout):
  model = small_model(pooling, layout, image_size=64)
  x = jax.ShapeDtypeStruct((2, 8, 64, 64, 1), jnp.float32)
  mask = jax.ShapeDtypeStruct((2, 8), jnp.bool_)
  v = jax.eval_shape(lambda x, m: model.init(jax.random.key(0), x, m, train=False), x, mask)
  out = jax.eval_shape(lambda v, x, m: model.apply(v, x, m, train=False), v, x, mask)
  assert {k: (o.shape, o.dtype) for k, o in out.items()} == {
      'logits': ((2, 5), jnp.float32), 'dynamic_image': ((2, 64, 64), jnp.float32),
      'rank_scores': ((2, 8), jnp.float32)}
  # Stem /4 and one stride-1 stage: 16×16 final maps, as the decoder (two ×2 upsamplings) expects; the
  # paper layout ends on the GFA block's width, the released one on the last LFA block's.
  encoder = lgfat.LGFAT(model.encoder)
  fmap = jax.eval_shape(lambda x: encoder.init_with_output(jax.random.key(0), x, train=False)[0],
                        jax.ShapeDtypeStruct((16, 64, 64, 1), jnp.float32))
  assert fmap.shape == (16, 16, 16, 48 if layout == 'paper' else 32)


def test_real_forward_outputs(variables):
  for pooling in POOLINGS:
    out = apply_eval(variables, pooling, frames_like(1))
    assert out['logits'].shape == (B, 5) and out['logits'].dtype == jnp.float32
    assert out['dynamic_image'].shape == (B, SIZE, SIZE)
    assert np.all((out['dynamic_image'] >= 0) & (out['dynamic_image'] <= 1))
    assert out['rank_scores'].shape == (B, T)
    assert all(np.all(np.isfinite(o)) for o in out.values())
    if pooling != 'rank':
      assert np.all(out['rank_scores'] == 0)


def test_released_size_shapes_and_parameter_count():
  config = fdp_model('released')
  counts = {}
  for layout in ('paper', 'released'):
    config.block_layout = layout
    model = build_model(config, num_classes=5, image_size=64)
    x = jax.ShapeDtypeStruct((2, 8, 64, 64, 1), jnp.float32)
    v = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
    out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), v, x)
    assert out['logits'].shape == (2, 5) and out['dynamic_image'].shape == (2, 64, 64)
    counts[layout] = count(v['params']), count(v['params']['frame_encoder'])
    last = v['params']['frame_encoder']['norm']['scale'].shape[0]
    assert last == (1024 if layout == 'paper' else 768)
  # The LFA-only encoder is parameter for parameter the released frame_rep (its Linear head aside).
  keys = json.loads((FIXTURES / 'official_state_dict_keys.json').read_text())['fdp']
  released_encoder = sum(math.prod(shape) for key, shape, _ in keys
                         if key.startswith('frame_rep.') and not key.startswith('frame_rep.proj_head')
                         and 'running_' not in key and 'num_batches' not in key)
  assert counts['released'][1] == released_encoder == 51_802_624
  # GFA blocks add ~10 M; heads, projection and decoder ~2.3 M (measured: 64,063,031 in total).
  assert 60e6 < counts['paper'][0] < 70e6


def test_gfa_blocks_only_in_paper_layout():
  x = jax.ShapeDtypeStruct((1, 2, SIZE, SIZE, 1), jnp.float32)
  paths = {}
  for layout in ('paper', 'released'):
    model = small_model(layout=layout)
    paths[layout] = param_paths(jax.eval_shape(
        lambda x: model.init(jax.random.key(0), x, train=False), x)['params'])
  attention = [p for p in paths['paper'] if '/e_mhsa/' in p]
  # Small config: 1 stage → 1 GFA block, with q, k, v, proj kernels and biases.
  assert len([p for p in attention if p.endswith('kernel')]) == 1 * 4
  assert not [p for p in paths['released'] if 'e_mhsa' in p or 'norm2' in p]


def test_drop_path_per_example_in_train_identity_in_eval():
  x = jnp.ones((64, 3, 3, 2))
  drop = layers.DropPath(0.5)
  assert np.array_equal(drop.apply({}, x, train=False), x)
  y = drop.apply({}, x, train=True, rngs={'dropout': jax.random.key(0)})
  per_example = np.asarray(y).reshape(64, -1)
  assert set(np.unique(per_example)) == {0.0, 2.0}                  # kept branches rescaled by 1/keep
  assert np.all(per_example.min(1) == per_example.max(1))            # one decision per example
  y2 = drop.apply({}, x, train=True, rngs={'dropout': jax.random.key(1)})
  assert not np.array_equal(y, y2)


def test_drop_path_in_the_encoder(variables):
  """The trained encoder's variables under a high drop-path rate: stochastic in train, fixed in eval."""
  model = small_model()
  encoder = lgfat.LGFAT(dataclasses.replace(model.encoder, drop_path_rate=0.9))
  v = {'params': variables['params']['frame_encoder'],
       'batch_stats': variables['batch_stats']['frame_encoder']}
  x = frames_like(2)[0]
  run = jax.jit(lambda rng, train: encoder.apply(v, x, train=train, rngs={'dropout': rng},
                                                 mutable=['batch_stats'])[0], static_argnums=1)
  assert not np.allclose(run(jax.random.key(0), True), run(jax.random.key(1), True))
  np.testing.assert_array_equal(run(jax.random.key(0), False), run(jax.random.key(1), False))


def test_static_pooling_sees_only_the_centre_frame(variables):
  x = frames_like(3)
  other = x.at[:, jnp.array([0, 1, 3])].set(frames_like(4)[:, jnp.array([0, 1, 3])])
  a, b = apply_eval(variables, 'static', x), apply_eval(variables, 'static', other)
  np.testing.assert_array_equal(a['logits'], b['logits'])
  np.testing.assert_array_equal(a['dynamic_image'], b['dynamic_image'])
  c = apply_eval(variables, 'static', x.at[:, T // 2].set(frames_like(5)[:, 0]))
  assert not np.allclose(a['logits'], c['logits'], rtol=1e-4, atol=0)
  # With a mask the centre is the middle valid frame: frames 0, 1, 2 valid → frame 1.
  mask = jnp.array([[True, True, True, False]] * B)
  d = apply_eval(variables, 'static', x, mask)
  e = apply_eval(variables, 'static', x[:, jnp.array([1, 1, 1, 1])])
  np.testing.assert_allclose(d['logits'], e['logits'], rtol=1e-6)


def test_arp_depends_on_frame_order(variables):
  x = frames_like(6)
  forward, backward = apply_eval(variables, 'arp', x), apply_eval(variables, 'arp', x[:, ::-1])
  assert not np.allclose(forward['logits'], backward['logits'], rtol=1e-3, atol=0)


def test_conv3d_pooling_is_a_3x3xT_conv_that_ignores_masked_frames(conv3d_variables):
  kernel = conv3d_variables['params']['temporal_conv3d']['conv']['kernel']
  d = fdp_model('small').feature_dim
  assert kernel.shape == (3, 3, T * d, d)       # 3×3 in space, all T frames × D features in
  out = apply_eval(conv3d_variables, 'conv3d_released', frames_like(11))
  assert out['logits'].shape == (B, 5) and out['dynamic_image'].shape == (B, SIZE, SIZE)
  assert np.all(out['rank_scores'] == 0)
  # The module alone, against a direct 3-D convolution over (h, w, T) with D channels.
  pool = fdp.TemporalConv3d()
  rng = np.random.default_rng(0)
  f = jnp.asarray(rng.normal(size=(B, T, 5, 6, 3)), jnp.float32)
  v = pool.init(jax.random.key(1), f, None)
  v = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), v)
  y = pool.apply(v, f, None)
  k = v['params']['conv']['kernel'].reshape(3, 3, T, 3, 3)                # (kh, kw, kt, D_in, D_out)
  direct = jax.lax.conv_general_dilated(f.transpose(0, 2, 3, 1, 4), k, (1, 1, 1), ((1, 1), (1, 1), (0, 0)),
                                        dimension_numbers=('NHWDC', 'HWDIO', 'NHWDC'))[:, :, :, 0]
  np.testing.assert_allclose(y, direct + v['params']['conv']['bias'], rtol=1e-5, atol=1e-5)
  reversed_order = pool.apply(v, f[:, ::-1], None)
  assert not np.allclose(y, reversed_order, rtol=1e-2)
  mask = jnp.array([[True, True, True, False], [True, False, True, True]])
  replaced = f.at[0, 3].set(7.0).at[1, 1].set(-3.0)
  np.testing.assert_array_equal(pool.apply(v, f, mask), pool.apply(v, replaced, mask))
  assert not np.allclose(pool.apply(v, replaced, mask), pool.apply(v, replaced, None))


@pytest.mark.parametrize('pooling', ['arp', 'rank'])
def test_masked_frames_do_not_change_outputs(variables, pooling):
  x = frames_like(7)
  mask = jnp.array([[True, True, True, False], [True, False, True, True]])
  replaced = x.at[0, 3].set(frames_like(8)[0, 0]).at[1, 1].set(frames_like(9)[0, 0])
  a, b = apply_eval(variables, pooling, x, mask), apply_eval(variables, pooling, replaced, mask)
  for key in a:
    np.testing.assert_allclose(a[key], b[key], rtol=1e-6, atol=1e-7)
  assert np.all(a['rank_scores'] * ~mask == 0)
  unmasked = apply_eval(variables, pooling, replaced)
  assert not np.allclose(a['logits'], unmasked['logits'], rtol=1e-4, atol=0)


def test_rank_pooling_trains_the_scorer(variables):
  """Gradients of a train-mode loss reach the rank scorer through the score modulation, finite."""
  model = small_model()

  def loss(params):
    out, _ = model.apply({'params': params, 'batch_stats': variables['batch_stats']}, frames_like(10),
                         train=True, rngs={'dropout': jax.random.key(0)}, mutable=['batch_stats'])
    return jnp.sum(out['logits'] ** 2) + jnp.mean(out['dynamic_image'])

  grads = jax.jit(jax.grad(loss))(variables['params'])
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  assert any(np.any(g != 0) for g in jax.tree.leaves(grads['rank_scorer']))


def test_make_divisible_and_gfa_split():
  assert lgfat.make_divisible(96 * 3, 32) == 288
  assert lgfat.make_divisible(int(128 * 0.75), 32) == 96
  assert lgfat.make_divisible(int(1024 * 0.75), 32) == 768
  assert lgfat.make_divisible(768 * 3, 32) == 2304
  assert lgfat.make_divisible(10, 8) == 16                           # never more than 10% below v
  assert lgfat.gfa_split(128, 0.75, 8) == (96, 32)
  assert lgfat.gfa_split(1024, 0.75, 8) == (768, 256)
  assert lgfat.gfa_split(64, 0.75, 8) == (48, 16)                    # narrow: rounded to head_dim


@pytest.mark.numerics
@pytest.mark.parametrize('features, k, stride, padding, size, xla', [
    (40, 3, 1, None, 6, False),     # a matrix product (the released stem, MHCA, SegNet)
    (40, 3, 2, None, 7, False),     # strided, odd map (PyTorch floors; flax 'SAME' would pad differently)
    (8, 3, 2, None, 7, False),      # narrow but strided: still a product
    (6, 4, 2, 1, 8, False),         # MOL's conv_stack / conv2 shapes
    (6, 2, 2, 0, 8, False),
    (8, 3, 1, None, 6, True),       # narrow stride-1 convs go to XLA's convolution (the small FDP)
    (2, 3, 1, None, 6, True),       # so do narrow outputs (SegNet's conv11d, predict_flow)
    (1, 6, 2, 2, 8, True),
])
def test_conv_is_pytorchs_conv_on_either_route(features, k, stride, padding, size, xla):
  """`layers.Conv` computes a product or XLA's convolution depending on its widths and stride; both must
  be PyTorch's Conv2d (symmetric padding k // 2 unless given, floor division), values and gradients."""
  assert layers.uses_xla_conv(k, stride, 3, features) == xla
  rng = np.random.default_rng(k * 10 + features)
  x = jnp.asarray(rng.normal(size=(2, size, size, 3)), jnp.float32)
  module = layers.Conv(features, k, stride, padding=padding)
  params = module.init(jax.random.key(0), x)
  p = k // 2 if padding is None else padding

  def direct(params, x):
    return jax.lax.conv_general_dilated(x, params['params']['kernel'], (stride, stride), ((p, p), (p, p)),
                                        dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                                        precision=jax.lax.Precision.HIGHEST)

  expected = direct(params, x)
  got = module.apply(params, x)
  assert got.shape == expected.shape == (2, (size + 2 * p - k) // stride + 1,
                                         (size + 2 * p - k) // stride + 1, features)
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
  loss = lambda f: lambda params, x: jnp.sum(jnp.sin(f(params, x)))
  for g, h in zip(jax.grad(loss(module.apply), argnums=(0, 1))(params, x),
                  jax.grad(loss(direct), argnums=(0, 1))(params, x)):
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(h)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_conv_routing_follows_the_measured_rule():
  """The routes the models' convs take (`layers.uses_xla_conv`): XLA's convolution only for the narrow
  ones, whose product would spend its time building the k²-wide copy; a product wherever XLA:CPU's weight
  gradient is slow (wide or strided convs), and always for 1×1."""
  assert layers.uses_xla_conv(3, 1, 16, 16)          # the small FDP's stem
  assert layers.uses_xla_conv(3, 1, 32, 32)          # its LFA block's MHCA
  assert layers.uses_xla_conv(3, 1, 64, 1)           # SegNet's conv11d
  assert not layers.uses_xla_conv(3, 2, 16, 16)      # the small stem's stride-2 conv
  assert not layers.uses_xla_conv(3, 1, 64, 32)      # the released stem
  assert not layers.uses_xla_conv(3, 1, 16, 64)
  assert not layers.uses_xla_conv(1, 1, 8, 8)


def test_unknown_choices_are_rejected():
  config = fdp_model('small')
  config.name = 'lstm'
  with pytest.raises(ValueError, match='unknown model'):
    build_model(config, 5, 32)
  model = small_model(pooling='conv3d')
  with pytest.raises(ValueError, match='temporal_pooling'):
    jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False),
                   jax.ShapeDtypeStruct((1, 2, SIZE, SIZE, 1), jnp.float32))


# ---- numerical parity with the released PyTorch blocks (tests/fixtures) ----

# The fixtures hold PyTorch state_dicts; `reference_variables` maps them through fdp_jax.models.released_weights.

@pytest.mark.numerics
@pytest.mark.parametrize('routing', layers.CONV_ROUTINGS[1:])
def test_gfa_block_matches_released(routing):
  fixture = np.load(FIXTURES / 'fdp_gfa_block_96_128_s2_sr2.npz')
  x = fixture['input/0'].transpose(0, 2, 3, 1)
  block = lgfat.GFABlock(128, stride=2, sr_ratio=2, head_dim=8, mix_ratio=0.75)
  with layers.conv_routing(routing):
    y = block.apply(reference_variables(fixture, block, x, train=False), x, train=False)
  np.testing.assert_allclose(y, fixture['output/0'].transpose(0, 2, 3, 1), atol=1e-5)


@pytest.mark.numerics
@pytest.mark.parametrize('routing', layers.CONV_ROUTINGS[1:])
def test_lfa_encoder_matches_released(routing):
  """The released `frame_rep` (LFA-only LGFAT, global average pool, Linear head) at the fixture's depths
  [2, 1, 0, 0] and head 256, with either conv routing."""
  fixture = np.load(FIXTURES / 'fdp_frame_encoder_depths2100.npz')
  encoder = fdp_released.FrameRep(lgfat.EncoderSpec(stem_channels=(64, 32, 64), depths=(2, 1), channels=(96, 192),
                                                    block_layout='released'), feature_dim=256)
  x = fixture['input/0'].transpose(0, 2, 3, 1)
  variables = reference_variables(fixture, encoder, x, train=False)
  assert variables['batch_stats']['norm']['mean'].shape == (192,)
  with layers.conv_routing(routing):
    y = encoder.apply(variables, x, train=False)
  np.testing.assert_allclose(y, fixture['output/0'], atol=1e-5)
