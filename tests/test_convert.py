"""The weight converter (`fdp_jax.models.released_weights`, and its command line `fdp_jax.tools.convert`) on a
state_dict with exactly the released keys, shapes and dtypes (tests/fixtures/official_state_dict_keys.json) and
random values."""

import json
import math
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import FIXTURES, REPO
from fdp_jax.models import released_weights
from fdp_jax.tools import convert

OFFICIAL = json.loads((FIXTURES / 'official_state_dict_keys.json').read_text())['fdp']


@pytest.fixture(scope='module')
def state_dict():
  """Random tensors of the official keys, shapes and dtypes. BatchNorm scales and variances are kept
  near 1 and weights small, so that a forward pass through 20 blocks stays finite."""
  rng = np.random.default_rng(0)
  out = {}
  for key, shape, dtype in OFFICIAL:
    if dtype == 'int64':
      out[key] = np.asarray(rng.integers(0, 10_000), np.int64)
    elif key.endswith('running_var') or (key.endswith('weight') and len(shape) == 1):
      out[key] = rng.uniform(0.5, 1.5, shape).astype(dtype)
    else:
      out[key] = (0.02 * rng.standard_normal(shape, np.float32)).astype(dtype)
  return out


@pytest.fixture(scope='module')
def released(state_dict):
  return released_weights.load_released('fdp', state_dict)


def test_official_key_list_is_the_release():
  assert len(OFFICIAL) == 438
  assert sum(math.prod(s) for _, s, d in OFFICIAL if d == 'float32') == 85_339_342


def test_every_tensor_is_consumed_and_round_trip_is_exact(state_dict, released):
  _, variables = released
  assert set(variables) == {'params', 'batch_stats', 'num_batches_tracked'}
  assert len(jax.tree.leaves(variables)) == 438
  assert sum(x.size for x in jax.tree.leaves(variables['params'])) == 85_304_206
  back = released_weights.to_released_state_dict(variables)
  assert back.keys() == state_dict.keys()
  for key, value in state_dict.items():
    assert back[key].shape == value.shape and back[key].dtype == value.dtype, key
    np.testing.assert_array_equal(back[key], value, err_msg=key)


def test_layouts(state_dict, released):
  _, variables = released
  params, stats = variables['params'], variables['batch_stats']
  np.testing.assert_array_equal(params['frame_rep']['features_3']['mlp']['conv1']['kernel'],
                                state_dict['frame_rep.features.3.mlp.conv1.weight'].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(params['mer']['conv3d']['kernel'],
                                state_dict['mer.conv3d.weight'].transpose(2, 3, 4, 1, 0))
  np.testing.assert_array_equal(params['frame_rep']['proj_head_0']['kernel'],
                                state_dict['frame_rep.proj_head.0.weight'].T)
  np.testing.assert_array_equal(params['dyimg_net']['bn53d']['scale'], state_dict['dyimg_net.bn53d.weight'])
  np.testing.assert_array_equal(stats['dyimg_net']['bn53d']['var'], state_dict['dyimg_net.bn53d.running_var'])
  assert variables['num_batches_tracked']['frame_rep']['stem_0']['norm'] == \
      state_dict['frame_rep.stem.0.norm.num_batches_tracked']


def test_missing_unexpected_and_misshapen_keys_are_named(state_dict):
  missing = dict(state_dict)
  del missing['dyimg_net.bn42d.num_batches_tracked']
  with pytest.raises(ValueError, match=r'missing: dyimg_net\.bn42d\.num_batches_tracked'):
    released_weights.load_released('fdp', missing)
  extra = dict(state_dict, **{'mer.fc3.weight': np.zeros((5, 5), np.float32)})
  with pytest.raises(ValueError, match=r'unexpected: mer\.fc3\.weight'):
    released_weights.load_released('fdp', extra)
  misshapen = dict(state_dict, **{'mer.fc1.weight': state_dict['mer.fc1.weight'].T})
  with pytest.raises(ValueError, match=r'wrong shape: mer\.fc1\.weight is \(3528, 256\)'):
    released_weights.load_released('fdp', misshapen)
  with pytest.raises(ValueError, match="unknown released model 'mer3d'"):
    released_weights.load_released('mer3d', state_dict)


def test_counters_are_recreated_when_absent(state_dict, released):
  _, variables = released
  fresh = {c: variables[c] for c in ('params', 'batch_stats')}     # as if trained from scratch in JAX
  back = released_weights.to_released_state_dict(fresh)
  assert back.keys() == state_dict.keys()
  assert back['frame_rep.norm.num_batches_tracked'].dtype == np.int64
  assert back['frame_rep.norm.num_batches_tracked'] == 0


def test_orbax_save_and_restore(tmp_path, state_dict, released):
  _, variables = released
  # The stem only: enough for every kind of leaf (kernel, scale, bias, mean, var, counter) at ~60 k floats.
  stem = {c: {'frame_rep': {k: v for k, v in variables[c]['frame_rep'].items() if k.startswith('stem_')}}
          for c in variables}
  convert.save_variables(tmp_path / 'converted', stem)
  back = released_weights.to_released_state_dict(convert.restore_variables(tmp_path / 'converted'))
  expected = {k: v for k, v in state_dict.items() if k.startswith('frame_rep.stem.')}
  assert back.keys() == expected.keys() and len(back) == 4 * 6
  for key, value in expected.items():
    assert back[key].dtype == value.dtype
    np.testing.assert_array_equal(back[key], value)


def test_converted_full_model_forward(released):
  module, variables = released
  frames = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (1, 8, 64, 64, 1)), jnp.float32)
  start = time.perf_counter()
  out = jax.jit(lambda v, x: module.apply(v, x, train=False))(variables, frames)
  logits, dynamic_image = out['logits'], out['dynamic_image']
  seconds = time.perf_counter() - start
  assert logits.shape == (1, 5) and dynamic_image.shape == (1, 64, 64)
  assert np.all(np.isfinite(logits)) and np.all(np.isfinite(dynamic_image))
  print(f'full-size released FDP, compile + one forward: {seconds:.1f} s')


def test_cli_without_torch_says_how_to_get_it(tmp_path):
  # PyTorch hidden from the command (None in sys.modules makes its import fail), installed or not.
  hide = ("import runpy, sys; sys.modules['torch'] = None; sys.argv = ['convert'] + sys.argv[1:]; "
          "runpy.run_module('fdp_jax.tools.convert', run_name='__main__')")
  result = subprocess.run([sys.executable, '-c', hide, f'--pth={tmp_path}/released.pth',
                           f'--out={tmp_path}/out'], cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  assert 'pip install torch' in result.stderr
