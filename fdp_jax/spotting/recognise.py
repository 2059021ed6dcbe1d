"""Recognising spotted intervals with a recognition run (`launch.py` with a clip config): each subject's
intervals go to the model of that subject's own LOSO fold — the one that never saw the subject. A subject
the recogniser's corpus does not have at all was never seen by any fold; its intervals go to the first fold.

A spotted interval becomes a clip record (its frames, onset 0, offset its last frame) and goes through the
run's evaluation transform (`input_pipeline.ClipTransform`, training-split normalisation where the run's
`data.normalization` needs it) and its model, exactly as `fdp_jax.clip_prediction` treats one clip.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from fdp_jax import data_sources, families, inference, input_pipeline, rundir, train
from fdp_jax.corpora import class_sets
from fdp_jax.cv import checkpoints


class RecognizerError(ValueError):
  """A recogniser run that cannot serve this spotting run; the message says what to do."""


class Recognizer:
  """The models of a finished recognition run in `workdir`, one per held-out subject."""

  def __init__(self, workdir: str):
    results_path = rundir.path(workdir, rundir.RESULTS)
    if not os.path.exists(results_path):
      raise RecognizerError(f'{workdir} holds no finished recognition run (no {rundir.RESULTS}): train one with '
                            '`python launch.py --config=configs/<corpus>.py --workdir=DIR` and pass '
                            '--config.recognizer_workdir=DIR')
    self.workdir = workdir
    self.config = rundir.load_config(workdir)
    self.results = rundir.read_json(workdir, rundir.RESULTS)
    if 'aggregate' not in self.results or not families.family(self.config.model).recognition:
      raise RecognizerError(f'{workdir} is not a recognition run (its results.json has no class aggregate)')
    self.class_names = tuple(self.results['dataset']['class_names'])
    self.folds = [f['subject'] for f in self.results['folds'] if f.get('status') == 'done']
    if not self.folds:
      raise RecognizerError(f'{workdir} has no finished fold')
    self.subjects = set(self.results.get('aggregate', {}).get('subjects_not_evaluated', [])) | set(
        f['subject'] for f in self.results['folds'])
    self.template = inference.fold_template(self.config)
    self._apply = inference.inference_step(train.options_for(self.config), 'probabilities')
    self._states: dict[str, object] = {}
    self._class_set = _class_set_of(self.config.data)

  def fold_for(self, subject: str) -> str:
    """The fold whose model never saw `subject`."""
    if subject in self.folds:
      return subject
    if subject in self.subjects:
      raise RecognizerError(f'the recogniser run {self.workdir} did not finish the fold of subject {subject}, '
                            'whose intervals need it (every other fold was trained on that subject): finish '
                            'the run, or hold the subject out of the spotting run (cv.subjects)')
    return self.folds[0]

  def _state(self, fold: str):
    if fold not in self._states:
      self._states[fold] = checkpoints.restore_fold(self.workdir, fold, self.template)
    return self._states[fold]

  def _normalization(self, fold: str):
    try:
      return inference.training_normalization(self.config.data, self.results, fold)
    except inference.MissingTrainingStatistics:
      raise RecognizerError(f'{self.workdir} does not record fold {fold}\'s training statistics: re-score it '
                            f'with `python -m fdp_jax.tools.rescore --workdir={self.workdir}`') from None

  def classify(self, subject: str, clips: list[np.ndarray]) -> np.ndarray:
    """(len(clips), C) class probabilities of clips (each (L, S, S, 1) uint8 frames) of one subject."""
    if not clips:
      return np.zeros((0, len(self.class_names)), np.float32)
    fold = self.fold_for(subject)
    data = self.config.data.copy_and_resolve_references()
    data.targets = 'mer'
    transform = input_pipeline.ClipTransform(data, train=False, normalization=self._normalization(fold))
    examples = [transform({'frames': f, 'onset': 0, 'apex': (len(f) - 1) // 2, 'offset': len(f) - 1,
                           'label': 0, '_index': 0}) for f in clips]
    batch = {'frames': np.stack([e['frames'] for e in examples]),
             'frame_mask': np.stack([e['frame_mask'] for e in examples])}
    return np.asarray(jax.device_get(self._apply(self._state(fold), batch)), np.float32)

  def emotion_class(self, emotion: str) -> int | None:
    """The recogniser's class of an annotated emotion word, None when its class set has none for it."""
    word = emotion.strip().lower()
    if word in self.class_names:
      return self.class_names.index(word)
    if self._class_set is None or not word:
      return None
    corpus, class_set = self._class_set
    try:
      return class_set.label(class_sets.canonical_emotion(corpus, word))
    except KeyError:
      return None


def _class_set_of(data_config):
  """(corpus, ClassSet) of a licensed recogniser corpus's builder config; None for the synthetic one."""
  try:
    builder_cls = data_sources.builder_class(data_config.builder)
  except ValueError:
    return None
  for cfg in getattr(builder_cls, 'BUILDER_CONFIGS', []):
    if cfg.name == data_config.builder_config and getattr(cfg, 'class_set', ''):
      return getattr(builder_cls, 'CORPUS', data_config.builder), class_sets.get(builder_cls.CORPUS, cfg.class_set)
  return None
