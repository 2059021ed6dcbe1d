"""Shared fixtures: the tiny synthetic corpus, built once per test session, and a tiny run config."""

import os
import sys
from pathlib import Path

# LLVM optimisation level 0 and XLA:CPU's older (non-MLIR) fusion emitters, for every test process and the jobs
# it starts (which must compile alike: several tests compare their results bit for bit). Tests run tiny
# configs for a few steps, so compilation dominates. The tiny train step compiled in 14.4 s at level 1,
# 9.9 s at level 0, 5.3 s at level 0 without the fusion emitters, and ran 76, 94 and 108 ms per step;
# tests/test_mol.py took 125 s at level 1 and 81 s with these flags (2026-11-26). Users' runs keep XLA's
# defaults; tolerances and bitwise comparisons in the suite never compare across flags, except the
# initialisation test, which names its levels.
TEST_XLA_FLAGS = '--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false'
# Two fake CPU devices for every test process; must happen before JAX is imported anywhere.
os.environ.setdefault('XLA_FLAGS', f'--xla_force_host_platform_device_count=2 {TEST_XLA_FLAGS}')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# One persistent JAX compilation cache for the test session and the job processes it starts: many tests
# (and every subprocess job) build the same tiny-config steps, and XLA:CPU spends 8–12 s compiling each.
# A hit loads the very executable a compile would produce, so results are unchanged. Fresh per session.
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  import atexit
  import shutil
  import tempfile
  _cache = tempfile.mkdtemp(prefix='fdp_jax_tests_xla_cache_')
  atexit.register(shutil.rmtree, _cache, ignore_errors=True)
  os.environ['JAX_COMPILATION_CACHE_DIR'] = _cache
  os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'
  os.environ['JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES'] = '0'

REPO = Path(__file__).resolve().parents[1]
# Data produced by the released PyTorch code, for the parity tests (tests/fixtures/README.md).
FIXTURES = REPO / 'tests' / 'fixtures'
sys.path.insert(0, str(REPO))

import pytest  # noqa: E402


@pytest.fixture(scope='session')
def tiny_data_dir(tmp_path_factory):
  """data_dir holding synthetic_me/tiny (4 subjects × 10 clips, 32 px, with flow)."""
  from datasets.synthetic_me import synthetic_me_dataset_builder as m
  data_dir = tmp_path_factory.mktemp('tfds')
  m.Builder(config='tiny', data_dir=str(data_dir), file_format='array_record').download_and_prepare()
  return str(data_dir)


def tiny_config(data_dir: str, **train):
  """configs/synthetic.py shrunk to the tiny corpus: a few steps, 32-px frames, no progress bar."""
  from configs import synthetic
  config = synthetic.get_config()
  config.progress_bar = False
  config.data.builder_config = 'tiny'
  config.data.data_dir = data_dir
  config.data.image_size = 32
  config.data.num_frames = 4
  config.data.num_threads = 1
  config.train.batch_size = 4
  config.train.num_steps = 3
  config.train.warmup_steps = 1
  config.train.log_every_steps = 1
  config.eval.batch_size = 4
  config.eval.num_views = 1
  for k, v in train.items():
    config.train[k] = v
  return config


def resume_job_config(data_dir: str):
  """The config of tests/resume_job.py: 6 steps, logged, checkpointed and test-scored (optimistic record)
  every 2. test_cross_validation's tiny run trains it too, so the resume jobs find those compiled steps in
  the session's compilation cache."""
  config = tiny_config(data_dir, num_steps=6, log_every_steps=2)
  config.cv.checkpoint_every_steps = 2
  config.cv.best_test_every_steps = 2
  return config


def fold_parallel_job_config(data_dir: str, parallel_folds: int):
  """The config of tests/fold_parallel_job.py (4 steps, logged, checkpointed and test-scored every 2), which
  test_fold_parallel also trains in its own process, one fold at a time, to compare with."""
  config = tiny_config(data_dir, num_steps=4, log_every_steps=2)
  config.cv.parallel_folds = parallel_folds
  config.cv.checkpoint_every_steps = 2
  config.cv.best_test_every_steps = 2
  return config


def reference_variables(fixture, module, *inputs, **kwargs):
  """The PyTorch state_dict of a reference fixture (`param/<key>`, saved without num_batches_tracked) as
  the Linen variables of `module`, through the weight converter. `inputs` and `kwargs` are example
  arguments of the module's __call__ (arrays or ShapeDtypeStructs; e.g. train=False)."""
  import functools
  import jax
  from fdp_jax import convert
  abstract = jax.eval_shape(functools.partial(module.init, **kwargs), jax.random.key(0), *inputs)
  state_dict = {k[len('param/'):]: fixture[k] for k in fixture.files if k.startswith('param/')}
  return convert.variables_from_state_dict(abstract, state_dict, num_batches_tracked=False)
