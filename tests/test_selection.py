"""`cv.selection='inner_loso'`: settings chosen per outer fold by LOSO over its training subjects only."""

import json
import os

import numpy as np
import pytest

from conftest import tiny_config
from fdp_jax import config_checks, experiment, metrics, run_results, scoring
from fdp_jax.tools import rescore
from fdp_jax.cv import selection
from fdp_jax.cv.folds import loso_folds

SUBJECTS = ['s00', 's00', 's01', 's02', 's02', 's02', 's03', 's01']


def test_inner_folds_never_see_the_outer_held_out_subject():
  outer = loso_folds(SUBJECTS)
  inner = selection.inner_folds(outer[:2], SUBJECTS)
  subjects = np.asarray(SUBJECTS)
  assert [f.subject for f in inner] == ['s00~s01', 's00~s02', 's00~s03', 's01~s00', 's01~s02', 's01~s03']
  for f in inner:
    held_outer, held_inner = f.subject.split('~')
    assert held_outer not in set(subjects[f.train_indices]) | set(subjects[f.test_indices])
    assert set(subjects[f.test_indices]) == {held_inner} and held_inner not in set(subjects[f.train_indices])
    assert len(f.train_indices) + len(f.test_indices) == np.sum(subjects != held_outer)
  numbers = [f.number for f in outer + inner]
  assert len(set(numbers)) == len(numbers)          # no two folds share a seed


def entry(subject, labels, predictions, status='done'):
  cm = metrics.confusion_matrix(labels, predictions, 2)
  return {'subject': subject, 'status': status, 'num_test': len(labels), 'confusion_matrix': cm.tolist()}


def test_choice_is_the_first_best_inner_uf1_and_skips_failed_candidates():
  outer = loso_folds(['a', 'b', 'c'])[:2]
  good, bad = ([0, 1], [0, 1]), ([0, 1], [0, 0])
  inner = [
      {'a~b': entry('a~b', *bad), 'a~c': entry('a~c', *good), 'b~a': entry('b~a', *good),
       'b~c': entry('b~c', *good)},
      {'a~b': entry('a~b', *good), 'a~c': entry('a~c', *good), 'b~a': entry('b~a', *good),
       'b~c': entry('b~c', *good)},
      {'a~b': entry('a~b', *good), 'a~c': {'subject': 'a~c', 'status': 'failed'}, 'b~a': entry('b~a', *good),
       'b~c': entry('b~c', *good)},
  ]
  choice = selection.choose(outer, inner, 2)
  # a: candidate 0 pools [[2,0],[1,1]] (UF1 (0.8 + 2/3)/2), candidate 1 is perfect, candidate 2 failed a fold.
  assert choice['a']['inner_uf1'] == [pytest.approx((0.8 + 2 / 3) / 2), 1.0, None]
  assert choice['a']['chosen'] == 1
  assert choice['b'] == {'inner_uf1': [1.0, 1.0, 1.0], 'chosen': 0}    # a tie keeps the first


def test_grid_errors_are_found_before_any_work():
  from configs import synthetic
  config = synthetic.get_config()
  config.cv.selection = 'inner_loso'
  with pytest.raises(config_checks.ConfigError, match='needs candidates'):
    experiment.check_run(config)
  config.cv.selection_grid = 'train.learnig_rate=1e-3'
  with pytest.raises(config_checks.ConfigError, match="names 'train.learnig_rate'"):
    experiment.check_run(config)
  config.cv.selection_grid = 'train.num_steps=0'
  with pytest.raises(config_checks.ConfigError, match='num_steps'):
    experiment.check_run(config)
  config.cv.selection = 'none'
  config.cv.selection_grid = 'train.num_steps=4'
  with pytest.raises(config_checks.ConfigError, match='inner_loso'):
    experiment.check_run(config)


@pytest.fixture(scope='module')
def inner_loso_run(tiny_data_dir, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('run'))
  config = tiny_config(tiny_data_dir, num_steps=2)
  config.cv.subjects = 's01'
  config.cv.parallel_folds = 2          # inner folds two at a time, as outer ones would be
  config.cv.selection = 'inner_loso'
  config.cv.selection_grid = 'train.learning_rate=0.05;train.warmup_steps=0'
  results = experiment.main(config, workdir)
  return workdir, config, results


def test_inner_loso_run_records_and_follows_each_folds_choice(inner_loso_run):
  workdir, config, results = inner_loso_run
  assert results['settings_selection']['rule'] == 'inner_loso'
  assert results['settings_selection']['candidates'] == [{}, {'train.learning_rate': 0.05,
                                                              'train.warmup_steps': 0}]
  with open(os.path.join(workdir, 'train_history.json')) as f:
    history = json.load(f)
  for fold in results['folds']:
    s = fold['inner_selection']
    # Each candidate's inner UF1 is the pooled score of its inner folds, read back from their progress files.
    for c, uf1 in enumerate(s['inner_uf1']):
      names = sorted(os.listdir(os.path.join(workdir, 'selection', str(c), 'progress')))
      mine = [n for n in names if n.startswith(fold['subject'] + '~')]
      assert [n.split('~')[1] for n in mine] == [f'{x}.json' for x in ('s00', 's01', 's02', 's03')
                                                 if x != fold['subject']]
      entries = []
      for n in mine:
        with open(os.path.join(workdir, 'selection', str(c), 'progress', n)) as f:
          entries.append(json.load(f)['result'])
      assert uf1 == pytest.approx(scoring.aggregate(entries, ['0', '1', '2', '3', '4'])['uf1'])
    assert s['chosen'] == int(np.argmax(s['inner_uf1']))
    assert s['overrides'] == results['settings_selection']['candidates'][s['chosen']]
    # The outer fold trained with the chosen candidate: its logged learning rates say which (peak 0.05 against
    # the config's 2e-3).
    peak = max(history[fold['subject']]['learning_rate'])
    assert (peak > 0.02) == (s['chosen'] == 1), peak
  assert 'Settings chosen per fold by LOSO over its training subjects' in run_results.markdown_table(results)


@pytest.mark.numerics
def test_inner_loso_run_rescores_identically(inner_loso_run):
  workdir, _, results = inner_loso_run
  again = rescore.evaluate_run(workdir)
  for a, b in zip(results['folds'], again['folds']):
    assert a['predictions'] == b['predictions'] and a['inner_selection'] == b['inner_selection']
    np.testing.assert_allclose(a['probabilities'], b['probabilities'], atol=1e-5)
