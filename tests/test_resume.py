"""Resume without loss: a LOSO job SIGKILLed at several points (mid-fold, during a checkpoint save, between
a checkpoint and its record, during evaluation, at an arbitrary moment) and rerun with the same command ends
with the results.json of an uninterrupted run; guarded training marks a diverging fold failed and lets the
others finish."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import REPO, tiny_config
from fdp_jax import environment, experiment, inference, run_results, rundir
from fdp_jax.cv import checkpoints, loso

JOB = os.path.join(REPO, 'tests', 'resume_job.py')


def _job(data_dir, workdir, die_at=''):
  """The job in a subprocess. Its seven runs compile the same steps once, through the session's persistent
  compilation cache (conftest.py; the executables, hence the numerics, are the same)."""
  assert os.environ.get('JAX_COMPILATION_CACHE_DIR')
  cmd = [sys.executable, JOB, data_dir, str(workdir)] + ([f'--die_at={die_at}'] if die_at else [])
  return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _read(path):
  with open(path) as f:
    return f.read()


def _snapshots(workdir):
  return {os.path.basename(p)[:-5]: sorted(checkpoints.load_progress(str(workdir), os.path.basename(p)[:-5]).snapshots)
          for p in glob.glob(os.path.join(workdir, 'progress', '*.json'))}


def _final_checkpoint(workdir, subject):
  with ocp.CheckpointManager(os.path.join(workdir, 'checkpoints', subject)) as manager:
    assert manager.latest_step() == 6
    return manager.restore(6, args=ocp.args.StandardRestore())


def test_sigkilled_run_resumes_to_the_uninterrupted_results(tiny_data_dir, tmp_path):
  reference = _job(tiny_data_dir, tmp_path / 'reference')       # runs beside the interrupted sequence
  workdir = tmp_path / 'interrupted'

  # 1. Killed from outside at an arbitrary moment once training has checkpointed.
  proc = _job(tiny_data_dir, workdir)
  deadline = time.time() + 300
  while not glob.glob(str(workdir / 'progress' / '*.json')) and proc.poll() is None and time.time() < deadline:
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.communicate(timeout=60)
  assert not (workdir / 'results.json').exists()

  # 2.–5. Killed from inside at chosen points (counted from each start; group 1 = s00, s01 checkpoints at
  # steps 2, 4, 6); each rerun continues where the previous one stopped.
  for die_at, check in [
      # during an orbax save: its files are written, the commit is not
      ('save:1', lambda: glob.glob(str(workdir / 'checkpoints' / '*' / '*.orbax-checkpoint-tmp*'))),
      # between a checkpoint and its record: s00 has recorded step 4, s01 has not
      ('progress:2', lambda: _snapshots(workdir)['s00'][-1] == _snapshots(workdir)['s01'][-1] + 2),
      # mid-fold, after the step-4 checkpoint
      ('step:2', lambda: _snapshots(workdir)['s00'] == [2, 4]),
      # during the final scoring of group 1, after its last checkpoint
      ('eval:4', lambda: _snapshots(workdir)['s01'] == [4, 6])]:
    proc = _job(tiny_data_dir, workdir, die_at)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, (die_at, out[-3000:])
    assert check(), (die_at, _snapshots(workdir))
    assert checkpoints.load_progress(str(workdir), 's00').status == 'training'
    assert not (workdir / 'results.json').exists()

  proc = _job(tiny_data_dir, workdir)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out[-3000:]
  out, _ = reference.communicate(timeout=300)
  assert reference.returncode == 0, out[-3000:]

  assert _read(workdir / 'results.json') == _read(tmp_path / 'reference' / 'results.json')
  assert _read(workdir / 'train_history.json') == _read(tmp_path / 'reference' / 'train_history.json')
  assert not glob.glob(str(workdir / 'checkpoints' / '*' / '*.orbax-checkpoint-tmp*'))
  for subject in ('s00', 's03'):   # the final models are the same, bit for bit
    a, b = (_final_checkpoint(w, subject) for w in (workdir, tmp_path / 'reference'))
    jax.tree.map(np.testing.assert_array_equal, a, b)
  results = json.loads(_read(workdir / 'results.json'))
  assert [f['status'] for f in results['folds']] == ['done'] * 4 and results['aggregate']['complete']


def test_a_diverging_fold_fails_alone_and_keeps_its_last_good_checkpoint(tiny_data_dir, tmp_path, monkeypatch):
  """Fold s01's parameters are poisoned before step 4 (as a divergence would leave them): the guard stops it
  at the step-4 logging point with step 2 as its last checkpoint; s00, trained beside it, and the next
  group finish; results.json lists s01 as failed and the aggregate says it is incomplete."""
  make = loso.make_group_steps
  poisoned = []

  def poisoning_steps(*a, **kw):
    fsteps = make(*a, **kw)

    def train(state, batch, keys, step):
      if step == 3 and not poisoned:      # slot 1 of the first group only
        poisoned.append(step)
        params = jax.tree.map(lambda x: x.at[1].set(jnp.nan) if x.ndim > 1 else x, state.params)
        state = state.replace(params=params)
      return fsteps.train(state, batch, keys, step)
    return fsteps._replace(train=train)

  monkeypatch.setattr(loso, 'make_group_steps', poisoning_steps)
  config = tiny_config(tiny_data_dir, num_steps=6, log_every_steps=2)
  config.cv.parallel_folds = 2
  config.cv.checkpoint_every_steps = 2
  workdir = str(tmp_path / 'run')
  with pytest.raises(SystemExit, match=r'1 fold\(s\) failed \(s01\)'):
    experiment.main(config, workdir)
  with open(os.path.join(workdir, 'results.json')) as f:
    results = json.load(f)
  folds = {f['subject']: f for f in results['folds']}
  assert [f['status'] for f in results['folds']] == ['done', 'failed', 'done', 'done']
  failed = folds['s01']
  assert failed['steps'] == 4 and failed['last_good_step'] == 2
  assert 'non-finite training metrics at step 4' in failed['error']
  assert 'last good checkpoint is step 2' in failed['error'] and 'learning_rate' in failed['error']
  assert 'predictions' not in failed
  with checkpoints.fold_manager(workdir, 's01') as manager:
    assert manager.all_steps() == [2]                     # nothing saved after the divergence
    restored = checkpoints.restore(manager, inference.fold_template(config))
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(restored.params))
  for subject in ('s00', 's02', 's03'):
    assert len(folds[subject]['predictions']) == folds[subject]['num_test'] == 10
  a = results['aggregate']
  assert a['failed_folds'] == ['s01'] and not a['complete'] and a['num_folds'] == 3 and a['num_samples'] == 30
  table = run_results.markdown_table(results)
  assert '| s01 | 10 | FAILED at step 4 |' in table and 'INCOMPLETE' in table
  with open(os.path.join(workdir, 'report.md')) as f:
    assert '**INCOMPLETE**' in f.read()
  # Rerunning the same command does not retrain anything: the failure stands, the others are read back.
  monkeypatch.setattr(loso, 'train_group', None)
  with pytest.raises(SystemExit, match='s01'):
    experiment.main(config, workdir)
  with open(os.path.join(workdir, 'results.json')) as f:
    assert json.load(f) == results


def test_a_run_directory_is_only_continued_with_its_own_config(tiny_data_dir, tmp_path):
  config = tiny_config(tiny_data_dir)
  workdir = tmp_path / 'run'
  workdir.mkdir()
  (workdir / 'config.json').write_text(config.to_json_best_effort(indent=1))
  assert rundir.check_same_run(str(workdir), config)
  config.data.num_threads = 2            # does not change results: still the same run
  config.progress_bar = True
  assert rundir.check_same_run(str(workdir), config)
  config.train.num_steps = 7
  config.train.learning_rate = 1.0
  with pytest.raises(SystemExit) as e:
    experiment.main(config, str(workdir))
  assert 'train.learning_rate' in str(e.value.code) and 'train.num_steps: 3 → 7' in str(e.value.code)
  assert 'Pass a new --workdir' in str(e.value.code)
  assert sorted(os.listdir(workdir)) == ['config.json']   # nothing written


def test_a_run_from_before_a_key_existed_loads_and_continues_with_its_neutral_default(tmp_path):
  """config.json of a run started before model.f5c_layer_scale and data.stabilise were options: it loads with
  their neutral defaults (configs/base.py) and is the same run as today's config, which leaves them there."""
  from configs import mol_synthetic
  config = mol_synthetic.get_config()
  old = rundir.config_json(config)
  del old['model']['f5c_layer_scale'], old['data']['stabilise'], old['task']
  workdir = tmp_path / 'run'
  workdir.mkdir()
  (workdir / 'config.json').write_text(json.dumps(old))
  loaded = rundir.load_config(str(workdir))
  assert loaded.model.f5c_layer_scale is False and loaded.data.stabilise == 'none' and loaded.task == 'recognition'
  assert rundir.config_json(loaded) == rundir.config_json(config)
  assert rundir.check_same_run(str(workdir), config)
  (tmp_path / 'zz').mkdir()   # checked first (newest name); a config.json of no config is passed over
  (tmp_path / 'zz' / 'config.json').write_text('{"seed": 0}')
  assert rundir.find_interrupted_run(str(tmp_path), config) == str(workdir)
  config.model.f5c_layer_scale = True   # away from the default the old run ran with: another run
  with pytest.raises(rundir.RunMismatchError, match='model.f5c_layer_scale: False → True'):
    rundir.check_same_run(str(workdir), config)


