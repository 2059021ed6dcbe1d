"""A tiny LOSO run end to end: results.json structure, honest aggregation, checkpoints, TensorBoard."""

import glob
import json
import os

import numpy as np
import pytest

from conftest import assert_predictions_are_argmax, resume_job_config
from fdp_jax import environment, experiment, metrics, run_results
from fdp_jax.cv import checkpoints


@pytest.fixture(scope='module')
def tiny_run(tiny_data_dir, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('run'))
  config = resume_job_config(tiny_data_dir)
  config.cv.subjects = 's00,s02'
  results = experiment.main(config, workdir)
  return config, workdir, results


@pytest.mark.numerics
def test_results_json_structure(tiny_run):
  config, workdir, results = tiny_run
  with open(os.path.join(workdir, 'results.json')) as f:
    on_disk = json.load(f)
  assert on_disk == json.loads(json.dumps(results))
  assert on_disk['selection'] == 'end_of_schedule'
  assert on_disk['dataset']['class_names'] == ['happiness', 'surprise', 'disgust', 'repression', 'others']
  assert [f['subject'] for f in on_disk['folds']] == ['s00', 's02']
  for fold in on_disk['folds']:
    n = fold['num_test']
    assert n == 10 and len(fold['sample_ids']) == len(fold['labels']) == len(fold['predictions']) == n
    assert all(sid.startswith(fold['subject'] + '/') for sid in fold['sample_ids'])
    assert fold['num_train'] == 30 and fold['steps'] == config.train.num_steps
    np.testing.assert_allclose(np.sum(fold['probabilities'], axis=1), 1.0, atol=1e-5)
    assert_predictions_are_argmax(fold['predictions'], fold['probabilities'])
    cm = metrics.confusion_matrix(fold['labels'], fold['predictions'], 5)
    assert fold['confusion_matrix'] == cm.tolist()
    assert fold['metrics'] == metrics.scores_from_confusion(cm)
  agg = on_disk['aggregate']
  labels = sum((f['labels'] for f in on_disk['folds']), [])
  preds = sum((f['predictions'] for f in on_disk['folds']), [])
  pooled = metrics.scores_from_confusion(metrics.confusion_matrix(labels, preds, 5))
  for k in ('accuracy', 'uf1', 'uar', 'wf1', 'war'):
    assert agg[k] == pytest.approx(pooled[k])
  assert agg['num_samples'] == 20 and agg['num_folds'] == 2


def test_optimistic_best_test_selection_is_reported_beside_not_instead(tiny_run):
  config, _, results = tiny_run
  assert results['selection'] == 'end_of_schedule'
  optimistic = results['optimistic_best_test']
  assert 'OPTIMISTIC' in optimistic['warning'] and optimistic['every_steps'] == 2
  for honest, best in zip(results['folds'], optimistic['folds']):
    assert best['subject'] == honest['subject'] and best['step'] in (2, 4, 6)
    # the final step is among the candidates, so the chosen one is never worse on the test set
    assert best['accuracy'] >= honest['metrics']['accuracy']
    assert best['accuracy'] == pytest.approx(np.trace(best['confusion_matrix']) / honest['num_test'])
  assert optimistic['aggregate']['accuracy'] >= results['aggregate']['accuracy']
  assert 'OPTIMISTIC' in run_results.markdown_table(results)


def test_run_directory_has_checkpoints_tensorboard_and_timing(tiny_run):
  config, workdir, _ = tiny_run
  for subject in ('s00', 's02'):
    assert checkpoints.fold_manager(workdir, subject).latest_step() == config.train.num_steps
    events = glob.glob(os.path.join(workdir, 'tensorboard', subject, 'events.out.tfevents.*'))
    assert events and os.path.getsize(events[0]) > 0
  timing = json.load(open(os.path.join(workdir, 'timing.json')))
  # cv.parallel_folds=0 on the suite's two fake CPU devices: one fold per device, both folds in one group
  assert timing['parallel_folds'] == 2 and timing['mesh'] == {'fold': 2, 'data': 1}
  assert [g['subjects'] for g in timing['groups']] == [['s00', 's02']] and timing['groups'][0]['seconds'] > 0
  assert json.load(open(os.path.join(workdir, 'config.json')))['data']['builder_config'] == 'tiny'


def test_markdown_table_lists_every_fold_and_the_aggregate(tiny_run):
  _, _, results = tiny_run
  table = run_results.markdown_table(results)
  assert '| s00 | 10 |' in table and '| s02 | 10 |' in table
  assert f"UF1 {results['aggregate']['uf1']:.4f}" in table and '(selection: end of schedule)' in table


@pytest.mark.numerics
def test_same_seed_gives_identical_results_with_or_without_best_test_scoring(tiny_run, tmp_path):
  """Trained again with the same seed, without scoring the test set every 2 steps (cv.best_test_every_steps
  = 0): the honest end-of-schedule results are the same to the last digit, only the optimistic record is
  gone. Scoring the test set mid-training must touch neither the training nor the final model. (The same
  config twice, optimistic record included, is compared in test_resume and test_fold_parallel.)"""
  config, workdir, results = tiny_run
  config = config.copy_and_resolve_references()
  config.cv.best_test_every_steps = 0
  again = experiment.main(config, str(tmp_path))
  with_best = json.load(open(os.path.join(workdir, 'results.json')))
  without = json.load(open(tmp_path / 'results.json'))
  assert with_best.pop('optimistic_best_test')['folds'] and 'optimistic_best_test' not in without
  assert without == with_best                  # predictions, probabilities, metrics, aggregate
  assert again == {k: v for k, v in results.items() if k != 'optimistic_best_test'}
  # The training curves too: the scoring between steps left every training step as it was.
  assert (open(tmp_path / 'train_history.json').read()
          == open(os.path.join(workdir, 'train_history.json')).read())


def test_run_records_its_seed_and_software_versions(tiny_run):
  import importlib.metadata
  config, workdir, _ = tiny_run
  env = json.load(open(os.path.join(workdir, 'environment.json')))
  assert env['seed'] == config.seed
  assert env['packages']['jax'] == importlib.metadata.version('jax')
  assert env['packages']['flax'] == importlib.metadata.version('flax')
  assert env['platform'] == 'cpu' and env['device_count'] == 2 and env['process_count'] == 1
  # what XLA compiled for: the suite's flags, and this CPU's instruction set under any --xla_cpu_max_isa
  assert env['xla_flags'] == os.environ['XLA_FLAGS'] and '--xla_force_host_platform_device_count=2' in env['xla_flags']
  assert env['cpu_instruction_set'] == environment.cpu_instruction_set()
  assert env['cpu_instruction_set'] in [name for name, _ in environment.X86_LEVELS] + ['NEON']
