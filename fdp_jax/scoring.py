"""Scores of held-out predictions: each fold's results.json entry and the aggregate of the summed confusion
matrix (`fdp_jax.run_results` puts them into results.json). Scores come from confusion matrices
(`fdp_jax.metrics`), never from averaged fold scores."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from fdp_jax import data_sources, metrics
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
