"""results.json has one writer: sections other parts add are kept in place and survive re-scoring, no other module
writes the file, and no module but `fdp_jax.rundir` spells a run directory's file names."""

import ast
import glob
import json
import os
import types

import ml_collections
import numpy as np

from fdp_jax import data_sources, metrics, run_results, rundir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _fold(subject, labels, predictions):
  cm = metrics.confusion_matrix(labels, predictions, 3)
  return {'subject': subject, 'status': 'done', 'num_test': len(labels), 'labels': labels,
          'predictions': predictions, 'confusion_matrix': cm.tolist(), 'metrics': metrics.scores_from_confusion(cm)}


def _recognition():
  config = ml_collections.ConfigDict({'seed': 3, 'settings_chosen_on': '', 'data': {'normalization': 'standard'},
                                      'cv': {'selection': 'none'}})
  info = types.SimpleNamespace(name='synthetic_me', config_name='tiny', version='1.0.0')
  index = data_sources.CorpusIndex(('a', 'b', 'c', 'd'), ('s0', 's0', 's1', 's1'), np.array([0, 1, 2, 0]),
                                   np.full(4, 8), np.full(4, 5), ('x', 'y', 'z'))
  folds = [_fold('s0', [0, 1], [0, 0]), _fold('s1', [2, 0], [2, 0])]
  return run_results.recognition(config, info, index, folds)


def test_recognition_results_keep_their_keys_and_order():
  results = _recognition()
  assert list(results) == ['selection', 'test_normalization', 'settings_chosen_on', 'settings_selection', 'seed',
                           'dataset', 'folds', 'aggregate']
  assert results['settings_chosen_on'] == run_results.NOT_STATED and results['aggregate']['complete']
  assert results['aggregate']['confusion_matrix'] == [[2, 0, 0], [1, 0, 0], [0, 0, 1]]


def test_extend_appends_sections_and_writes_what_it_returns(tmp_path):
  results = _recognition()
  extended = run_results.extend(str(tmp_path), results, {'ablation': {'workdir': rundir.ABLATION_DIR}})
  assert 'ablation' not in results                         # a copy: the caller's dict is left as it was
  assert list(extended)[-1] == 'ablation'
  on_disk = rundir.read_json(str(tmp_path), rundir.RESULTS)
  assert on_disk == extended and list(on_disk) == list(extended)
  # Another process of a multi-process job gets the same dict and writes nothing.
  other = tmp_path / 'other'
  assert run_results.extend(str(other), results, {'ablation': {}}, primary=False) == dict(results, ablation={})
  assert not other.exists()


def test_rescoring_keeps_every_section_another_part_added(tmp_path):
  sections = {'ablation': {'workdir': rundir.ABLATION_DIR, 'aggregate': {'uf1': 0.5}},
              'mol_references': {'aggregate': {'zero_flow': 1.0}}, 'mol_examples': ['mol_examples/s0_0.png']}
  previous = dict(_recognition(), **sections, unknown_key=1)
  assert set(run_results.ADDED_SECTIONS) == set(sections)
  rescored = run_results.extend(str(tmp_path), _recognition(), run_results.added_sections(previous))
  for key, value in sections.items():
    assert rescored[key] == value, key
  assert 'unknown_key' not in rescored
  assert list(rescored)[-3:] == list(run_results.ADDED_SECTIONS)
  assert json.loads((tmp_path / rundir.RESULTS).read_text()) == rescored


def test_spotting_results_keep_their_keys_and_order():
  config = ml_collections.ConfigDict({'seed': 0, 'settings_chosen_on': ''})
  info = types.SimpleNamespace(name='synthetic_long', config_name='tiny', version='1.0.0')
  videos = [types.SimpleNamespace(subject='s0'), types.SimpleNamespace(subject='s1')]
  folds = [types.SimpleNamespace(subject='s0'), types.SimpleNamespace(subject='s1')]
  fold_results = {'s0': {'status': 'done', 'steps': 4, 'metrics': {}}, 's1': {'status': 'failed', 'steps': 2}}
  scores = {'spotting': {}, 'analysis': {}, 'strs': 0.0, 'baseline': {}, 'videos': []}
  recognizer = types.SimpleNamespace(workdir='rec', class_names=('a', 'b'),
                                     config=ml_collections.ConfigDict({'model': {'name': 'fdp'}}))
  results = run_results.spotting(config, info, videos, folds, fold_results, {'s0': {'baseline_p': 0.5}}, scores,
                                 recognizer)
  assert list(results) == ['task', 'dataset', 'seed', 'settings_chosen_on', 'spotting', 'analysis', 'strs',
                           'baseline', 'recognizer', 'num_folds', 'failed_folds', 'subjects_not_evaluated',
                           'complete', 'folds', 'videos']
  assert results['failed_folds'] == ['s1'] and not results['complete'] and results['num_folds'] == 1
  assert results['folds'][0]['baseline_p'] == 0.5 and results['recognizer']['workdir'] == os.path.abspath('rec')


def _sources(*folders):
  return [p for folder in folders for p in glob.glob(os.path.join(REPO, folder, '**', '*.py'), recursive=True)]


def test_only_run_results_writes_results_json():
  writers = []
  for path in _sources('fdp_jax'):
    for node in ast.walk(ast.parse(open(path).read())):
      if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == 'write_json'
          and node.args and "attr='RESULTS'" in ast.dump(node.args[0])):
        writers.append(os.path.relpath(path, REPO))
  assert writers == [os.path.join('fdp_jax', 'run_results.py')]


def test_no_module_but_rundir_spells_a_run_file_name():
  names = [rundir.CONFIG, rundir.ENVIRONMENT, rundir.RESULTS, rundir.TIMING, rundir.HISTORY, rundir.REPORT,
           rundir.CONFUSION_PNG, rundir.CURVES_PNG, rundir.SCORE_CURVES]
  for path in _sources('fdp_jax', 'benchmarks'):
    if path.endswith(os.path.join('fdp_jax', 'rundir.py')):
      continue
    text = open(path).read()
    for name in names:
      assert f"'{name}'" not in text and f'"{name}"' not in text, (os.path.relpath(path, REPO), name)
