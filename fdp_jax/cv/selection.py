"""Choosing settings without looking at the held-out subject: `cv.selection = 'inner_loso'`.

For each outer fold, every candidate setting is scored by LOSO over that fold's *training* subjects only
(UF1 of the inner folds' summed confusion matrix); the best candidate (the first one on a tie) is retrained
on all of the fold's training subjects and scored once on its held-out subject. The candidates are the
config as it is (candidate 0) and each entry of `cv.selection_grid`:

  --config.cv.selection=inner_loso --config.cv.selection_grid='train.learning_rate=1e-3|train.learning_rate=4e-3'

Candidates are separated by '|', a candidate's overrides by ';'; values are Python literals (or plain
strings). Inner folds of every outer fold are trained together, `cv.parallel_folds` at a time, like outer
ones; each candidate's inner run keeps its own checkpoints under `selection/<candidate>/`, so an interrupted
selection continues where it stopped.
"""

from __future__ import annotations

import ast
from typing import Any, Sequence

import numpy as np

from fdp_jax import config_checks, scoring
from fdp_jax.cv.folds import Fold

SELECTIONS = ('none', 'inner_loso')
# Inner folds are named '<outer subject>~<inner subject>' (their checkpoint folders and progress files).
SEPARATOR = '~'


def parse_grid(text: str) -> list[dict[str, Any]]:
  """'a.b=1;c.d=x|a.b=2' → [{'a.b': 1, 'c.d': 'x'}, {'a.b': 2}] (the alternatives to the config as it is)."""
  candidates = []
  for part in (p.strip() for p in text.split('|')):
    if not part:
      continue
    overrides = {}
    for item in (i.strip() for i in part.split(';') if i.strip()):
      key, sep, value = item.partition('=')
      if not sep or not key.strip():
        raise ValueError(f'cv.selection_grid: {item!r} is not key=value')
      try:
        overrides[key.strip()] = ast.literal_eval(value.strip())
      except (ValueError, SyntaxError):
        overrides[key.strip()] = value.strip()
    candidates.append(overrides)
  return candidates


def candidates(config) -> list[dict[str, Any]]:
  """The candidate overrides: {} (the config itself) first, then `cv.selection_grid`'s."""
  return [{}] + parse_grid(config.cv.selection_grid)


def candidate_config(config, overrides: dict[str, Any]):
  """A copy of `config` with `overrides` applied (each key must exist: a misspelt key is an error, not a new
  setting) and the selection itself switched off."""
  out = config.copy_and_resolve_references()
  out.unlock()
  for key, value in overrides.items():
    *path, leaf = key.split('.')
    node = out
    for name in path:
      if name not in node:
        raise KeyError(f'cv.selection_grid names {key!r}, which the config does not have')
      node = node[name]
    if leaf not in node:
      raise KeyError(f'cv.selection_grid names {key!r}, which the config does not have')
    if isinstance(node[leaf], float) and type(value) is int:
      value = float(value)
    node[leaf] = value   # ConfigDict refuses another type (TypeError): 'lr=abc' is no learning rate
  out.cv.selection, out.cv.selection_grid = 'none', ''
  out.lock()
  return out


def check(config) -> list:
  """`cv.selection` and its grid, before any work: a rule that exists and candidates that name keys the config
  has, with values of their types. Returns the candidate configs other than the config itself (none for
  'none'), for `config_checks.check_before_work`; raises config_checks.ConfigError."""
  rule = config.cv.selection
  if rule not in SELECTIONS:
    raise config_checks.ConfigError(f'unknown cv.selection {rule!r}: use one of {SELECTIONS}')
  if rule == 'none':
    if config.cv.selection_grid.strip():
      raise config_checks.ConfigError("cv.selection_grid is set but cv.selection is 'none': set "
                                      '--config.cv.selection=inner_loso to choose among its candidates, or '
                                      'leave the grid empty')
    return []
  try:
    grid = candidates(config)
  except ValueError as e:
    raise config_checks.ConfigError(str(e)) from e
  if len(grid) < 2:
    raise config_checks.ConfigError("cv.selection='inner_loso' needs candidates in cv.selection_grid (e.g. "
                                    "'train.learning_rate=1e-3|train.learning_rate=4e-3'); the config itself "
                                    'is candidate 0')
  configs = []
  for overrides in grid[1:]:
    try:
      configs.append(candidate_config(config, overrides))
    except (KeyError, TypeError, ValueError) as e:
      raise config_checks.ConfigError(f'cv.selection_grid candidate {overrides}: {e}') from e
  return configs


def inner_folds(outer: Sequence[Fold], subjects: Sequence[str]) -> list[Fold]:
  """LOSO over each outer fold's training subjects: one inner fold per (outer fold, training subject), trained
  on the outer fold's other training subjects. `subjects`: the subject of every record. Numbers (which seed
  each fold) continue after the outer folds' so that no two folds share one."""
  subjects = np.asarray(subjects)
  names = sorted(set(subjects.tolist()))
  folds = []
  for fold in outer:
    train = np.asarray(fold.train_indices)
    for subject in sorted(set(subjects[train].tolist())):
      held_out = subjects[train] == subject
      number = len(names) * (1 + fold.number) + names.index(subject)
      folds.append(Fold(number, f'{fold.subject}{SEPARATOR}{subject}', train[~held_out], train[held_out]))
  return folds


def choose(outer: Sequence[Fold], inner_results: Sequence[dict[str, dict]], num_classes: int) -> dict[str, dict]:
  """Per outer subject: each candidate's inner UF1 (from its inner folds' summed confusion matrix) and the
  chosen candidate, the first best. `inner_results[c]`: inner subject name → results.json entry."""
  choice = {}
  for fold in outer:
    scores = []
    for results in inner_results:
      entries = [e for name, e in results.items() if name.split(SEPARATOR)[0] == fold.subject]
      done = [e for e in entries if e.get('status') != 'failed']
      # A candidate with a failed inner fold cannot be judged on all of them: it is not chosen.
      names = [str(c) for c in range(num_classes)]
      scores.append(scoring.aggregate(done, names)['uf1'] if done and len(done) == len(entries) else None)
    valid = [s for s in scores if s is not None]
    chosen = scores.index(max(valid)) if valid else 0
    choice[fold.subject] = {'inner_uf1': scores, 'chosen': chosen}
  return choice
