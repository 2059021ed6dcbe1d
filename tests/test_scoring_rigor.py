"""What the scores claim: per-corpus slices of a composite, `complete` only for the whole protocol, the
test-split normalisation stated, and prediction normalised by the training split's statistics."""

import json
import os

import numpy as np
import pytest

from conftest import tiny_config
from fdp_jax import clip_prediction, data_sources, experiment, input_pipeline, metrics, run_results, scoring
from fdp_jax.cv.folds import loso_folds

CLASSES = ('negative', 'positive', 'surprise')


def fold(subject, ids, labels, predictions):
  cm = metrics.confusion_matrix(labels, predictions, len(CLASSES))
  return {'subject': subject, 'status': 'done', 'num_test': len(ids), 'sample_ids': list(ids),
          'labels': list(labels), 'predictions': list(predictions), 'confusion_matrix': cm.tolist(),
          'metrics': metrics.scores_from_confusion(cm)}


COMPOSITE = [
    fold('casme2:sub01', ['casme2:a1', 'casme2:a2', 'casme2:a3', 'casme2:a4'], [0, 0, 1, 2], [0, 1, 1, 2]),
    fold('samm:006', ['samm:b1', 'samm:b2', 'samm:b3'], [0, 1, 1], [0, 0, 1]),
    fold('smic:s1', ['smic:c1', 'smic:c2', 'smic:c3'], [2, 2, 0], [2, 0, 0]),
]


def test_composite_scores_each_corpus_slice_of_the_pooled_predictions():
  """By hand. casme2: F1 2/3, 2/3, 1 → UF1 7/9; recalls 1/2, 1, 1 → UAR 5/6. samm: F1 2/3, 2/3 (surprise
  neither labelled nor predicted) → UF1 2/3; recalls 1, 1/2 → UAR 3/4. smic likewise 2/3 and 3/4. Pooled:
  confusion [[3,1,0],[1,2,0],[1,0,2]]: F1 6/9, 4/6, 4/5 → UF1 0.7111; recalls 3/4, 2/3, 2/3 → UAR 0.6944."""
  a = scoring.aggregate(COMPOSITE, CLASSES, [f['subject'] for f in COMPOSITE])
  assert a['confusion_matrix'] == [[3, 1, 0], [1, 2, 0], [1, 0, 2]]
  assert a['uf1'] == pytest.approx((2 / 3 + 2 / 3 + 0.8) / 3) and a['uar'] == pytest.approx((0.75 + 4 / 3) / 3)
  want = {'casme2': (7 / 9, 5 / 6, 4), 'samm': (2 / 3, 0.75, 3), 'smic': (2 / 3, 0.75, 3)}
  assert sorted(a['per_corpus']) == sorted(want)
  for corpus, (uf1, uar, n) in want.items():
    c = a['per_corpus'][corpus]
    assert (c['uf1'], c['uar'], c['num_samples']) == (pytest.approx(uf1), pytest.approx(uar), n), corpus
  # A single corpus has no slices to report.
  assert 'per_corpus' not in scoring.aggregate(
      [fold('s00', ['s00/c1', 's00/c2'], [0, 1], [0, 0])], CLASSES, ['s00'])


def test_composite_slices_reach_the_table_and_the_report(tmp_path):
  results = {'selection': 'end_of_schedule', 'seed': 0, 'folds': COMPOSITE,
             'test_normalization': {'rule': 'standard', **run_results.TEST_NORMALIZATION['standard']},
             'settings_chosen_on': 'a development corpus',
             'dataset': {'name': 'megc2019', 'config': '3class', 'class_names': list(CLASSES)},
             'aggregate': scoring.aggregate(COMPOSITE, CLASSES, [f['subject'] for f in COMPOSITE])}
  table = run_results.markdown_table(results)
  assert 'casme2 slice of the pooled predictions (4 clips): UF1 0.7778, UAR 0.8333' in table
  assert 'samm slice of the pooled predictions (3 clips): UF1 0.6667, UAR 0.7500' in table
  text = open(run_results.write_report(str(tmp_path), results)).read()
  assert '| **all (pooled)** | 10 | 0.7111 | 0.6944 |' in text
  assert '| smic | 3 | 0.6667 | 0.7500 |' in text
  assert 'Settings chosen on: a development corpus.' in text


def test_complete_means_every_subject_and_no_failed_fold():
  subjects = [f['subject'] for f in COMPOSITE]
  assert scoring.aggregate(COMPOSITE, CLASSES, subjects)['complete']
  partial = scoring.aggregate(COMPOSITE, CLASSES, subjects + ['samm:007'])
  assert not partial['complete'] and partial['subjects_not_evaluated'] == ['samm:007']
  assert partial['subjects_evaluated'] == 3
  failed = COMPOSITE[:2] + [{'subject': 'smic:s1', 'status': 'failed', 'num_test': 3, 'steps': 4}]
  broken = scoring.aggregate(failed, CLASSES, subjects)
  assert not broken['complete'] and broken['failed_folds'] == ['smic:s1'] and not broken['subjects_not_evaluated']


@pytest.fixture(scope='module')
def released_normalization_run(tiny_data_dir, tmp_path_factory):
  """One fold (s01) of the tiny corpus under the released per-split normalisation: a partial, transductive
  run."""
  workdir = str(tmp_path_factory.mktemp('run'))
  config = tiny_config(tiny_data_dir, num_steps=2)
  config.data.normalization = 'released_per_split'
  config.cv.subjects = 's01'
  experiment.main(config, workdir)
  with open(os.path.join(workdir, 'results.json')) as f:
    return workdir, config, json.load(f)


def test_a_partial_transductive_run_says_so(released_normalization_run):
  workdir, _, results = released_normalization_run
  a = results['aggregate']
  assert not a['complete'] and a['subjects_not_evaluated'] == ['s00', 's02', 's03']
  assert results['test_normalization']['transductive'] and results['test_normalization']['rule'] == (
      'released_per_split')
  label = 'end of schedule, test split normalised by its own statistics, as released'
  assert run_results.selection_label(results) == label
  text = open(os.path.join(workdir, 'report.md')).read()
  assert label in text and 'PARTIAL RUN' in text and 'TRANSDUCTIVE' in text
  assert results['settings_chosen_on'].startswith('synthetic_me/dev')


def test_prediction_uses_the_training_split_statistics(released_normalization_run):
  workdir, config, results = released_normalization_run
  source, index, _ = data_sources.load_corpus(config.data)
  (held_out,) = [f for f in loso_folds(index.subjects) if f.subject == 's01']
  recorded = results['folds'][0]['train_normalization']
  want = input_pipeline.split_statistics(source, held_out.train_indices, config.data)
  assert (recorded['shift'], recorded['scale']) == pytest.approx(want, rel=1e-6)
  assert clip_prediction.fold_normalization(config.data, results, 's01', workdir) == pytest.approx(want, rel=1e-6)
  test_split = input_pipeline.split_statistics(source, held_out.test_indices, config.data)
  assert not np.allclose(want, test_split)        # the two would be confused silently otherwise
  del results['folds'][0]['train_normalization']   # a run recorded without them: re-score, never guess
  with pytest.raises(clip_prediction.PredictError, match='fdp_jax.tools.rescore'):
    clip_prediction.fold_normalization(config.data, results, 's01', workdir)
  config.data.normalization = 'standard'
  assert clip_prediction.fold_normalization(config.data, results, 's01', workdir) is None
