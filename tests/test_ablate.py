"""benchmarks/ablate.py: the table it writes from finished runs, the locks that let sweeps share runs, and
variants that still name settings the config has (no training here: runs are written as launch.py leaves them)."""

import json
import os
import subprocess
import sys

import pytest

from benchmarks import ablate
from configs import synthetic
from fdp_jax import config_checks


def _args(tmp_path, builder_config='default', folds='all'):
  class Args:
    pass
  args = Args()
  args.output, args.builder_config, args.folds = str(tmp_path), builder_config, folds
  return args


def _finished_run(args, variant, seed, uf1, uar, history, wall_s=None, resumed_group=None):
  workdir = ablate.run_dir(args, variant, seed)
  os.makedirs(workdir)
  groups = [{'subjects': [fold], 'seconds': 1.0} for fold in history]
  if resumed_group is not None:
    groups[0].update(resumed_group)
  with open(os.path.join(workdir, 'timing.json'), 'w') as f:
    json.dump({'parallel_folds': 1, 'groups': groups}, f)
  with open(os.path.join(workdir, 'results.json'), 'w') as f:
    json.dump({'aggregate': {'uf1': uf1, 'uar': uar, 'num_folds': len(history)}}, f)
  with open(os.path.join(workdir, 'train_history.json'), 'w') as f:
    json.dump(history, f)
  if wall_s is not None:
    with open(os.path.join(workdir, 'ablation_wall_s.txt'), 'w') as f:
      f.write(f'{wall_s}\n')


def test_table_is_mean_and_sample_sd_over_finished_seeds(tmp_path):
  args = _args(tmp_path)
  with_scorer = {'s00': {'rank_tau': [0.0, 0.1], 'di_unexplained': [1.2, 1.0]},
                 's01': {'rank_tau': [0.0, 0.3], 'di_unexplained': [1.2, 0.8]}}
  _finished_run(args, 'full', 0, 0.80, 0.84, with_scorer, wall_s=300)
  _finished_run(args, 'full', 1, 0.90, 0.86, with_scorer, wall_s=420)
  no_scorer = {'s00': {'di_unexplained': [1.1]}, 's01': {'di_unexplained': [1.3]}}
  _finished_run(args, 'arp', 0, 0.70, 0.75, no_scorer)
  os.makedirs(ablate.run_dir(args, 'arp', 1))          # an interrupted run: no results.json, left out
  # Runs that continued earlier work: their last launch's wall time is not the run's.
  _finished_run(args, 'no_rank_loss', 0, 0.60, 0.70, with_scorer, wall_s=50, resumed_group={'resumed_from_step': 60})
  _finished_run(args, 'no_rank_loss', 2, 0.70, 0.70, with_scorer, wall_s=40,
                resumed_group={'seconds': 0.0, 'finished_earlier': True})
  rows = ablate.summarise(args, ['full', 'arp', 'no_rank_loss', 'static'], [0, 1, 2])

  assert list(rows) == ['full', 'arp', 'no_rank_loss']  # a variant with no finished seed has no row
  full, arp = rows['full'], rows['arp']
  assert full['seeds'] == [0, 1] and arp['seeds'] == [0]
  assert full['uf1'] == pytest.approx(0.85) and full['uf1_sd'] == pytest.approx(0.0707107, abs=1e-6)
  assert full['uar'] == pytest.approx(0.85) and full['uar_sd'] == pytest.approx(0.0141421, abs=1e-6)
  assert full['rank_tau'] == pytest.approx(0.2)        # last interval, mean over folds, then over seeds
  assert full['di_unexplained'] == pytest.approx(0.9)
  assert full['wall_s'] == pytest.approx(360)
  assert arp['uf1_sd'] == 0.0 and arp['rank_tau'] is None and arp['wall_s'] is None
  # Welch's t-test, 2 + 2 seeds: t = 0.2 / √(0.005/2 + 0.005/2) = 2√2 on 2 degrees of freedom, whose CDF is
  # ½ + t / (2√(2 + t²)): p = 1 − 2√2 / √10.
  assert rows['no_rank_loss']['uf1_p'] == pytest.approx(1 - 8 ** 0.5 / 10 ** 0.5, rel=1e-6)
  assert full['uf1_p'] is None and arp['uf1_p'] is None  # itself; one seed has no spread to test against

  table = ablate.markdown(args, rows, [0, 1, 2])
  lines = {line.split('|')[1].strip(): line for line in table.splitlines() if line.startswith('| `')}
  assert lines['`full`'] == '| `full` | 0.850 ± 0.071 | 0.850 ± 0.014 | 0.800, 0.900 | 0.20 | 0.90 |  |  | 6.0 |'
  assert lines['`arp`'] == '| `arp` | 0.700 ± 0.000 | 0.750 ± 0.000 | 0.700 | – | 1.20 | -0.150 |  | – |'
  assert lines['`no_rank_loss`'].endswith('| -0.200 | 0.11 | – |')
  assert 'synthetic_me/default' in table and 'seeds [0, 1, 2]' in table