def test_rerunning_without_workdir_finds_the_interrupted_run(tmp_path, tiny_data_dir):
  config = tiny_config(tiny_data_dir)
  runs = tmp_path / 'runs'
  for name, cfg, finished in [('20261101-000000-a', config, False), ('20261102-000000-b', config, True),
                              ('20261103-000000-c', tiny_config(tiny_data_dir, num_steps=9), False)]:
    (runs / name).mkdir(parents=True)
    (runs / name / 'config.json').write_text(cfg.to_json_best_effort(indent=1))
    if finished:
      (runs / name / 'results.json').write_text('{}')
  assert rundir.find_interrupted_run(str(runs), config) == str(runs / '20261101-000000-a')
  assert rundir.find_interrupted_run(str(runs), tiny_config(tiny_data_dir, num_steps=9)).endswith('-c')
  assert rundir.find_interrupted_run(str(runs), tiny_config(tiny_data_dir, num_steps=5)) is None


KILLED_BUILD = '''
import os, signal, sys
sys.path.insert(0, {repo!r})
from datasets.synthetic_me import synthetic_me_dataset_builder as m
generate = m.Builder._generate_examples
def generate_then_die(self, *a, **kw):
  for n, example in enumerate(generate(self, *a, **kw)):
    if n == 12:
      os.kill(os.getpid(), signal.SIGKILL)   # part-way through writing the records
    yield example
m.Builder._generate_examples = generate_then_die
m.Builder(config='tiny', data_dir={data_dir!r}, file_format='array_record').download_and_prepare()
'''


