"""Platform-aware conv routing and mixed precision: what 'auto' resolves to per platform, bfloat16 outputs
of FDP (both variants) and MOL against the released PyTorch fixtures, and bfloat16 training steps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import FIXTURES, OneFold, reference_variables
from fdp_jax import train
from fdp_jax.models import released_weights
from fdp_jax.models import fdp_released, layers, lgfat, mol

# Compared against recorded values or across compiled programs: CI runs it for an older CPU too.
pytestmark = pytest.mark.numerics

# bfloat16 keeps 8 bits of mantissa: a relative rounding of 2^-9 per operation. Measured against the
# fixtures' float32 outputs: 4.4e-3 to 9.8e-3 of max|ref| (CLS_Net's logits the largest).
BF16_TOLERANCE = 2e-2


def bf16(tree):
  return jax.tree.map(lambda x: jnp.asarray(x).astype(jnp.bfloat16) if jnp.issubdtype(jnp.asarray(x).dtype,
                                                                                      jnp.floating) else x, tree)


def assert_within(got, want, tolerance):
  got, want = np.asarray(jnp.asarray(got, jnp.float32)), np.asarray(want)
  assert got.shape == want.shape
  error = np.abs(got - want).max() / np.abs(want).max()
  assert error <= tolerance, error


def mol_piece(module, name, *args, **kwargs):
  data = np.load(FIXTURES / f'{name}.npz')
  params = {k[len('param/'):]: data[k] for k in data.files if k.startswith('param/')}
  abstract = jax.eval_shape(lambda: module.init({'params': jax.random.key(0)}, *args, **kwargs))
  return released_weights.variables_from_state_dict(abstract, params, num_batches_tracked=False, model='mol'), data


def in_bf16(variables):
  """Parameters in bfloat16, BatchNorm statistics kept float32 (as `train.apply_model` does)."""
  return {k: bf16(v) if k == 'params' else v for k, v in variables.items()}


@pytest.mark.parametrize('routing', ['cpu', 'xla'])
def test_bf16_fdp_pieces_stay_near_the_release(routing):
  gfa = np.load(FIXTURES / 'fdp_gfa_block_96_128_s2_sr2.npz')
  x = gfa['input/0'].transpose(0, 2, 3, 1)
  block = lgfat.GFABlock(128, stride=2, sr_ratio=2, head_dim=8, mix_ratio=0.75)
  encoder_fixture = np.load(FIXTURES / 'fdp_frame_encoder_depths2100.npz')
  encoder = fdp_released.FrameRep(lgfat.EncoderSpec(stem_channels=(64, 32, 64), depths=(2, 1), channels=(96, 192),
                                                    block_layout='released'), feature_dim=256)
  frames = encoder_fixture['input/0'].transpose(0, 2, 3, 1)
  cls = np.load(FIXTURES / 'fdp_cls_net.npz')
  volume = cls['input/0'].transpose(0, 2, 3, 4, 1)
  head = fdp_released.CLSNet()
  with layers.conv_routing(routing):
    y = block.apply(in_bf16(reference_variables(gfa, block, x, train=False)), bf16(x), train=False)
    features = encoder.apply(in_bf16(reference_variables(encoder_fixture, encoder, frames, train=False)),
                             bf16(frames), train=False)
    logits, _ = head.apply(in_bf16(reference_variables(cls, head, volume)), bf16(volume))
  assert y.dtype == features.dtype == logits.dtype == jnp.bfloat16     # the work ran in bfloat16
  assert_within(y, gfa['output/0'].transpose(0, 2, 3, 1), BF16_TOLERANCE)
  assert_within(features, encoder_fixture['output/0'], BF16_TOLERANCE)
  assert_within(logits, cls['output/1'], BF16_TOLERANCE)


@pytest.mark.parametrize('routing', ['cpu', 'xla'])
def test_bf16_mol_pieces_stay_near_the_release(routing):
  with layers.conv_routing(routing):
    for module, name, layout, kwargs in ((mol.ConvStack(), 'mol_conv_stack', (0, 2, 3, 1), {}),
                                         (mol.FCC(), 'mol_fcc', (0, 2, 3, 1), {'train': False}),
                                         (mol.MER3DCNN(), 'mol_mer_3dcnn', (0, 2, 3, 4, 1), {'train': False})):
      x = np.load(FIXTURES / f'{name}.npz')['input/0'].transpose(layout)
      variables, data = mol_piece(module, name, x, **kwargs)
      out = module.apply(in_bf16(variables), bf16(x), **kwargs)
      assert out.dtype == jnp.bfloat16, name
      want = data['output/0']
      assert_within(out, want.transpose(layout) if want.ndim == x.ndim else want, BF16_TOLERANCE)


def test_bf16_ccc_picks_its_neighbours_in_float32():
  """CCC's k nearest neighbours are a discrete choice: on the same (bfloat16-rounded) node features the
  bfloat16 module picks the float32 module's neighbours, so its edge features differ by rounding only.
  (Rounding the input itself to bfloat16 moves near-tied neighbours: 8 % of max|ref| on the fixture.)"""
  x = np.load(FIXTURES / 'mol_ccc.npz')['input/0'].transpose(0, 2, 1)
  module = mol.CCC()
  variables, _ = mol_piece(module, 'mol_ccc', x)
  x16 = bf16(x)
  differences32, edges32 = module.apply(variables, x16.astype(jnp.float32))
  differences16, edges16 = module.apply(in_bf16(variables), x16)
  assert edges16.dtype == jnp.bfloat16
  np.testing.assert_array_equal(mol.cosine_knn(x16, 4), mol.cosine_knn(x16.astype(jnp.float32), 4))
  assert_within(differences16, differences32, BF16_TOLERANCE)
  assert_within(edges16, edges32, BF16_TOLERANCE)


def test_auto_routing_and_dtype_follow_the_platform():
  from configs import synthetic
  config = synthetic.get_config()
  assert (train.options_for(config, 'cpu').conv_routing, train.options_for(config, 'cpu').compute_dtype) == (
      'cpu', 'float32')
  for platform in ('tpu', 'gpu'):
    options = train.options_for(config, platform)
    assert (options.conv_routing, options.compute_dtype) == ('xla', 'bfloat16')
  config.train.conv_routing, config.train.compute_dtype = 'cpu', 'float32'       # overrides for experiments
  assert train.options_for(config, 'tpu')[3:5] == ('cpu', 'float32')
  with pytest.raises(ValueError, match='conv routing'):
    layers.resolve_conv_routing('mxu')
  with pytest.raises(ValueError, match='compute_dtype'):
    train.resolve_compute_dtype('float8')


def test_xla_routing_sends_every_conv_to_xlas_convolution():
  assert not layers.uses_xla_conv(3, 1, 64, 32) and not layers.uses_xla_conv(1, 1, 8, 8)   # CPU: products
  with layers.conv_routing('xla'):
    assert layers.uses_xla_conv(3, 1, 64, 32) and layers.uses_xla_conv(1, 1, 8, 8)
    assert layers.uses_xla_conv(3, 2, 768, 768)
  assert not layers.uses_xla_conv(3, 1, 64, 32)           # the context ends with its block


def test_bf16_training_steps_keep_float32_state_and_lower_the_loss():
  from configs import synthetic
  from fdp_jax.families import build_model
  config = synthetic.get_config()
  config.model.temporal_pooling, config.train.schedule, config.train.learning_rate = 'rank', 'constant', 3e-3
  config.train.compute_dtype = 'bfloat16'
  rng = np.random.default_rng(0)
  batch = {'frames': rng.uniform(-1, 1, (4, 4, 32, 32, 1)).astype(np.float32),
           'frame_mask': np.ones((4, 4), bool),
           'dynamic_image': rng.uniform(0, 1, (4, 32, 32)).astype(np.float32),
           'label': np.arange(4, dtype=np.int32), 'mask': np.ones((4,), bool)}
  steps = OneFold(config, build_model(config.model, 5, 32), batch)
  assert steps.fsteps.options.compute_dtype == 'bfloat16'
  state = steps.init(jax.random.key(0))
  values = []
  for i in range(12):
    state, metrics = steps.train(state, batch, i)
    values.append(float(metrics['loss']))
    assert metrics['loss'].dtype == jnp.float32
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves((state.params, state.batch_stats, state.opt_state))
             if jnp.issubdtype(x.dtype, jnp.floating))
  assert np.all(np.isfinite(values)) and np.mean(values[-3:]) < 0.8 * np.mean(values[:3]), values
  probabilities = steps.eval(state, batch)['probabilities']
  assert probabilities.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(probabilities).sum(-1), 1.0, atol=1e-5)


def test_bf16_fdp_encodes_in_bf16_and_pools_float32_features():
  """The encoder's work runs in bfloat16, the frame features that rank pooling differences are float32, and
  they match the float32 model's within the bfloat16 tolerance."""
  from configs import synthetic
  from fdp_jax.families import build_model
  config = synthetic.get_config()
  model = build_model(config.model, 5, 32)
  frames = np.random.default_rng(1).uniform(-1, 1, (2, 4, 32, 32, 1)).astype(np.float32)
  variables = model.init(jax.random.key(0), frames, train=False)
  wanted = lambda module, _: module.name in ('frame_encoder', 'feature_proj_norm')
  _, inner32 = model.apply(variables, frames, train=False, capture_intermediates=wanted)
  _, inner16 = model.apply(in_bf16(variables), bf16(frames), train=False, capture_intermediates=wanted)
  (encoded,) = inner16['intermediates']['frame_encoder']['__call__']
  (features16,) = inner16['intermediates']['feature_proj_norm']['__call__']
  (features32,) = inner32['intermediates']['feature_proj_norm']['__call__']
  assert encoded.dtype == jnp.bfloat16 and features16.dtype == jnp.float32
  assert_within(features16, features32, BF16_TOLERANCE)
