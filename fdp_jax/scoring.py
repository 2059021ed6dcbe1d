"""The run's results: each fold's results.json entry, the aggregate of the summed confusion matrix, and the
printed table. Scores come from confusion matrices (`fdp_jax.metrics`), never from averaged fold scores."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from fdp_jax import data_sources, metrics

if TYPE_CHECKING:
  from fdp_jax.cv.folds import Fold


def fold_result(fold: Fold, out: dict, index: data_sources.CorpusIndex, steps_trained: int) -> dict:
  """A fold's entry of results.json from its held-out predictions (`predict_group`)."""
  num_classes = len(index.class_names)
  cm = metrics.confusion_matrix(out['label'], out['prediction'], num_classes)
  return {
      'subject': fold.subject,
      'status': 'done',
      'num_train': int(len(fold.train_indices)),
      'num_test': int(len(fold.test_indices)),
      'steps': int(steps_trained),
      'sample_ids': [index.sample_ids[i] for i in out['index']],
      'labels': out['label'].tolist(),
      'predictions': out['prediction'].tolist(),
      'probabilities': np.round(out['probabilities'].astype(np.float64), 6).tolist(),
      'confusion_matrix': cm.tolist(),
      'metrics': {**metrics.scores_from_confusion(cm), **_auxiliary_metrics(out)},
  }


def failed_fold_result(fold: Fold, failure: dict) -> dict:
  """The results.json entry of a fold stopped by the guard: listed, never silently left out."""
  return {'subject': fold.subject, 'status': 'failed', 'num_train': int(len(fold.train_indices)),
          'num_test': int(len(fold.test_indices)), 'steps': int(failure['step']),
          'last_good_step': int(failure['last_good_step']), 'error': failure['message']}


def _auxiliary_metrics(out: dict) -> dict:
  """MOL's flow end-point error and landmark NME, means over the fold's clips (absent for FDP)."""
  return {key: float(np.mean(out[key])) for key in ('flow_epe', 'landmark_nme') if key in out}


def aggregate(fold_results: Sequence[dict], class_names: Sequence[str]) -> dict:
  """Scores of the confusion matrix summed over folds (never an average of per-fold scores); MOL's flow
  EPE and landmark NME as means over all test clips (each fold's mean weighted by its clip count).

  Failed folds (`status` 'failed') have no predictions: the scores cover the other folds, and
  `failed_folds` names them (`complete` is False) so that an incomplete aggregate is never mistaken for
  the whole protocol's."""
  failed = [f['subject'] for f in fold_results if f.get('status') == 'failed']
  fold_results = [f for f in fold_results if f.get('status') != 'failed']
  if not fold_results:
    return {'num_folds': 0, 'num_samples': 0, 'complete': False, 'failed_folds': failed}
  cm = np.sum([np.asarray(f['confusion_matrix']) for f in fold_results], axis=0)
  result = {**metrics.scores_from_confusion(cm), 'num_folds': len(fold_results),
            'complete': not failed, 'failed_folds': failed,
            'confusion_matrix': cm.tolist(), 'per_class': metrics.per_class_scores(cm, class_names)}
  for key in ('flow_epe', 'landmark_nme'):
    if fold_results and all(key in f.get('metrics', {}) for f in fold_results):
      counts = np.array([f['num_test'] for f in fold_results], np.float64)
      result[key] = float(np.dot([f['metrics'][key] for f in fold_results], counts) / counts.sum())
  return result


def markdown_table(results: dict) -> str:
  rows = ['| held-out subject | test clips | accuracy | UF1 | UAR |', '|---|---:|---:|---:|---:|']
  for f in results['folds']:
    if f.get('status') == 'failed':
      rows.append(f"| {f['subject']} | {f['num_test']} | FAILED at step {f['steps']} | – | – |")
      continue
    m = f['metrics']
    rows.append(f"| {f['subject']} | {f['num_test']} | {m['accuracy']:.3f} | {m['uf1']:.3f} | {m['uar']:.3f} |")
  a = results['aggregate']
  if not a['num_folds']:
    return '\n'.join(rows + ['', f"NO FOLD COMPLETED: {', '.join(a['failed_folds'])} failed (see results.json)."])
  rows.append(f"| **all ({a['num_folds']} folds)** | {a['num_samples']} | **{a['accuracy']:.3f}** | "
              f"**{a['uf1']:.3f}** | **{a['uar']:.3f}** |")
  rows.append('')
  rows.append(f"Aggregate over the summed confusion matrix: UF1 {a['uf1']:.4f}, UAR {a['uar']:.4f}, "
              f"WF1 {a['wf1']:.4f}, WAR {a['war']:.4f}, accuracy {a['accuracy']:.4f} "
              f"(selection: {results['selection']}).")
  if a.get('failed_folds'):
    rows.append(f"INCOMPLETE: fold(s) {', '.join(a['failed_folds'])} failed (non-finite loss, see results.json); "
                f"the scores above cover the other {a['num_folds']} folds only.")
  if 'flow_epe' in a:
    rows.append(f"MOL auxiliary tasks over all test clips: flow end-point error {a['flow_epe']:.3f} px, "
                f"landmark NME {a['landmark_nme']:.4f} (mean error / inter-pupil distance).")
  if 'optimistic_best_test' in results:
    o = results['optimistic_best_test']['aggregate']
    rows.append(f"OPTIMISTIC, not an estimate (the released rule: each fold's best step chosen on its own "
                f"test set): UF1 {o['uf1']:.4f}, UAR {o['uar']:.4f}, accuracy {o['accuracy']:.4f}.")
  return '\n'.join(rows)


def results_dict(config, info, index: data_sources.CorpusIndex, fold_results: list[dict],
                 optimistic: dict | None = None) -> dict:
  """results.json: the run's folds and the aggregate of their summed confusion matrix; `optimistic` is
  the released best-test-step record ({'every_steps', 'folds'}), reported beside and labelled."""
  results = {
      'selection': 'end_of_schedule',
      'seed': int(config.seed),
      'dataset': {'name': info.name, 'config': info.config_name, 'version': str(info.version),
                  'num_samples': len(index), 'num_subjects': len(set(index.subjects)),
                  'class_names': list(index.class_names)},
      'folds': fold_results,
      'aggregate': aggregate(fold_results, index.class_names),
  }
  if optimistic and optimistic['folds']:
    results['optimistic_best_test'] = {
        'warning': 'OPTIMISTIC: each fold keeps the step with the best accuracy on its own test set (the '
                   'released selection rule); this is not an estimate of performance on unseen subjects. '
                   'The honest score is `aggregate`.',
        'every_steps': optimistic['every_steps'],
        'folds': optimistic['folds'],
        'aggregate': aggregate(optimistic['folds'], index.class_names),
    }
  return results
