"""Held-out predictions of a group of folds, their scoring, and the optimistic best-test record.

Predictions are in record order; with `eval.num_views` V > 1 every clip is sampled at V positions inside its
T segments and the class probabilities (and MOL's errors) are averaged over the views.
"""

from __future__ import annotations

import math

import numpy as np

from fdp_jax import data_sources, device_input, input_pipeline, metrics, scoring, train
from fdp_jax.cv import parallel
from fdp_jax.cv.folds import Fold


def predict_group(config, group: list[Fold | None], source, fsteps: parallel.FoldSteps,
                  state: train.TrainState, normalizations: dict | None = None) -> list[dict | None]:
  """Each fold's predictions on its held-out subject, in record order ({'index', 'label', 'prediction',
  'probabilities'} + MOL's `metrics.MOL_CLIP_ERRORS`); None for idle slots. Folds with fewer test clips
  run masked batches while the others finish. `normalizations` {slot: (shift, scale)} defaults to each
  test split's own under `data.normalization`.

  With `eval.num_views` V > 1 every clip is also sampled at V positions inside its T segments and the
  class probabilities (and MOL's errors) are averaged over the views; the prediction is their argmax."""
  views = [_predict_view(config, group, source, fsteps, state, normalizations, position)
           for position in input_pipeline.view_positions(int(config.eval.num_views))]
  if len(views) == 1:
    return views[0]
  per_fold = []
  for per_view in zip(*views):
    if per_view[0] is None:
      per_fold.append(None)
      continue
    out = dict(per_view[0])
    for key in ('probabilities', *metrics.MOL_CLIP_ERRORS):
      if key in out:
        out[key] = np.nanmean([v[key] for v in per_view], axis=0).astype(out[key].dtype)
    out['prediction'] = np.argmax(out['probabilities'], axis=-1).astype(out['prediction'].dtype)
    per_fold.append(out)
  return per_fold


def _predict_view(config, group, source, fsteps, state, normalizations, position) -> list[dict | None]:
  k, bs = fsteps.num_slots, config.eval.batch_size
  num_batches = max(math.ceil(len(f.test_indices) / bs) for f in group if f is not None)
  feed = _device_batches if fsteps.corpus is not None else _host_batches
  collected: list[dict] = [{} for _ in range(k)]
  for out in feed(config, group, source, fsteps, state, normalizations, position, num_batches):
    out = parallel.to_host(out)
    for s in range(k):
      keep = out['mask'][s]
      for key, value in out.items():
        if key != 'mask':
          collected[s].setdefault(key, []).append(value[s][keep])
  per_fold = []
  for s, fold in enumerate(group):
    if fold is None:
      per_fold.append(None)
      continue
    out = {key: np.concatenate(v) for key, v in collected[s].items()}
    order = np.argsort(out['index'], kind='stable')
    per_fold.append({key: v[order] for key, v in out.items()})
  return per_fold


def score_group(config, group: list[Fold | None], source, index: data_sources.CorpusIndex,
                fsteps: parallel.FoldSteps, state: train.TrainState) -> list[dict | None]:
  """results.json entries of a group's folds (None for idle slots), scored with the stacked `state`."""
  steps_trained = parallel.to_host(state.step)
  outs = predict_group(config, group, source, fsteps, state)
  # Each fold's training statistics: what `predict` normalises a new clip by (never the clip's own).
  train_normalizations = [None if fold is None else input_pipeline.normalization_for(
      source, fold.train_indices, config.data) for fold in group]
  entries = [None if fold is None else scoring.fold_result(fold, out, index, steps_trained[s])
             for s, (fold, out) in enumerate(zip(group, outs))]
  for entry, train_normalization in zip(entries, train_normalizations):
    if train_normalization is not None:
      entry['train_normalization'] = {'shift': float(train_normalization[0]),
                                      'scale': float(train_normalization[1])}
  return entries




def _test_normalization(config, source, fold, normalizations, slot):
  """The (shift, scale) a fold's test split is normalised by: given, or the test split's own under
  `data.normalization` (None: standard)."""
  return (normalizations or {}).get(slot) or input_pipeline.normalization_for(source, fold.test_indices,
                                                                              config.data)


