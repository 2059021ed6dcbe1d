"""MOL as released: parity with the PyTorch fixtures, the correlation layer and transposed convolution
against direct references, weight conversion of all 175 released tensors, and a real training step."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import FIXTURES, OneFold
from fdp_jax.models import flownet, layers, mol, released_weights


def fixture(name):
  data = np.load(FIXTURES / f'{name}.npz')
  params = {k[len('param/'):]: data[k] for k in data.files if k.startswith('param/')}
  return params, data


def convert_piece(module, state_dict, *args, **kwargs):
  abstract = jax.eval_shape(lambda: module.init({'params': jax.random.key(0)}, *args, **kwargs))
  return released_weights.variables_from_state_dict(abstract, state_dict, num_batches_tracked=False, model='mol')


def assert_parity(got, want):
  # float32 on CPU, either conv routing, is within 6.1e-7 of max|ref| of PyTorch (the 3D-CNN head; conv stack
  # 3.8e-7, FCC 1.5e-7, CCC exact): 1e-6 of that scale holds them all, the tightest with a margin of 1.6×.
  want = np.asarray(want)
  assert got.shape == want.shape
  err = np.abs(np.asarray(got) - want).max()
  assert err <= 1e-6 * np.abs(want).max(), err / np.abs(want).max()


@pytest.mark.numerics
@pytest.mark.parametrize('routing', layers.CONV_ROUTINGS[1:])
def test_conv_stack_matches_the_release(routing):
  params, data = fixture('mol_conv_stack')
  x = data['input/0'].transpose(0, 2, 3, 1)
  module = mol.ConvStack()
  with layers.conv_routing(routing):
    out = module.apply(convert_piece(module, params, x), x)
  assert_parity(out, data['output/0'].transpose(0, 2, 3, 1))


@pytest.mark.numerics
def test_fcc_matches_the_release():
  params, data = fixture('mol_fcc')
  x = data['input/0'].transpose(0, 2, 3, 1)
  module = mol.FCC()
  variables = convert_piece(module, params, x, train=False)
  assert set(variables['params']['ffn__1']) == {'kernel', 'bias'}   # the unused FFN is kept, not run
  assert_parity(module.apply(variables, x, train=False), data['output/0'].transpose(0, 2, 3, 1))


@pytest.mark.numerics
def test_ccc_matches_the_release():
  params, data = fixture('mol_ccc')
  x = data['input/0'].transpose(0, 2, 1)                              # (N, positions, channels)
  module = mol.CCC()
  differences, edges = module.apply(convert_piece(module, params, x), x)
  assert_parity(differences, data['output/0'].transpose(0, 2, 3, 1))
  assert_parity(edges, data['output/1'].transpose(0, 2, 1))


@pytest.mark.numerics
@pytest.mark.parametrize('routing', layers.CONV_ROUTINGS[1:])
def test_mer_3dcnn_matches_the_release(routing):
  params, data = fixture('mol_mer_3dcnn')
  x = data['input/0'].transpose(0, 2, 3, 4, 1)
  module = mol.MER3DCNN()
  with layers.conv_routing(routing):
    out = module.apply(convert_piece(module, params, x, train=False), x, train=False)
  assert_parity(out, data['output/0'])


@pytest.mark.numerics
def test_correlation_matches_a_direct_reference():
  rng = np.random.default_rng(0)
  a, b = rng.standard_normal((2, 2, 9, 7, 3)).astype(np.float32)
  got = np.asarray(flownet.correlation(jnp.asarray(a), jnp.asarray(b)))
  assert got.shape == (2, 9, 7, 441)
  want = np.zeros_like(got)
  for i in range(21):
    for j in range(21):
      dy, dx = (i - 10) * 2, (j - 10) * 2
      for y in range(9):
        for x in range(7):
          if 0 <= y + dy < 9 and 0 <= x + dx < 7:
            want[:, y, x, i * 21 + j] = (a[:, y, x] * b[:, y + dy, x + dx]).sum(-1) / 3
  np.testing.assert_allclose(got, want, atol=1e-5)
  assert np.count_nonzero(want[:, :, :, 220]) == want[:, :, :, 220].size   # zero displacement: everywhere


@pytest.mark.numerics
def test_conv_transpose_is_pytorchs():
  """PyTorch's ConvTranspose2d(k4, s2, p1) by its definition: every input pixel scatters the kernel."""
  rng = np.random.default_rng(1)
  x = rng.standard_normal((1, 3, 4, 5)).astype(np.float32)               # NHWC
  weight = rng.standard_normal((5, 2, 4, 4)).astype(np.float32)          # PyTorch (in, out, k, k)
  full = np.zeros((1, 2 * 3 + 2, 2 * 4 + 2, 2), np.float32)
  for y in range(3):
    for xx in range(4):
      full[0, 2 * y:2 * y + 4, 2 * xx:2 * xx + 4] += np.einsum('i,iokl->klo', x[0, y, xx], weight)
  want = full[:, 1:-1, 1:-1]                                                # padding 1 crops one each side
  kernel = weight.transpose(2, 3, 1, 0)                                     # (k, k, out, in)
  np.testing.assert_allclose(flownet.conv_transpose(jnp.asarray(x), jnp.asarray(kernel)), want, atol=1e-5)
  with layers.conv_routing('xla'):          # TPU/GPU: XLA's own transposed convolution, the same numbers
    np.testing.assert_allclose(flownet.conv_transpose(jnp.asarray(x), jnp.asarray(kernel)), want, atol=1e-5)
  # The general (zero-dilated) route, taken by other shapes, agrees with the phase route.
  general = flownet.conv_transpose(jnp.asarray(x), jnp.asarray(kernel[:3, :3]), 2, 1)
  full3 = np.zeros((1, 2 * 2 + 3, 2 * 3 + 3, 2), np.float32)
  for y in range(3):
    for xx in range(4):
      full3[0, 2 * y:2 * y + 3, 2 * xx:2 * xx + 3] += np.einsum('i,iokl->klo', x[0, y, xx], weight[:, :, :3, :3])
  np.testing.assert_allclose(general, full3[:, 1:-1, 1:-1], atol=1e-5)