def test_sigkilled_corpus_build_never_reads_as_built_and_restarts_cleanly(tiny_data_dir, tmp_path):
  from fdp_jax import data_sources
  data_dir = str(tmp_path / 'tfds')
  done = subprocess.run([sys.executable, '-c', KILLED_BUILD.format(repo=str(REPO), data_dir=data_dir)],
                        cwd=REPO, capture_output=True, text=True, timeout=300)
  assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
  builder = data_sources.get_builder('synthetic_me', 'tiny', data_dir)
  assert not builder.is_prepared()
  leftovers = glob.glob(os.path.join(data_dir, 'synthetic_me', 'tiny', 'incomplete.*'))
  assert len(leftovers) == 1
  # A leftover modified just now may be a build running in another process: it is kept.
  assert data_sources.remove_interrupted_builds(builder) == [] and os.path.isdir(leftovers[0])
  old = time.time() - data_sources.LEFTOVER_AGE_S - 1
  for folder, _, files in os.walk(leftovers[0]):
    for f in files + ['.']:
      os.utime(os.path.join(folder, f), (old, old))
  # The next run builds it again from scratch, removes the leftover, and reads what a clean build wrote.
  config = tiny_config(data_dir)
  source, index, _ = data_sources.load_corpus(config.data)
  assert not os.path.exists(leftovers[0])
  clean_source, clean_index, _ = data_sources.load_corpus(tiny_config(tiny_data_dir).data)
  assert index.sample_ids == clean_index.sample_ids and index.subjects == clean_index.subjects
  np.testing.assert_array_equal(index.labels, clean_index.labels)
  for i in (0, len(index) - 1):
    np.testing.assert_array_equal(source[i]['frames'], clean_source[i]['frames'])


