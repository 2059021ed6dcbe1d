"""The training loop of a group of folds trained together (`fdp_jax.cv.parallel`), with its non-finite guard:
a fold whose loss or any logged metric turns non-finite is stopped there and reported as failed, with its
last good checkpoint, while the other folds of the group go on.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import numpy as np
import tqdm
from absl import logging

from fdp_jax import device_input, input_pipeline, losses, train
from fdp_jax.cv import checkpoints as ckpt
from fdp_jax.cv import parallel
from fdp_jax.cv.evaluation import BestTestRecord
from fdp_jax.cv.folds import Fold, fold_keys


def class_weights(config, train_labels: np.ndarray) -> np.ndarray:
  """(C,) cross-entropy weight of each class for a fold: inverse training-set frequency when
  `loss.class_balance` (UF1 and UAR weigh every class equally; ME corpora are heavily imbalanced), else 1."""
  if config.loss.class_balance:
    return losses.balanced_class_weights(train_labels, config.data.num_classes)
  return np.ones(config.data.num_classes, np.float32)


def train_group(config, group: list[Fold | None], source, labels: np.ndarray, fsteps: parallel.FoldSteps,
                writers: dict, progress: tqdm.tqdm | None = None, monitor: 'BestTestRecord | None' = None,
                history: dict | None = None, checkpoints: ckpt.GroupCheckpoints | None = None
                ) -> tuple[train.TrainState, dict[int, dict]]:
  """Trains a group of folds (one per slot; None = idle) for `train.num_steps` lock-step steps; returns the
  stacked final TrainState and the folds that failed, {slot: {'step', 'message', 'last_good_step'}}. Each
  fold draws from its own shuffled stream — the host pipeline's seeded by its number (`HostFeed`), or the
  on-device sampler's keyed by its step key (`DeviceFeed`) — so it trains the same in any group.

  labels: (N,) the corpus's labels in record order (a fold's training labels set its class weights).
  writers: {subject: SummaryWriter} of the folds whose scalars this process writes.
  monitor: the optimistic test-set record, called after every step.
  history: filled with every logged value, {subject: {'step': [...], metric: [...]}} (the report's curves).
  checkpoints: saves the folds as they train; a group with checkpoints continues from its newest complete
    one: state, data iterators, history, optimistic record.

  Guard: at every logging point each fold's metrics are checked; a fold with a non-finite loss or metric
  stops there (its slot then trains on masked batches), keeps its last good checkpoint and is reported.
  """
  keys = [fold_keys(config.seed, fold) for fold in group]
  start = checkpoints.start if checkpoints is not None else 0
  if start:
    state = parallel.stack_states(checkpoints.restore(start), fsteps.state_sharding)
    # Checkpoints (every multiple of the logging interval, `config_checks`) fall where the metric sums
    # restart, so they are not saved: a resumed group starts them from zero, as the step would.
    fresh = jax.eval_shape(fsteps.init, parallel.slot_keys([key for key, _ in keys], fsteps.state_sharding))
    state = state.replace(metric_sums=jax.device_put(
        jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), fresh.metric_sums), fsteps.state_sharding))
  else:
    state = fsteps.init(parallel.slot_keys([key for key, _ in keys], fsteps.state_sharding))
  step_keys = parallel.slot_keys([key for _, key in keys], fsteps.state_sharding)
  real = [s for s, fold in enumerate(group) if fold is not None]
  feed = (DeviceFeed if fsteps.corpus is not None else HostFeed)(config, group, source, labels, fsteps)
  if start:
    feed.restore({s: checkpoints.progress[s].snapshots[start]['data_iterator'] for s in real})
    _restore_records(checkpoints, group, start, history, monitor)
  schedule = train.learning_rate_schedule(config.train)
  failed: dict[int, dict] = {}
  if progress is not None:
    progress.update(start * len(real))
  for step in range(start, config.train.num_steps):
    state, step_metrics = feed.train(state, step_keys, step)
    last = step + 1 == config.train.num_steps
    if (step + 1) % config.train.log_every_steps == 0 or last:
      host_metrics = parallel.to_host(step_metrics)
      for s in _non_finite_slots(host_metrics, [s for s in real if s not in failed]):
        failed[s] = _failure(group[s], step + 1, host_metrics, s,
                             checkpoints.last_saved[s] if checkpoints is not None else 0)
        logging.error(failed[s]['message'])
        feed.stop(s)
        if monitor is not None:
          monitor.skip(s)
      healthy = [None if s in failed else fold for s, fold in enumerate(group)]
      _log_group_metrics(healthy, host_metrics, step + 1, float(schedule(step)), writers, progress, history)
    if progress is not None:
      progress.update(len(real))
    if monitor is not None:
      monitor(step + 1, state)
    if checkpoints is not None and checkpoints.due(step + 1, last):
      healthy_slots = [s for s in real if s not in failed]
      snapshots = {s: {'data_iterator': feed.snapshot(s),
                       'best_test': monitor.best[s] if monitor is not None else None} for s in healthy_slots}
      histories = {s: (history or {}).get(group[s].subject, {}) for s in healthy_slots}
      checkpoints.save(step + 1, parallel.to_host(state), snapshots, histories, healthy_slots)
  return state, failed


class HostFeed:
  """Training batches from the host pipeline (`input_pipeline.train_iterator`): one shuffled stream per
  fold this process feeds, seeded by the fold's number; a stopped fold's slot gets masked batches."""

  def __init__(self, config, group, source, labels, fsteps: parallel.FoldSteps):
    self.fsteps, self.k = fsteps, fsteps.num_slots
    self.example = dict(input_pipeline.example_shapes(config.data, config.train.batch_size),
                        class_weight=np.zeros((config.train.batch_size,), np.float32))
    self.idle = parallel.idle_batch(self.example)
    self.local = parallel.local_slots(fsteps.state_sharding, self.k)   # the slots this process feeds
    self.streams, self.class_weight = {}, {}
    for s in self.local:
      fold = group[s]
      if fold is None:
        continue
      self.streams[s] = input_pipeline.train_iterator(
          source, fold.train_indices, config.data, config.train.batch_size,
          seed=config.seed * 100_003 + fold.number, num_threads=config.data.num_threads,
          normalization=input_pipeline.normalization_for(source, fold.train_indices, config.data))
      self.class_weight[s] = class_weights(config, np.asarray(labels)[fold.train_indices])

  def restore(self, snapshots: dict) -> None:
    """Each stream continues from the position it had reached at the checkpoint."""
    for s, stream in self.streams.items():
      stream.set_state(snapshots[s])

  def train(self, state, step_keys, step: int):
    per_slot = {s: self.idle for s in self.local}
    for s, stream in self.streams.items():
      batch = next(stream)
      per_slot[s] = dict(batch, class_weight=self.class_weight[s][batch['label']])
    batch = parallel.global_batch(per_slot, self.example, self.fsteps.batch_sharding, self.k)
    return self.fsteps.train(state, batch, step_keys, step)

  def stop(self, slot: int) -> None:
    self.streams.pop(slot, None)

  def snapshot(self, slot: int):
    return self.streams[slot].get_state() if slot in self.streams else None


class DeviceFeed:
  """Training batches sampled on the device (`fdp_jax.device_input`) from the step's key: each slot's fold
  is a small table (training records, class weights, normalisation); a stopped fold's table trains on
  nothing. Nothing to snapshot: the key and the step are the sampler's whole state."""

  def __init__(self, config, group, source, labels, fsteps: parallel.FoldSteps):
    self.fsteps = fsteps
    width, num_classes = len(fsteps.corpus.lengths), int(config.data.num_classes)
    self.tables = [device_input.idle_table(width, num_classes) if fold is None else device_input.fold_table(
        fold.train_indices, class_weights(config, np.asarray(labels)[fold.train_indices]),
        input_pipeline.normalization_for(source, fold.train_indices, config.data), width)
        for fold in group]
    self._place()

  def _place(self) -> None:
    self.device_tables = parallel.stack_states(self.tables, self.fsteps.state_sharding)

  def restore(self, snapshots: dict) -> None:
    del snapshots

  def train(self, state, step_keys, step: int):
    return self.fsteps.train_on_device(state, self.device_tables, step_keys, step, self.fsteps.corpus.arrays)

  def stop(self, slot: int) -> None:
    self.tables[slot] = dict(self.tables[slot], active=np.bool_(False))
    self._place()

  def snapshot(self, slot: int):
    return None


def _restore_records(checkpoints: ckpt.GroupCheckpoints, group: list, start: int,
                     history: dict | None, monitor: 'BestTestRecord | None') -> None:
  """What a resumed group had recorded by step `start`: its logged curves and its optimistic record."""
  for s, fold in enumerate(group):
    if fold is None:
      continue
    progress = checkpoints.progress[s]
    if history is not None and progress.history:
      history[fold.subject] = ckpt.history_until(progress.history, start)
    if monitor is not None:
      monitor.best[s] = progress.snapshots[start]['best_test']
  logging.info('folds %s continue from step %d', [f.subject for f in group if f is not None], start)


def _non_finite_slots(metrics_by_slot: dict, slots: Sequence[int]) -> list[int]:
  return [s for s in slots if not all(math.isfinite(float(v[s])) for v in metrics_by_slot.values())]


def _failure(fold: Fold, step: int, metrics_by_slot: dict, s: int, last_good: int) -> dict:
  """The record of a fold stopped by the guard, with a message that says what to do."""
  values = ', '.join(f'{k} {float(v[s]):.4g}' for k, v in sorted(metrics_by_slot.items()))
  message = (f'fold {fold.subject}: non-finite training metrics at step {step} ({values}); training of this '
             'fold stopped, its last good checkpoint is '
             + (f'step {last_good}' if last_good else 'none (it failed before the first one)')
             + '. Rerunning this config fails the same way: lower train.learning_rate (or raise '
               'train.warmup_steps) and start a new run directory.')
  return {'step': step, 'last_good_step': last_good, 'message': message}


def _log_group_metrics(group, metrics_by_slot: dict, step: int, learning_rate: float, writers: dict,
                       progress: tqdm.tqdm | None, history: dict | None) -> None:
  for s, fold in enumerate(group):
    if fold is None:
      continue
    m = {k: float(v[s]) for k, v in metrics_by_slot.items()}
    if history is not None:
      record = history.setdefault(fold.subject, {'step': []})
      record['step'].append(step)
      for k, v in dict(m, learning_rate=learning_rate).items():
        record.setdefault(k, []).append(v)
    if fold.subject in writers:
      for k, v in m.items():
        writers[fold.subject].add_scalar(f'train/{k}', v, step)
      writers[fold.subject].add_scalar('train/learning_rate', learning_rate, step)
    if progress is not None:
      progress.set_postfix(fold=fold.subject, loss=f'{m["loss"]:.3f}', acc=f'{m["accuracy"]:.2f}')