def test_circular_conv_sees_the_whole_column():
  rng = np.random.default_rng(2)
  x = rng.standard_normal((1, 5, 4, 2)).astype(np.float32)
  kernel = rng.standard_normal((2, 5)).astype(np.float32)
  want = sum(np.roll(x, -i, axis=1) * kernel[:, i] for i in range(5))
  np.testing.assert_allclose(mol.circular_conv(jnp.asarray(x), jnp.asarray(kernel), 1), want, atol=1e-5)
  want_w = sum(np.roll(x, -i, axis=2) * kernel[:, i % 4] for i in range(4))
  np.testing.assert_allclose(mol.circular_conv(jnp.asarray(x), jnp.asarray(kernel[:, :4]), 2), want_w,
                             atol=1e-5)


@pytest.fixture(scope='module')
def released_state_dict():
  keys = json.load(open(FIXTURES / 'official_state_dict_keys.json'))['mol']
  rng = np.random.default_rng(0)
  state_dict = {}
  for key, shape, dtype in keys:
    if key.endswith('num_batches_tracked'):
      state_dict[key] = np.array(7, np.int64)
    elif key.endswith('running_var'):
      state_dict[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    else:
      state_dict[key] = (0.05 * rng.standard_normal(shape)).astype(np.float32)
  return state_dict


def test_whole_mol_converts_every_released_tensor_and_back(released_state_dict):
  assert len(released_state_dict) == 175
  module, variables = released_weights.load_released('mol', released_state_dict)
  back = released_weights.to_released_state_dict(variables)
  assert set(back) == set(released_state_dict)
  for key, value in released_state_dict.items():
    assert back[key].dtype == value.dtype and np.array_equal(back[key], value), key
  frames = jnp.asarray(np.random.default_rng(3).standard_normal((1, 8, 128, 128, 1)), jnp.float32)
  out = jax.jit(lambda v, x: module.apply(v, x, train=False))(variables, frames)
  logits, flow, landmarks = out['logits'], out['flow'], out['landmarks']
  assert logits.shape == (1, 5) and flow.shape == (1, 7, 128, 128, 2) and landmarks.shape == (1, 7, 68, 2)
  assert np.all(np.isfinite(flow))


def test_conversion_names_missing_and_unknown_keys(released_state_dict):
  broken = dict(released_state_dict)
  del broken['FCC_2.meta_pe_2_W']
  broken['flownet.conv7.0.weight'] = np.zeros((1,), np.float32)
  with pytest.raises(ValueError, match=r'missing: FCC_2\.meta_pe_2_W(.|\n)*unexpected: flownet\.conv7'):
    released_weights.load_released('mol', broken)


@pytest.mark.numerics
def test_a_mol_train_step_lowers_the_loss():
  """A 64-px MOL (8×8 F5C maps: the same code path at a quarter of the cost), 4 frames, batch 2, through the
  trainer's own steps."""
  from configs import mol_recipe
  model = mol.MOL(num_classes=3, dropout=0.0)
  rng = np.random.default_rng(4)
  batch = {
      'frames': rng.standard_normal((2, 4, 64, 64, 1)).astype(np.float32),
      'frame_mask': np.ones((2, 4), bool),
      'flow': rng.standard_normal((2, 3, 64, 64, 2)).astype(np.float32),
      'landmarks': rng.uniform(10, 50, (2, 3, 68, 2)).astype(np.float32),
      'label': np.array([0, 2], np.int32), 'mask': np.ones((2,), bool),
  }
  config = mol_recipe.mol_config('synthetic_me', 'mol', 3)
  config.train.learning_rate, config.train.num_steps = 1e-3, 8
  steps = OneFold(config, model, batch)
  state = steps.init(jax.random.key(0))
  losses, mer, accuracy = [], [], []
  for i in range(8):
    state, metrics = steps.train(state, batch, i)
    losses.append(float(metrics['loss']))
    mer.append(float(metrics['loss_mer']))
    accuracy.append(float(metrics['accuracy']))
    assert {'loss_mer', 'loss_flow', 'loss_landmarks'} <= set(metrics)
  assert np.all(np.isfinite(losses)) and losses[-1] < 0.85 * losses[0], losses
  # Flow (weight 10) and landmarks (0.5) are 16 of the first total of 17 and fall enough to pass the check
  # above on their own; the MER term must learn too: measured, cross-entropy 1.12 → 0.004, accuracy ½ → 1.
  assert mer[-1] < 0.05 * mer[0], mer
  assert accuracy[0] <= 0.5 and accuracy[-3:] == [1.0] * 3, accuracy
  out = steps.eval(state, batch)
  assert out['flow_epe'].shape == (2,) and out['landmark_nme'].shape == (2,)


@pytest.mark.numerics
def test_mol_trains_its_batch_norms_as_the_release_loops_over_pairs():
  """In training, FlowNet on all B·(T−1) pairs and FCC on all pairs give what the release's loop over
  pairs gives, one PyTorch call per frame or pair (here: the same modules on one pair at a time, T = 2):
  each pair's flow and F5C map, and every BatchNorm's running statistics after the 2(T−1) or T−1 calls
  (`flownet.pair_call_order`). 64-px frames: the same code path at a quarter of the cost."""
  b, t, size = 2, 3, 64                            # frame 1 is the second of pair 0 and the first of pair 1
  rng = np.random.default_rng(7)
  # Brightness and contrast that change over the clip, so each frame and pair has statistics of its own.
  frames = (rng.normal(0, 1, (b, t, size, size, 1)) * np.linspace(0.5, 2, t)[None, :, None, None, None]
            + np.linspace(-1, 1, t)[None, :, None, None, None]).astype(np.float32)
  side = size // 8
  fa = rng.normal(0, 1, (b * (t - 1), side, side, 128)).astype(np.float32)
  fb = rng.normal(0, 1, (b * (t - 1), side, side, 128)).astype(np.float32)
  net = flownet.FlowNet()
  variables = jax.jit(lambda key: net.init(key, frames, fa, fb, train=False))(jax.random.key(0))
  # Running statistics away from their initial values, so that the update weights show.
  variables = {'params': variables['params'], 'batch_stats': jax.tree.map(
      lambda v: v + 0.3, variables['batch_stats'])}
  run = jax.jit(lambda v, x, a, c: net.apply(v, x, a, c, train=True, mutable=['batch_stats']))
  flow, stats = run(variables, frames, fa, fb)
  per_pair = lambda x: x.reshape(b, t - 1, *x.shape[1:])   # noqa: E731
  running = variables
  for pair in range(t - 1):                        # the release: one call per pair, batch B
    flow_pair, new = run(running, frames[:, pair:pair + 2], per_pair(fa)[:, pair], per_pair(fb)[:, pair])
    np.testing.assert_allclose(per_pair(flow)[:, pair], flow_pair, rtol=1e-4, atol=1e-4)
    running = {'params': variables['params'], 'batch_stats': new['batch_stats']}
  jax.tree.map(lambda a, e: np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-5),
               stats['batch_stats'], running['batch_stats'])

  x = rng.normal(0, 1, (b * (t - 1), 16, 16, 128)).astype(np.float32) * np.repeat(
      np.tile(np.linspace(0.5, 2, t - 1), b), 16 * 16 * 128).reshape(b * (t - 1), 16, 16, 128)
  fcc_vars = mol.FCC().init(jax.random.key(1), x, train=False)
  together, fcc_stats = mol.FCC(bn_groups=t - 1).apply(fcc_vars, x, train=True, mutable=['batch_stats'])
  running = fcc_vars
  for pair in range(t - 1):
    out, new = mol.FCC(bn_groups=1).apply(running, per_pair(x)[:, pair], train=True, mutable=['batch_stats'])
    np.testing.assert_allclose(per_pair(together)[:, pair], out, rtol=1e-4, atol=1e-4)
    running = {'params': fcc_vars['params'], 'batch_stats': new['batch_stats']}
  jax.tree.map(lambda a, e: np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-5),
               fcc_stats['batch_stats'], running['batch_stats'])


