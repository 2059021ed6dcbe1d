"""MER scores from confusion matrices.

Scores are always computed from a confusion matrix — per fold, or summed over all LOSO folds for the
aggregate — never by averaging per-fold or per-batch scores.

Conventions for classes that a (fold's) confusion matrix does not contain:
- UAR averages recall over classes with at least one true sample (recall of an absent class is undefined).
- UF1 averages F1 over classes that occur as a label *or* as a prediction: a class absent from the labels
  but predicted gets F1 = 0, so false alarms are penalised; a class neither present nor predicted is left
  out (as scikit-learn's macro average over the labels it sees).
- WF1 / WAR weight per-class F1 / recall by support; WAR equals accuracy.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def confusion_matrix(labels: Sequence[int], predictions: Sequence[int], num_classes: int) -> np.ndarray:
  """(num_classes, num_classes) int64 counts; rows are true classes, columns predicted classes."""
  labels = np.asarray(labels, np.int64).reshape(-1)
  predictions = np.asarray(predictions, np.int64).reshape(-1)
  if labels.shape != predictions.shape:
    raise ValueError(f'{labels.size} labels but {predictions.size} predictions')
  for name, v in (('label', labels), ('prediction', predictions)):
    if v.size and (v.min() < 0 or v.max() >= num_classes):
      raise ValueError(f'{name} outside [0, {num_classes}): {sorted(set(v.tolist()))}')
  cm = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(cm, (labels, predictions), 1)
  return cm


def scores_from_confusion(cm: np.ndarray) -> dict[str, float]:
  """accuracy, uf1 (macro F1), uar (macro recall), wf1, war and the sample count of a confusion matrix."""
  cm = np.asarray(cm, np.float64)
  n = cm.sum()
  if n == 0:
    raise ValueError('empty confusion matrix: no samples were scored')
  tp = np.diag(cm)
  support = cm.sum(axis=1)
  predicted = cm.sum(axis=0)
  denom_f1 = support + predicted          # 2TP + FP + FN = support + predicted
  f1 = np.divide(2 * tp, denom_f1, out=np.zeros_like(tp), where=denom_f1 > 0)
  recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
  present = support > 0
  seen = denom_f1 > 0
  return {
      'accuracy': float(tp.sum() / n),
      'uf1': float(f1[seen].mean()),
      'uar': float(recall[present].mean()),
      'wf1': float((f1 * support).sum() / n),
      'war': float((recall * support).sum() / n),
      'num_samples': int(n),
  }


def per_class_scores(cm: np.ndarray, class_names: Sequence[str]) -> dict[str, dict[str, float | None]]:
  """Recall, precision, F1 (None where undefined) and support of each class, keyed by class name."""
  cm = np.asarray(cm, np.float64)
  tp = np.diag(cm)
  support = cm.sum(axis=1)
  predicted = cm.sum(axis=0)
  out = {}
  for c, name in enumerate(class_names):
    out[name] = {
        'support': int(support[c]),
        'recall': float(tp[c] / support[c]) if support[c] else None,
        'precision': float(tp[c] / predicted[c]) if predicted[c] else None,
        'f1': float(2 * tp[c] / (support[c] + predicted[c])) if support[c] + predicted[c] else None,
    }
  return out


# MOL's per-clip errors on its auxiliary tasks, in evaluation: flow end-point error (px) over every pixel and
# over the moving pixels only, and landmark NME (mean point error / inter-pupil distance).
MOL_CLIP_ERRORS = ('flow_epe', 'flow_epe_moving', 'landmark_nme')

# A pixel "moves" when its true flow exceeds 1 px on a 128-px face (0.5 px at 64 px): on the synthetic `mol`
# corpus about the top 10 % of pixels, where the expression's and the larger head and alignment motion live.
MOVING_FLOW_AT_128 = 1.0


def moving_flow_threshold(image_size: int) -> float:
  """|flow| (px) above which a pixel of an `image_size`-px frame counts as moving."""
  return MOVING_FLOW_AT_128 * image_size / 128.0


def interpupil_distance(landmarks, xp=np):
  """(..., 68, 2) → (...,): distance between the eye centres (means of points 36–41 and 42–47). xp is the
  array module: numpy on the host, jax.numpy inside a jitted step, with the same arithmetic either way."""
  return xp.linalg.norm(landmarks[..., 36:42, :].mean(-2) - landmarks[..., 42:48, :].mean(-2), axis=-1)


def landmark_nme(predicted, target, xp=np):
  """(..., 68, 2) landmarks → (...,) NME: mean point error over the target's inter-pupil distance (floored at
  1e-3 px, so that a degenerate target cannot divide by zero). xp as in `interpupil_distance`."""
  error = xp.linalg.norm(predicted - target, axis=-1).mean(-1)
  return error / xp.maximum(interpupil_distance(target, xp), 1e-3)
