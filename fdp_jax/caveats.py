"""What a trained model cannot know, said beside what it outputs.

Two cases a user cannot see in a probability:
- **A run trained on synthetic faces** (`synthetic_me`, `synthetic_long`: drawn faces whose motions follow
  rules, the only runs one can make without a licensed corpus). On a real face its scores measure how far the
  face is from those drawings, not an expression. The corpus a run was trained on is recorded in its
  results.json (`dataset.name`); each tool that scores a user's video with such a run says so, once on the
  console and in every file it writes.
- **A recogniser with no preference.** A model that cannot tell answers close to uniform (a synthetic-trained
  recogniser on real faces gave 0.214 / 0.212 / 0.204 / 0.192 / 0.179 over five classes); the argmax of such
  an answer is noise. When the probabilities lie within total-variation distance `UNDECIDED_DISTANCE` of the
  uniform distribution the class is reported as "undecided", the probabilities still shown.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from fdp_jax import data_sources

SYNTHETIC_WARNING = 'trained on synthetic faces: on a real video these scores do not measure expressions'

UNDECIDED = 'undecided'
# Total-variation distance, 0.5 * sum |p - 1/C| (0: uniform; 1 - 1/C: certain). 0.05 is half of what a
# single class 10 points above uniform, taken evenly from the others, gives (0.1).
UNDECIDED_DISTANCE = 0.05
UNDECIDED_RULE = (f'"{UNDECIDED}" when the class probabilities are within total-variation distance '
                  f'{UNDECIDED_DISTANCE} of uniform (0.5 * sum |p - 1/C|)')


def distance_from_uniform(probabilities: Sequence[float]) -> float:
  """Total-variation distance of a probability vector (C,) from the uniform one."""
  p = np.asarray(probabilities, np.float64)
  return float(0.5 * np.abs(p - 1.0 / len(p)).sum())


def decided_class(probabilities: Sequence[float], class_names: Sequence[str]) -> str:
  """The most probable class, or `UNDECIDED` when the probabilities are within `UNDECIDED_DISTANCE` of
  uniform."""
  if distance_from_uniform(probabilities) < UNDECIDED_DISTANCE:
    return UNDECIDED
  return class_names[int(np.argmax(probabilities))]


def synthetic_corpus(name: str) -> bool:
  """Whether the corpus `name` (a TFDS builder of `datasets/`) holds synthetic faces; an unknown name is
  taken as real."""
  try:
    return bool(getattr(data_sources.builder_class(name), 'SYNTHETIC_FACES', False))
  except ValueError:
    return False


def training_warning(*run_results: dict) -> str:
  """`SYNTHETIC_WARNING` when any of the runs (their results.json dicts) was trained on a synthetic corpus,
  else ''."""
  if any(synthetic_corpus(r['dataset']['name']) for r in run_results):
    return SYNTHETIC_WARNING
  return ''


def describe(decided: str) -> str:
  """A decided class as the console prints it: "undecided" says by which rule."""
  if decided == UNDECIDED:
    return f'{UNDECIDED} (probabilities within {UNDECIDED_DISTANCE} of uniform)'
  return decided