def test_released_mol_groups_every_batch_norm_as_the_release_calls_it():
  """The wiring the test above relies on, in the whole model: every BatchNorm that runs in training is
  PyTorch's (`layers.TorchBatchNorm`), grouped per frame with the release's call order in FlowNet's
  conv1–conv3 and per pair everywhere else (FCC_1/FCC_2 and the flow network after the correlation)."""
  import flax.linen as nn
  from fdp_jax.models import layers
  b, t = 2, 4
  model = mol.MOL(num_classes=3)
  seen = {}

  def record(next_fun, args, kwargs, context):
    module = context.module
    if context.method_name == '__call__' and isinstance(module, (nn.BatchNorm, layers.TorchBatchNorm)):
      seen['/'.join(module.scope.path)] = (type(module).__name__, getattr(module, 'groups', None),
                                           getattr(module, 'order', None), args[0].shape[0])
    return next_fun(*args, **kwargs)

  frames = jnp.zeros((b, t, 64, 64, 1), jnp.float32)
  with nn.intercept_methods(record):
    jax.eval_shape(lambda key: model.init({'params': key, 'dropout': key}, frames, train=True),
                   jax.random.key(0))
  per_frame = {f'flownet/conv{i}__1' for i in (1, 2, 3)}
  per_pair = {f'FCC_{i}/pre_Norm_{j}' for i in (1, 2) for j in (1, 2)} | {
      f'flownet/{name}__1' for name in ('conv_redir', 'conv3_1', 'conv4', 'conv4_1', 'conv5', 'conv5_1',
                                        'conv6', 'conv6_1')}
  assert set(seen) == per_frame | per_pair
  for path in per_frame:
    assert seen[path] == ('TorchBatchNorm', t, flownet.pair_call_order(t), b * t), path
  for path in per_pair:
    assert seen[path] == ('TorchBatchNorm', t - 1, None, b * (t - 1)), path
  assert flownet.pair_call_order(4) == (0, 1, 1, 2, 2, 3)


def test_build_model_makes_mol_from_its_config():
  from configs import mol_synthetic
  from fdp_jax.families import build_model
  config = mol_synthetic.get_config()
  assert isinstance(build_model(config.model, 5, 128), mol.MOL)
  with pytest.raises(ValueError, match='128×128'):
    build_model(config.model, 5, 64)
  ablation = mol_synthetic.get_config('mer_only')
  assert ablation.loss.flow == 0 and ablation.loss.landmarks == 0 and ablation.loss.mer == 1