def test_a_resumption_elsewhere_is_recorded_beside_the_first_environment(tmp_path, caplog):
  from fdp_jax.rundir import record_environment
  path = tmp_path / 'environment.json'
  first = {'seed': 0, 'platform': 'cpu', 'device_count': 2, 'cpu_instruction_set': 'AVX512'}
  record_environment(str(tmp_path), first, resuming=False)
  record_environment(str(tmp_path), first, resuming=True)             # the same environment: unchanged
  assert json.loads(path.read_text()) == first and not caplog.records
  other = dict(first, device_count=4)
  record_environment(str(tmp_path), other, resuming=True)
  record_environment(str(tmp_path), other, resuming=True)             # recorded once, warned each time
  assert json.loads(path.read_text()) == dict(first, resumed_in=[other])
  warnings = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
  assert len(warnings) == 2 and all("device_count: 2 → 4" in w and 'not be bit-identical' in w for w in warnings)
  rescored = dict(first, cpu_instruction_set='AVX2')
  record_environment(str(tmp_path), rescored, resuming=True, what='re-scored')
  assert json.loads(path.read_text()) == dict(first, resumed_in=[other], rescored_in=[rescored])
  assert "is re-scored in another environment than it started in (cpu_instruction_set: 'AVX512' → 'AVX2')" in (
      caplog.records[-1].getMessage())
  # a run started before a key was recorded: the key reads as absent, which is a difference too
  assert environment.differences({'seed': 0}, {'seed': 0, 'xla_flags': ''}) == ["xla_flags: '<absent>' → ''"]


def test_the_instruction_set_is_the_cpus_own_capped_by_xla_max_isa():
  avx512 = {'sse4_2', 'avx', 'avx2', 'avx512f', 'avx512_vnni'}
  assert environment.cpu_instruction_set('', avx512, 'x86_64') == 'AVX512_VNNI'
  assert environment.cpu_instruction_set('--xla_cpu_max_isa=avx2', avx512, 'x86_64') == 'AVX2'
  assert environment.cpu_instruction_set('--xla_cpu_max_isa=AMX', {'sse4_2', 'avx'}, 'x86_64') == 'AVX'
  assert environment.cpu_instruction_set('--xla_cpu_max_isa=AVX2 --xla_cpu_max_isa=SSE4_2', avx512,
                                         'x86_64') == 'SSE4_2'                     # the last flag counts
  assert environment.cpu_instruction_set('', {'sse4_2', 'avx2'}, 'x86_64') == 'SSE4_2'   # AVX2 needs AVX
  assert environment.cpu_instruction_set('', set(), 'aarch64') == 'NEON'


def _isa_other_than(level: str) -> str | None:
  """An instruction-set cap that changes XLA's code here from `level`, or None on a CPU without AVX."""
  if level == 'SSE4_2':
    return 'AVX' if environment.cpu_instruction_set('--xla_cpu_max_isa=AVX') == 'AVX' else None
  return 'SSE4_2'


@pytest.mark.numerics
@pytest.mark.skipif(not environment.cpu_instruction_set().startswith(('SSE', 'AVX', 'AMX')),
                    reason='needs an x86-64 CPU')
def test_a_run_continued_on_another_instruction_set_warns_and_finishes(tiny_data_dir, tmp_path, monkeypatch):
  """Started as the suite is compiled, killed mid-fold, continued with XLA capped at another instruction set:
  the continuation prints the warning once, names the two instruction sets, finishes, and environment.json
  keeps both."""
  workdir = tmp_path / 'run'
  first = _job(tiny_data_dir, workdir, 'step:2')
  out, _ = first.communicate(timeout=300)
  assert first.returncode == -signal.SIGKILL, out[-3000:]
  started = json.loads((workdir / 'environment.json').read_text())
  other = _isa_other_than(started['cpu_instruction_set'])
  if other is None:
    pytest.skip('this CPU has no second instruction set to compile for')
  monkeypatch.setenv('XLA_FLAGS', f"{os.environ['XLA_FLAGS']} --xla_cpu_max_isa={other}")
  proc = _job(tiny_data_dir, workdir)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out[-3000:]
  assert out.count('not be bit-identical to an uninterrupted run') == 1, out[-3000:]
  assert f"cpu_instruction_set: {started['cpu_instruction_set']!r} → {other!r}" in out
  recorded = json.loads((workdir / 'environment.json').read_text())
  assert recorded['resumed_in'][0]['cpu_instruction_set'] == other
  assert {k: v for k, v in recorded.items() if k != 'resumed_in'} == started
  assert json.loads((workdir / 'results.json').read_text())['aggregate']['complete']
