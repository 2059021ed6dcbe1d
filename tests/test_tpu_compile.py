"""The fold-parallel steps compile for a TPU ahead of time (fdp_jax.cv.aot), on this CPU machine, and fit
its chips. Needs libtpu (`pip install "jax[tpu]==<jax's version>"`): without it the test skips, unless
FDP_JAX_REQUIRE_TPU_COMPILE=1 (as `.ci/run` sets, having installed it) makes that a failure."""

import importlib.util
import os

import pytest

from configs import synthetic
from fdp_jax.cv import aot

V5E_HBM = 16 * 2**30


def test_the_small_config_compiles_for_four_v5e_chips_and_fits():
  if importlib.util.find_spec('libtpu') is None:
    if os.environ.get('FDP_JAX_REQUIRE_TPU_COMPILE') == '1':
      pytest.fail('libtpu is not installed, and FDP_JAX_REQUIRE_TPU_COMPILE=1 requires this test')
    pytest.skip('libtpu is not installed (pip install "jax[tpu]==<jax version>")')
  devices = aot.tpu_devices('v5e:2x2')
  assert len(devices) == 4 and devices[0].platform == 'tpu'
  fsteps, train, evaluation = aot.compile_group_steps(synthetic.get_config(), devices)
  # One fold per chip, and 'auto' resolved for the TPU, not for the CPU that compiled it.
  assert fsteps.num_slots == 4 and dict(fsteps.mesh.shape) == {'fold': 4, 'data': 1}
  assert (fsteps.options.conv_routing, fsteps.options.compute_dtype) == ('xla', 'bfloat16')
  for cost in (train, evaluation):
    assert 0 < cost.memory_bytes < 0.8 * V5E_HBM          # what `cv.parallel_folds=0` may plan to fill
    assert cost.flops > 0 and cost.bytes_accessed > 0
  config = synthetic.get_config()       # per clip: forward, backward and update against a forward pass
  assert train.flops / config.train.batch_size > 2 * evaluation.flops / config.eval.batch_size
