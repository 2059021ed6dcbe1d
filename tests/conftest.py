"""Shared fixtures: the tiny synthetic corpus, built once per test session, and a tiny run config."""

import os
import sys
from pathlib import Path

# LLVM optimisation level 0 and XLA:CPU's older (non-MLIR) fusion emitters, for every test process and the jobs
# it starts (which must compile alike: several tests compare their results bit for bit). Tests run tiny
# configs for a few steps, so compilation dominates: these flags compile the tiny step almost 3× faster and
# run it a third slower (benchmarks/README.md, "The test suite"). Users' runs keep XLA's defaults;
# tolerances and bitwise comparisons in the suite never compare across flags, except the initialisation
# test, which names its levels.
TEST_XLA_FLAGS = '--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false'


def xla_flags(device_count: int = 2) -> str:
  """XLA_FLAGS for a test process or a job it starts: `device_count` fake CPU devices, the test flags, and
  every other flag of the XLA_FLAGS the suite was started with, which win over the test flags. So
  `XLA_FLAGS=--xla_cpu_max_isa=AVX2 python -m pytest …` compiles every test and every job for an older CPU's
  instruction set, as CI does for the tests that compare numbers across programs (`.ci/run`)."""
  flags = dict(f.split('=', 1) for f in TEST_XLA_FLAGS.split())
  for flag in os.environ.get('XLA_FLAGS', '').split():
    name, _, value = flag.partition('=')
    flags[name] = value
  flags['--xla_force_host_platform_device_count'] = str(device_count)
  return ' '.join(f'{name}={value}' if value else name for name, value in flags.items())


# Two fake CPU devices for every test process; must happen before JAX is imported anywhere.
os.environ['XLA_FLAGS'] = xla_flags(2)
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

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_configure(config):
  config.addinivalue_line(
      'markers', 'numerics: compares numbers between two compiled programs, or against values recorded on one '
      "machine (the released code's fixtures, measured margins): `.ci/run` runs these a second time with XLA "
      'compiling for an older CPU (`--xla_cpu_max_isa`), so a test that holds only on one CPU fails there')


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
  test_fold_parallel also trains in its own process, one fold at a time, to compare with. Its learning rate,
  3e-2, leaves the held-out clips' top two probabilities ≥ 0.02 apart (at the suite's 1e-3 they are
  5e-5 apart, near-uniform): the two programs' predictions can then be compared exactly on any CPU,
  though their floats differ in the last digits."""
  config = tiny_config(data_dir, num_steps=4, log_every_steps=2, learning_rate=3e-2)
  config.cv.parallel_folds = parallel_folds
  config.cv.checkpoint_every_steps = 2
  config.cv.best_test_every_steps = 2
  return config


def top_two_margins(probabilities) -> np.ndarray:
  """(N, C) class probabilities → (N,) how far each clip's most probable class is ahead of the next."""
  p = np.sort(np.asarray(probabilities), axis=-1)
  return p[:, -1] - p[:, -2]


def assert_predictions_are_argmax(predictions, probabilities, rounding: float = 1e-6):
  """Each prediction is its clip's most probable class, up to `rounding` (results.json keeps 6 decimals):
  a class that near the top is a tie, which the CPU's last-digit rounding may settle either way."""
  p = np.asarray(probabilities)
  predictions = np.asarray(predictions)
  behind = p.max(-1) - p[np.arange(len(p)), predictions]
  assert np.all(behind <= rounding), (predictions, p.argmax(-1), behind)


def reference_variables(fixture, module, *inputs, **kwargs):
  """The PyTorch state_dict of a reference fixture (`param/<key>`, saved without num_batches_tracked) as
  the Linen variables of `module`, through the weight converter. `inputs` and `kwargs` are example
  arguments of the module's __call__ (arrays or ShapeDtypeStructs; e.g. train=False)."""
  import functools
  import jax
  from fdp_jax.models import released_weights
  abstract = jax.eval_shape(functools.partial(module.init, **kwargs), jax.random.key(0), *inputs)
  state_dict = {k[len('param/'):]: fixture[k] for k in fixture.files if k.startswith('param/')}
  return released_weights.variables_from_state_dict(abstract, state_dict, num_batches_tracked=False)


class OneFold:
  """The trainer's own jitted steps (`fdp_jax.cv.parallel.make_fold_steps`, a group of one fold) with a
  single-fold interface: batches without the slot axis, metrics and outputs without it. The state keeps
  its slot axis of 1 (`unstack` takes it off for inspection); `train` donates it, as the trainer does."""

  def __init__(self, config, model, batch: dict, log_every_steps: int = 1):
    """log_every_steps: the metrics `train` returns are means over the steps since the last multiple of it
    (`fdp_jax.train.train_step`); 1, the default here, makes them each step's own."""
    import numpy as np
    from fdp_jax.cv import parallel
    config = config.copy_and_resolve_references()
    config.train.log_every_steps = log_every_steps
    self.fsteps = parallel.make_fold_steps(config, model, {k: np.asarray(v) for k, v in batch.items()}, 1)

  def _keys(self, key):
    from fdp_jax.cv import parallel
    return parallel.slot_keys([key], self.fsteps.state_sharding)

  def _batch(self, batch: dict) -> dict:
    import numpy as np
    b = {k: np.asarray(v) for k, v in batch.items()}
    b.setdefault('index', np.arange(len(b['frames']), dtype=np.int32))   # evaluation returns it
    return {k: v[None] for k, v in b.items()}

  def init(self, key):
    return self.fsteps.init(self._keys(key))

  def train(self, state, batch: dict, step: int, key=None):
    """One step; its RNG is fold_in(key, step), as in a fold (key: the fold's step key, default key(0))."""
    import jax
    import numpy as np
    key = jax.random.key(0) if key is None else key
    state, metrics = self.fsteps.train(state, self._batch(batch), self._keys(key), np.int32(step))
    return state, jax.tree.map(lambda x: x[0], metrics)

  def eval(self, state, batch: dict) -> dict:
    import jax
    return jax.tree.map(lambda x: x[0], self.fsteps.eval(state, self._batch(batch)))

  @staticmethod
  def unstack(state):
    import jax
    return jax.tree.map(lambda x: x[0], state)