def test_a_live_lock_is_respected_and_a_stale_one_taken(tmp_path):
  args = _args(tmp_path)
  workdir = ablate.run_dir(args, 'full', 0)
  assert ablate.claim(workdir)
  assert open(workdir + '.lock').read() == str(os.getpid())
  assert not ablate.claim(workdir)                     # this (live) process holds it
  assert ablate.train(args, 'full', 0, []) == 'elsewhere'

  finished = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True,
                            text=True, check=True)
  with open(workdir + '.lock', 'w') as f:              # a sweep that was stopped left its PID behind
    f.write(finished.stdout.strip())
  assert ablate.claim(workdir)
  assert open(workdir + '.lock').read() == str(os.getpid())


def test_a_finished_run_is_read_back_not_rerun(tmp_path):
  args = _args(tmp_path)
  _finished_run(args, 'static', 2, 0.2, 0.2, {'s00': {}})
  assert ablate.train(args, 'static', 2, []) is None
  assert not os.path.exists(ablate.run_dir(args, 'static', 2) + '.lock')


@pytest.mark.parametrize('variant', list(ablate.VARIANTS))
def test_each_variant_changes_a_setting_the_config_has(variant):
  _, argument, overrides = ablate.VARIANTS[variant]
  config = synthetic.get_config(argument.lstrip(':') or None)
  base = synthetic.get_config()
  for override in overrides:
    key, value = override.removeprefix('--config.').split('=')
    section, name = key.split('.')
    assert name in config[section], override
    config[section][name] = type(config[section][name])(value)
    assert config[section][name] != base[section][name], override
  config_checks.check_before_work(config)
  assert overrides or argument or variant == 'full'


def fake_launch(monkeypatch) -> list[list[str]]:
  """Replaces launch.py by a stand-in that records its command line and creates the run directory."""
  commands = []

  def run(cmd, **kwargs):
    commands.append(cmd)
    os.makedirs(next(a for a in cmd if a.startswith('--workdir='))[len('--workdir='):], exist_ok=True)
    return subprocess.CompletedProcess(cmd, 0, '', '')
  monkeypatch.setattr(subprocess, 'run', run)
  return commands


def test_a_variant_is_one_launch_py_run_with_its_overrides_then_the_extra_arguments(tmp_path, monkeypatch):
  commands = fake_launch(monkeypatch)
  args = _args(tmp_path, folds='s00,s03')
  assert isinstance(ablate.train(args, 'no_rank_loss', 1, ['--config.train.num_steps=20']), float)
  workdir = ablate.run_dir(args, 'no_rank_loss', 1)
  assert commands == [[sys.executable, os.path.join(ablate.REPO, 'launch.py'), '--config=configs/synthetic.py',
                       '--config.progress_bar=False', '--config.seed=1', '--config.data.builder_config=default',
                       f'--workdir={workdir}', '--config.loss.rank=0.0', '--config.train.num_steps=20',
                       '--config.cv.subjects=s00,s03']]
  assert os.path.exists(os.path.join(workdir, 'ablation_wall_s.txt')) and not os.path.exists(workdir + '.lock')
