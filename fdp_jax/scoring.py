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
  """MOL's `metrics.MOL_CLIP_ERRORS`, means over the fold's clips (absent for FDP); the moving-pixel EPE over
  the clips that have moving pixels."""
  return {key: float(np.nanmean(out[key])) for key in metrics.MOL_CLIP_ERRORS if key in out}


def corpus_of(sample_id: str) -> str | None:
  """The corpus tag of a composite's sample id ('casme2:sub01/EP02_01' -> 'casme2'); None without one."""
  return sample_id.split(':', 1)[0] if ':' in sample_id else None


def per_corpus(fold_results: Sequence[dict], num_classes: int) -> dict:
  """A composite's scores on each corpus's slice of the pooled predictions (MEGC 2019: SMIC, CASME II, SAMM),
  each from that slice's own confusion matrix; {} when the sample ids carry fewer than two corpus tags."""
  tagged: dict[str, tuple[list, list]] = {}
  for f in fold_results:
    for sample_id, label, prediction in zip(f['sample_ids'], f['labels'], f['predictions']):
      labels, predictions = tagged.setdefault(corpus_of(sample_id), ([], []))
      labels.append(label)
      predictions.append(prediction)
  if len(tagged) < 2 or None in tagged:
    return {}
  out = {}
  for corpus, (labels, predictions) in sorted(tagged.items()):
    cm = metrics.confusion_matrix(labels, predictions, num_classes)
    out[corpus] = {**metrics.scores_from_confusion(cm), 'confusion_matrix': cm.tolist()}
  return out


def aggregate(fold_results: Sequence[dict], class_names: Sequence[str],
              corpus_subjects: Sequence[str] | None = None) -> dict:
  """Scores of the confusion matrix summed over folds (never an average of per-fold scores); MOL's flow
  EPE and landmark NME as means over all test clips (each fold's mean weighted by its clip count); for a
  composite corpus, the same scores on each corpus's slice (`per_corpus`).

  `complete` means the whole protocol: every subject of the corpus (`corpus_subjects`) held out once and no
  fold failed. Failed folds (`status` 'failed') have no predictions: the scores cover the other folds and
  `failed_folds` names them; subjects a partial run (`cv.subjects`) left out are `subjects_not_evaluated`.
  An incomplete aggregate is never to be mistaken for the whole protocol's."""
  failed = [f['subject'] for f in fold_results if f.get('status') == 'failed']
  evaluated = {f['subject'] for f in fold_results}
  missing = sorted(set(corpus_subjects or ()) - evaluated)
  coverage = {'complete': not failed and not missing, 'failed_folds': failed,
              'subjects_evaluated': len(evaluated), 'subjects_not_evaluated': missing}
  fold_results = [f for f in fold_results if f.get('status') != 'failed']
  if not fold_results:
    return {'num_folds': 0, 'num_samples': 0, **coverage, 'complete': False}
  cm = np.sum([np.asarray(f['confusion_matrix']) for f in fold_results], axis=0)
  result = {**metrics.scores_from_confusion(cm), 'num_folds': len(fold_results), **coverage,
            'confusion_matrix': cm.tolist(), 'per_class': metrics.per_class_scores(cm, class_names)}
  if all('sample_ids' in f for f in fold_results):
    slices = per_corpus(fold_results, len(class_names))
    if slices:
      result['per_corpus'] = slices
  for key in metrics.MOL_CLIP_ERRORS:
    if fold_results and all(key in f.get('metrics', {}) for f in fold_results):
      values = np.array([f['metrics'][key] for f in fold_results], np.float64)
      counts = np.array([f['num_test'] for f in fold_results], np.float64) * np.isfinite(values)
      result[key] = float(np.dot(np.nan_to_num(values), counts) / max(counts.sum(), 1.0))
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
              f"(selection: {selection_label(results)}).")
  for corpus, c in a.get('per_corpus', {}).items():
    rows.append(f"  {corpus} slice of the pooled predictions ({c['num_samples']} clips): UF1 {c['uf1']:.4f}, "
                f"UAR {c['uar']:.4f}, accuracy {c['accuracy']:.4f}")
  chosen = [(f['subject'], f['inner_selection']) for f in results['folds'] if 'inner_selection' in f]
  if chosen:
    rows.append('Settings chosen per fold by LOSO over its training subjects: ' + '; '.join(
        f"{subject} → {c['chosen']} {c['overrides'] or '(the config)'}" for subject, c in chosen))
  if a.get('subjects_not_evaluated'):
    rows.append(f"PARTIAL RUN: {len(a['subjects_not_evaluated'])} of the corpus's subjects were not held out "
                f"(cv.subjects); these scores are not the whole protocol's.")
  if a.get('failed_folds'):
    rows.append(f"INCOMPLETE: fold(s) {', '.join(a['failed_folds'])} failed (non-finite loss, see results.json); "
                f"the scores above cover the other {a['num_folds']} folds only.")
  if 'flow_epe' in a:
    moving = f" ({a['flow_epe_moving']:.3f} px on moving pixels)" if 'flow_epe_moving' in a else ''
    rows.append(f"MOL auxiliary tasks over all test clips: flow end-point error {a['flow_epe']:.3f} px{moving}, "
                f"landmark NME {a['landmark_nme']:.4f} (mean error / inter-pupil distance).")
  if 'optimistic_best_test' in results:
    o = results['optimistic_best_test']['aggregate']
    rows.append(f"OPTIMISTIC, not an estimate (the released rule: each fold's best step chosen on its own "
                f"test set): UF1 {o['uf1']:.4f}, UAR {o['uar']:.4f}, accuracy {o['accuracy']:.4f}.")
  return '\n'.join(rows)


