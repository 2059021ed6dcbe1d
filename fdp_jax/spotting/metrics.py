"""Spotting and spot-then-recognise scores, by their definition (MEGC's spotting track).

A spotted interval is a true positive when its IoU with a ground-truth interval *of the same type* (micro or
macro) is at least 0.5, matched one-to-one: each ground truth matches at most one spotted interval and each
spotted interval at most one ground truth, and the matching has as many pairs as possible (a maximum
bipartite matching over the pairs with IoU ≥ 0.5; among maximal matchings, the largest total IoU).
Precision, recall and F1 come from true positives, spotted and ground-truth counts pooled over every video
of every fold — overall, and per type. Spot-then-recognise: STRS = F1(spotting) × F1(analysis), where the
analysis scores the recogniser's class on the true-positive intervals (UF1 and UAR of their confusion
matrix, `fdp_jax.metrics`).

Intervals are inclusive frame ranges [onset, offset]: IoU = frames in both / frames in either.

Where the widely used MEGC reference script differs: it lets one spotted interval count against several
ground truths (so true positives can exceed the spotted count), and its "UAR" averages per-class precision.
Here neither happens.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from fdp_jax import metrics

IOU_THRESHOLD = 0.5
TYPES = ('micro', 'macro')


@dataclasses.dataclass(frozen=True)
class Interval:
  onset: int
  offset: int                 # inclusive
  type: str = 'micro'         # 'micro' | 'macro'
  label: int | None = None    # emotion class (ground truth) or the recogniser's class (spotted)

  def __post_init__(self):
    if self.offset < self.onset:
      raise ValueError(f'interval [{self.onset}, {self.offset}] ends before it starts')
    if self.type not in TYPES:
      raise ValueError(f'unknown interval type {self.type!r}: use one of {TYPES}')


def iou(a: Interval, b: Interval) -> float:
  """Frames in both / frames in either, of two inclusive frame intervals."""
  overlap = min(a.offset, b.offset) - max(a.onset, b.onset) + 1
  if overlap <= 0:
    return 0.0
  union = (a.offset - a.onset + 1) + (b.offset - b.onset + 1) - overlap
  return overlap / union


def match(spotted: Sequence[Interval], truth: Sequence[Interval]) -> list[tuple[int, int]]:
  """One-to-one (spotted index, truth index) true-positive pairs of one video: same type, IoU ≥ 0.5, as many
  pairs as possible, then the largest total IoU."""
  if not spotted or not truth:
    return []
  overlaps = np.array([[iou(s, t) if s.type == t.type else 0.0 for t in truth] for s in spotted])
  eligible = overlaps >= IOU_THRESHOLD
  # Each eligible pair is worth more than every IoU together, so the assignment maximises the pair count
  # first and the total IoU second.
  cost = -(eligible * (1.0 + len(spotted) + len(truth)) + eligible * overlaps)
  rows, cols = linear_sum_assignment(cost)
  return [(int(r), int(c)) for r, c in zip(rows, cols) if eligible[r, c]]


def _prf(tp: int, n_spotted: int, n_truth: int) -> dict:
  precision = tp / n_spotted if n_spotted else 0.0
  recall = tp / n_truth if n_truth else 0.0
  f1 = 2 * tp / (n_spotted + n_truth) if n_spotted + n_truth else 0.0
  return {'tp': tp, 'fp': n_spotted - tp, 'fn': n_truth - tp, 'precision': precision, 'recall': recall,
          'f1': f1}


def spotting_scores(videos: Iterable[tuple[Sequence[Interval], Sequence[Interval]]]) -> dict:
  """Pooled over (spotted, truth) pairs of every video: {'overall', 'micro', 'macro'} → tp, fp, fn,
  precision, recall, f1; and 'matches', the true-positive pairs of each video."""
  counts = {key: [0, 0, 0] for key in ('overall',) + TYPES}
  matches = []
  for spotted, truth in videos:
    pairs = match(spotted, truth)
    matches.append(pairs)
    for key in counts:
      keep = (lambda i: True) if key == 'overall' else (lambda i, key=key: i.type == key)
      counts[key][0] += sum(1 for s, _ in pairs if keep(spotted[s]))
      counts[key][1] += sum(1 for i in spotted if keep(i))
      counts[key][2] += sum(1 for i in truth if keep(i))
  return {**{key: _prf(*c) for key, c in counts.items()}, 'matches': matches}


def strs(videos: Sequence[tuple[Sequence[Interval], Sequence[Interval]]], num_classes: int) -> dict:
  """Spot-then-recognise over every video: spotting scores, the analysis of the true-positive intervals
  that have a ground-truth class (the spotted interval's `label` against the truth's), and
  STRS = F1(spotting, overall) × F1(analysis)."""
  spotting = spotting_scores(videos)
  labels, predictions = [], []
  for (spotted, truth), pairs in zip(videos, spotting['matches']):
    for s, t in pairs:
      if truth[t].label is not None:
        if spotted[s].label is None:
          raise ValueError('a true-positive spotted interval has no recognised class')
        labels.append(truth[t].label)
        predictions.append(spotted[s].label)
  analysis = {'num_intervals': len(labels)}
  if labels:
    cm = metrics.confusion_matrix(labels, predictions, num_classes)
    scores = metrics.scores_from_confusion(cm)
    analysis.update(uf1=scores['uf1'], uar=scores['uar'], accuracy=scores['accuracy'],
                    confusion_matrix=cm.tolist())
  f1_analysis = analysis.get('uf1', 0.0)
  return {'spotting': spotting, 'analysis': analysis, 'strs': spotting['overall']['f1'] * f1_analysis}
