"""Whole-model parity of the released FDP and MOL with their PyTorch renderings (benchmarks/torch_fdp.py and
benchmarks/torch_mol.py, compared by benchmarks/torch_parity.py, one implementation shared with its --check):
random variables written as a PyTorch state_dict, loaded with strict=True and read back through
`fdp_jax.models.released_weights`, the same frames through both frameworks, in eval and in training mode (batch statistics
per frame / per pair, then every BatchNorm's running statistics), under both conv routings. Small sizes, so that
each test takes seconds: FDP with every width and depth cut (`torch_fdp.SMALL_FDP`, the released geometry kept),
MOL on 64-px frames (its widths are the released ones). PyTorch is a test-only reference that fdp_jax does not
depend on: without it these tests skip, unless FDP_JAX_REQUIRE_TORCH=1 (as `.ci/run` sets, having installed it)
makes that a failure."""

import importlib
import os

import numpy as np
import pytest

try:
  importlib.import_module('torch')
except ImportError as error:
  if os.environ.get('FDP_JAX_REQUIRE_TORCH') == '1':
    pytest.fail(f'{error}, and FDP_JAX_REQUIRE_TORCH=1 requires the PyTorch parity tests', pytrace=False)
torch = pytest.importorskip('torch', reason='PyTorch is not installed (a test-only reference: see .ci/run)')

from benchmarks import torch_fdp, torch_mol, torch_parity  # noqa: E402
from conftest import FIXTURES  # noqa: E402

# SegNet's max-unpooling writes each output once (2×2 windows do not overlap), so PyTorch's warning that it
# has no deterministic implementation does not apply here.
pytestmark = [pytest.mark.numerics,
              pytest.mark.filterwarnings('ignore:max_unpooling2d_forward_out does not have a deterministic')]

# max|JAX − PyTorch| / max|PyTorch| allowed per released model and mode ('*': every output and, in training,
# the running statistics): about 10× the largest error measured over both routings (float32, seed 0, batch 2,
# torch 2.13.0+cpu, jax 0.10.2, the suite's XLA flags):
#   FDP eval  3.6e-7 (SegNet's pre-sigmoid output; logits 3.5e-7, features 2.9e-7, dynamic image 1.2e-7)
#   FDP train 2.1e-6 (logits; features 2.0e-6, running statistics 2.0e-6); SegNet's outputs below
#   MOL eval  6.2e-7 (flow; logits 3.7e-7, landmarks 4.5e-7)
#   MOL train 1.1e-6 (flow; logits 8.2e-7, landmarks 7.6e-7), running statistics 1.0e-5 (conv6_1's mean: on
#             64-px frames FlowNetC's conv6 maps are 1×1, so its BatchNorms normalise 2 values per channel)
MAX_ERROR = {
    ('fdp', 'eval'): {'*': 4e-6},
    ('fdp', 'train'): {'*': 2e-5},
    ('mol', 'eval'): {'*': 6e-6},
    ('mol', 'train'): {'*': 1e-5, 'running_stats': 1e-4},
}
# SegNet's outputs in training (FDP's segnet_out, dynamic_image) are held by their median error instead: its
# training BatchNorms over few values (2 clips × 4×4 maps in stage 5) magnify rounding to 1e-4 (measured max
# 2.1e-4, median 1.3e-5), and at that level a near-tie in a max-pool can flip its winner, so the unpooling
# puts a value elsewhere and a patch of the output moves by 1e-2 (2.1e-2 on 2 % of the pixels at the
# released sizes, `torch_parity.py --check_train`). A wrong layer moves every pixel: the median catches
# it, and the maximum stays bounded.
SEGNET_TRAIN_MEDIAN, SEGNET_TRAIN_MAX = 1.5e-4, 5e-2


@pytest.fixture(autouse=True)
def torch_settings():
  """float32, one thread (the suite's two workers share two cores), deterministic algorithms and a fixed
  seed for the models' own initialisation (overwritten by the drawn variables); restored afterwards."""
  saved = (torch.get_num_threads(), torch.get_default_dtype(), torch.are_deterministic_algorithms_enabled(),
           torch.is_deterministic_algorithms_warn_only_enabled())
  torch.set_num_threads(1)
  torch.set_default_dtype(torch.float32)
  torch.use_deterministic_algorithms(True, warn_only=True)
  torch.manual_seed(0)
  yield
  threads, dtype, deterministic, warn_only = saved
  torch.set_num_threads(threads)
  torch.set_default_dtype(dtype)
  torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


@pytest.mark.parametrize('routing', ['cpu', 'xla'])
@pytest.mark.parametrize('name', ['fdp', 'mol'])
def test_released_model_matches_pytorch(name, routing):
  results = torch_parity.parity(name, batch=2, seed=0, routing=routing, small=True)
  assert set(results) == {'eval', 'train'}
  for mode, (errors, ref_max_abs) in results.items():
    assert all(v > 0 for v in ref_max_abs.values()), ref_max_abs       # no output is trivially zero
    bounds = {k: (None, MAX_ERROR[name, mode].get(k, MAX_ERROR[name, mode]['*'])) for k in errors}
    if (name, mode) == ('fdp', 'train'):
      bounds.update({k: (SEGNET_TRAIN_MEDIAN, SEGNET_TRAIN_MAX) for k in ('segnet_out', 'dynamic_image')})
    measured = {k: (float(np.median(v)), float(v.max())) for k, v in errors.items()}
    too_large = {k: measured[k] for k, (median, maximum) in bounds.items()
                 if measured[k][1] > maximum or (median is not None and measured[k][0] > median)}
    assert not too_large, f'{name} {mode}, {routing} routing: (median, max) {too_large}; all: {measured}'


def test_pytorch_renderings_have_the_released_state_dicts():
  """Keys, order, shapes and dtypes of the released state_dicts (built on the meta device: no weights)."""
  with torch.device('meta'):
    fdp, mol = torch_fdp.ReleasedFDPTorch(), torch_mol.ReleasedMOLTorch()
  assert torch_parity.check_state_dict_keys(fdp, 'fdp') == 438
  assert torch_parity.check_state_dict_keys(mol, 'mol') == 175


@pytest.mark.parametrize('block, fixture', [
    (torch_mol.MOLConvStack, 'mol_conv_stack'), (torch_mol.FCC, 'mol_fcc'),
    (torch_mol.CCC, 'mol_ccc'), (torch_mol.MER3DCNN, 'mol_mer_3dcnn')])
def test_pytorch_mol_blocks_reproduce_the_release(block, fixture):
  """The PyTorch MOL is written from fdp_jax's reading of the release, so its blocks are held to the
  release's own outputs (tests/fixtures): measured 3.8e-7 of max|ref| for the conv stack, exact for the
  others."""
  data = np.load(FIXTURES / f'{fixture}.npz')
  module = block().eval()
  loaded = module.load_state_dict({k[len('param/'):]: torch.from_numpy(data[k]) for k in data.files
                                   if k.startswith('param/')}, strict=False)
  # The fixtures were saved without num_batches_tracked; every other tensor is there.
  assert not loaded.unexpected_keys and all(k.endswith('.num_batches_tracked') for k in loaded.missing_keys)
  with torch.no_grad():
    outputs = module(torch.from_numpy(data['input/0']))
  outputs = outputs if isinstance(outputs, tuple) else (outputs,)
  for i, got in enumerate(outputs):
    want = data[f'output/{i}']
    assert np.abs(got.numpy() - want).max() <= 4e-6 * np.abs(want).max()