# How each `data.normalization` treats the test split: only the first keeps the held-out subject unseen.
TEST_NORMALIZATION = {
    'standard': {'transductive': False,
                 'description': 'fixed constants, (x/255 - 0.5)/0.5: no statistics of any split'},
    'released_per_split': {'transductive': True,
                           'description': "TRANSDUCTIVE, as released: each fold's test split is normalised by "
                                          'its own mean and max (the held-out subject\'s own statistics)'},
}
NOT_STATED = 'not stated by the config'


def selection_label(results: dict) -> str:
  """How the scored model was chosen and, where it is not honest, how its test split was normalised."""
  label = 'end of schedule' if results['selection'] == 'end_of_schedule' else results['selection']
  if results.get('test_normalization', {}).get('transductive'):
    label += ', test split normalised by its own statistics, as released'
  return label


def _settings_selection(config) -> dict:
  """How each fold's settings were chosen: as configured, or by inner LOSO among candidates (each fold's
  choice and inner scores are in its `inner_selection`)."""
  rule = config.cv.selection
  if rule == 'none':
    return {'rule': 'none', 'description': 'the config as it is, for every fold'}
  from fdp_jax.cv import selection
  return {'rule': rule, 'candidates': selection.candidates(config),
          'description': 'per fold, the candidate with the best UF1 of a LOSO over its training subjects only '
                         '(first best on a tie), retrained on all of them and scored once on the held-out subject'}


def results_dict(config, info, index: data_sources.CorpusIndex, fold_results: list[dict],
                 optimistic: dict | None = None) -> dict:
  """results.json: the run's folds and the aggregate of their summed confusion matrix; `optimistic` is
  the released best-test-step record ({'every_steps', 'folds'}), reported beside and labelled."""
  rule = config.data.normalization
  subjects = sorted(set(index.subjects))
  results = {
      'selection': 'end_of_schedule',
      'test_normalization': {'rule': rule, **TEST_NORMALIZATION[rule]},
      'settings_chosen_on': config.settings_chosen_on or NOT_STATED,
      'settings_selection': _settings_selection(config),
      'seed': int(config.seed),
      'dataset': {'name': info.name, 'config': info.config_name, 'version': str(info.version),
                  'num_samples': len(index), 'num_subjects': len(set(index.subjects)),
                  'class_names': list(index.class_names)},
      'folds': fold_results,
      'aggregate': aggregate(fold_results, index.class_names, subjects),
  }
  if optimistic and optimistic['folds']:
    results['optimistic_best_test'] = {
        'warning': 'OPTIMISTIC: each fold keeps the step with the best accuracy on its own test set (the '
                   'released selection rule); this is not an estimate of performance on unseen subjects. '
                   'The honest score is `aggregate`.',
        'every_steps': optimistic['every_steps'],
        'folds': optimistic['folds'],
        'aggregate': aggregate(optimistic['folds'], index.class_names, subjects),
    }
  return results