def _host_batches(config, group, source, fsteps, state, normalizations, position, num_batches):
  """The group's evaluation outputs batch by batch, from the host pipeline (`input_pipeline.eval_batches`);
  a fold out of test clips runs masked batches while the others finish."""
  k, bs = fsteps.num_slots, config.eval.batch_size
  example = input_pipeline.example_shapes(config.data, bs)
  idle = parallel.idle_batch(example)
  local = parallel.local_slots(fsteps.state_sharding, k)
  streams = {s: input_pipeline.eval_batches(source, group[s].test_indices, config.data, bs,
                                            _test_normalization(config, source, group[s], normalizations, s),
                                            position)
             for s in local if group[s] is not None}
  for _ in range(num_batches):
    per_slot = {s: idle for s in local}
    for s, stream in streams.items():
      per_slot[s] = next(stream, idle)
    yield fsteps.eval(state, parallel.global_batch(per_slot, example, fsteps.batch_sharding, k))


def _device_batches(config, group, source, fsteps, state, normalizations, position, num_batches):
  """The same from the corpus on the device (`device_input.eval_batch`): the frames the host's rules pick
  (`device_input.eval_frame_indices`), gathered and normalised there."""
  k, bs = fsteps.num_slots, config.eval.batch_size
  width, num_classes = len(fsteps.corpus.lengths), int(config.data.num_classes)
  tables = [device_input.idle_table(width, num_classes) if fold is None else device_input.fold_table(
      np.zeros((1,), np.int32), np.zeros((num_classes,), np.float32),
      _test_normalization(config, source, fold, normalizations, s), width) for s, fold in enumerate(group)]
  tables = parallel.stack_states(tables, fsteps.state_sharding)
  frame_indices = device_input.eval_frame_indices(fsteps.corpus.lengths, config.data, position)
  for b in range(num_batches):
    records = np.zeros((k, bs), np.int32)
    mask = np.zeros((k, bs), bool)
    for s, fold in enumerate(group):
      chunk = fold.test_indices[b * bs:(b + 1) * bs] if fold is not None else []
      records[s, :len(chunk)], mask[s, :len(chunk)] = chunk, True
    placed = [parallel.stack_states(list(x), fsteps.batch_sharding)
              for x in (records, mask, frame_indices[records])]
    yield fsteps.eval_on_device(state, tables, *placed, fsteps.corpus.arrays)


class BestTestRecord:
  """The released code's model selection, kept only to be reported *beside* the honest score: every
  `every` steps each fold's test set is scored and the step with the best test accuracy (first one on
  ties) is remembered. Choosing a model on its own test set is optimistic — it is not an estimate of
  accuracy on unseen subjects."""

  def __init__(self, config, group: list[Fold | None], source, fsteps: parallel.FoldSteps,
               num_classes: int, every: int):
    self.config, self.group, self.source, self.fsteps = config, group, source, fsteps
    self.num_classes, self.every = num_classes, every
    self.normalizations = {s: input_pipeline.normalization_for(source, f.test_indices, config.data)
                           for s, f in enumerate(group) if f is not None}
    self.best: list[dict | None] = [None] * len(group)

  def skip(self, slot: int) -> None:
    """Stops recording a fold that failed (its record so far is dropped with it)."""
    self.group = [None if s == slot else fold for s, fold in enumerate(self.group)]
    self.best[slot] = None

  def __call__(self, step: int, state: train.TrainState) -> None:
    if (step % self.every and step != self.config.train.num_steps) or not any(self.group):
      return
    outs = predict_group(self.config, self.group, self.source, self.fsteps, state, self.normalizations)
    for s, (fold, out) in enumerate(zip(self.group, outs)):
      if fold is None:
        continue
      cm = metrics.confusion_matrix(out['label'], out['prediction'], self.num_classes)
      accuracy = float(np.trace(cm) / max(cm.sum(), 1))
      if self.best[s] is None or accuracy > self.best[s]['accuracy']:
        self.best[s] = {'subject': fold.subject, 'step': step, 'accuracy': accuracy,
                        'confusion_matrix': cm.tolist()}
