"""benchmarks/mol_seeds.py: MOL's evidence table from finished seeds (no training here: run directories are
written as launch.py leaves them)."""

import json
import os
import sys

import pytest

from benchmarks import mol_seeds
from tests.test_ablate import fake_launch


def _args(tmp_path):
  class Args:
    pass
  args = Args()
  args.output, args.builder_config, args.folds = str(tmp_path), 'mol', 'all'
  return args


def _fold(subject, predictions):
  return {'subject': subject, 'status': 'done', 'predictions': predictions}


def _seed(args, seed, uf1, ablation_uf1, mol_predictions, ablation_predictions, with_ablation=True):
  workdir = mol_seeds.run_dir(args, seed)
  os.makedirs(os.path.join(workdir, 'ablation'))
  aggregate = {'uf1': uf1, 'uar': uf1 + 0.05, 'num_folds': 2, 'flow_epe': 0.03, 'flow_epe_moving': 0.5,
               'landmark_nme': 0.05}
  results = {'aggregate': aggregate, 'folds': [_fold(s, p) for s, p in mol_predictions.items()],
             'mol_references': {'aggregate': {'zero_flow': 0.036, 'zero_flow_moving': 0.55, 'tvl1': 0.15,
                                              'tvl1_moving': 0.38, 'farneback': 0.057, 'farneback_moving': 0.11,
                                              'training_mean': 0.052, 'dlib': 0.10}}}
  if with_ablation:
    results['ablation'] = {'workdir': 'ablation', 'aggregate': {'uf1': ablation_uf1}}
    with open(os.path.join(workdir, 'ablation', 'results.json'), 'w') as f:
      json.dump({'aggregate': {'uf1': ablation_uf1, 'uar': ablation_uf1},
                 'folds': [_fold(s, p) for s, p in ablation_predictions.items()]}, f)
  with open(os.path.join(workdir, 'results.json'), 'w') as f:
    json.dump(results, f)


def test_the_evidence_table_reads_finished_seeds_only(tmp_path):
  args = _args(tmp_path)
  _seed(args, 0, 0.60, 0.50, {'s00': [0, 1, 2, 2], 's01': [0, 1, 2, 3]}, {'s00': [0, 1], 's01': [4, 4]})
  _seed(args, 1, 0.70, 0.52, {'s00': [0, 1, 2, 3], 's01': [3, 3, 1, 0]}, {'s00': [0, 1, 2], 's01': [0, 1]})
  _seed(args, 2, 0.90, 0.90, {'s00': [0]}, {'s00': [0]}, with_ablation=False)   # MOL done, ablation not yet
  summary = mol_seeds.summarise(args, [0, 1, 2])
  assert summary['seeds'] == [0, 1]
  assert summary['uf1'] == pytest.approx(0.65) and summary['uf1_sd'] == pytest.approx(0.0707107, abs=1e-6)
  assert summary['ablation_uf1'] == pytest.approx(0.51)
  # the fewest classes any fold predicts, over every seed: MOL's folds 3 and 3, 4 and 3; the ablation's s01 of
  # seed 0 predicts one class only
  assert (summary['fewest_classes'], summary['ablation_fewest_classes']) == (3, 1)
  # Welch: t = 0.14 / √(0.005/2 + 0.0002/2) = 2.746 on ≈ 1.08 degrees of freedom
  assert summary['uf1_p'] == pytest.approx(0.2072, abs=1e-3)
  text = mol_seeds.markdown(summary)
  assert "| MOL | 0.650 ± 0.071 | 0.700 ± 0.071 | 3 |" in text
  assert '| zero flow | 0.0360 | 0.5500 |' in text and '| Farnebäck | 0.0570 | 0.1100 |' in text
  assert '| 1 | 0.700 | 0.750 | 3 | 0.520 |' in text


def test_no_finished_seed_says_so(tmp_path):
  assert mol_seeds.markdown(mol_seeds.summarise(_args(tmp_path), [0])) == 'no finished seed yet\n'


def test_a_seed_is_one_launch_py_run_through_the_sweeps_shared_launcher(tmp_path, monkeypatch):
  commands = fake_launch(monkeypatch)
  args = _args(tmp_path)
  args.folds = 's00,s03'
  assert isinstance(mol_seeds.train(args, 2, ['--config.train.num_steps=12']), float)
  workdir = mol_seeds.run_dir(args, 2)
  repo = os.path.dirname(os.path.dirname(os.path.abspath(mol_seeds.__file__)))
  assert commands == [[sys.executable, os.path.join(repo, 'launch.py'), '--config=configs/mol_synthetic.py:small',
                       '--config.progress_bar=False', '--config.seed=2', '--config.data.builder_config=mol',
                       f'--workdir={workdir}', '--config.train.num_steps=12', '--config.cv.subjects=s00,s03']]
  assert not os.path.exists(workdir + '.lock')
