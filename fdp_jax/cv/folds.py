"""Leave-one-subject-out folds: one per distinct subject, holding that subject's records out of training."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import numpy as np


@dataclasses.dataclass(frozen=True)
class Fold:
  number: int                 # position among all folds (sorted subjects): seeds derive from it
  subject: str                # the held-out subject
  train_indices: np.ndarray
  test_indices: np.ndarray


def loso_folds(subjects: Sequence[str]) -> list[Fold]:
  """One fold per distinct subject (sorted), holding that subject's records out of training.

  subjects: (N,) the subject of every record, in record order."""
  subjects = np.asarray(subjects)
  folds = []
  for number, subject in enumerate(sorted(set(subjects.tolist()))):
    held_out = subjects == subject
    folds.append(Fold(number, subject, np.flatnonzero(~held_out), np.flatnonzero(held_out)))
  return folds


def select_folds(folds: list[Fold], wanted: str) -> list[Fold]:
  """`wanted` = 'all' or comma-separated held-out subjects ('s00,s02'): a partial run that keeps the full
  fold numbering, so a fold trains identically in a partial and in a full run."""
  if wanted.strip() in ('all', ''):
    return folds
  names = [w.strip() for w in wanted.split(',') if w.strip()]
  known = {f.subject for f in folds}
  unknown = [s for s in names if s not in known]
  if unknown:
    raise ValueError(f'cv.subjects names unknown subjects {unknown}; the corpus has {sorted(known)}')
  return [f for f in folds if f.subject in names]


def fold_keys(seed: int, fold: Fold | None) -> tuple[jax.Array, jax.Array]:
  """(init key, step key) of a fold, from the seed and the fold's number (an idle slot takes fold 0's)."""
  base_key = jax.random.fold_in(jax.random.key(seed), fold.number if fold else 0)
  init_key, step_key = jax.random.split(base_key)
  return init_key, step_key
