"""Leave-one-subject-out cross-validation: folds, the per-fold training loop, and the run's results.

Selection is honest: the model scored on a fold is the one at the end of its schedule. Scores come from
the confusion matrix summed over all folds (`fdp_jax.scoring`). A run is resumable (`fdp_jax.resume`), and
a fold whose loss turns non-finite is stopped and reported as failed while the others go on.

Run directory layout:
  config.json            the resolved config
  environment.json       seed, software versions, devices and processes (what reproducibility depends on)
  results.json           per fold and `aggregate` (deterministic for a given config and seed)
  timing.json            wall-clock per group of parallel folds (kept out of results.json so results stay
                         reproducible)
  checkpoints/<subject>/ orbax checkpoints of each fold (periodic while it trains; its final state once scored)
  progress/<subject>.json what each fold has done (for resuming)
  train_history.json     every logged training value (the report's curves)
  tensorboard/<subject>/ scalars for every loss term, train accuracy, learning rate
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Callable, Sequence

import jax
import numpy as np
import tqdm
from absl import logging
from tensorboardX import SummaryWriter

from fdp_jax import (checkpointing, config_checks, data_sources, fold_parallel, input_pipeline, metrics, resume,
                     scoring, train)
from fdp_jax.models import build_model


@dataclasses.dataclass(frozen=True)
class Fold:
  number: int                 # position among all folds (sorted subjects): seeds derive from it
  subject: str                # the held-out subject
  train_indices: np.ndarray
  test_indices: np.ndarray


def loso_folds(subjects: Sequence[str]) -> list[Fold]:
  """One fold per distinct subject (sorted), holding that subject's records out of training."""
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


def loss_weights(config):
  """The configured loss weights; the ranking loss only applies when there is a rank scorer."""
  weights = config.loss.copy_and_resolve_references()
  if config.model.name == 'fdp' and (config.model.get('variant', 'paper') != 'paper'
                                     or config.model.get('temporal_pooling') != 'rank'):
    weights.rank = 0.0
  return weights


def class_weights(config, train_labels: np.ndarray) -> np.ndarray:
  """(C,) cross-entropy weight of each class for a fold: inverse training-set frequency when
  `loss.class_balance` (UF1 and UAR weigh every class equally; ME corpora are heavily imbalanced), else 1."""
  if config.loss.get('class_balance', False):
    return train.balanced_class_weights(train_labels, config.data.num_classes)
  return np.ones(config.data.num_classes, np.float32)


def group_size(config, num_folds: int, measure: Callable[[int], int | None]) -> int:
  """Folds trained at once: `cv.parallel_folds` (capped at the fold count), or with 0 as many as fit
  (`fold_parallel.auto_group_size`; `measure(K)` is the per-device bytes of a K-fold step)."""
  k = int(config.cv.get('parallel_folds', 0))
  if k < 0:
    raise ValueError(f'cv.parallel_folds must be ≥ 0 (0 = as many as fit), got {k}')
  if k == 0:
    return fold_parallel.auto_group_size(num_folds, int(config.cv.get('data_parallel', 1)), measure)
  return min(k, num_folds)


def _fold_keys(config, fold: Fold | None) -> tuple[jax.Array, jax.Array]:
  """(init key, step key) of a fold, from the seed and the fold's number (an idle slot takes fold 0's)."""
  base_key = jax.random.fold_in(jax.random.key(config.seed), fold.number if fold else 0)
  init_key, step_key = jax.random.split(base_key)
  return init_key, step_key


def train_group(config, group: list[Fold | None], source, labels: np.ndarray, fsteps: fold_parallel.FoldSteps,
                writers: dict, progress: tqdm.tqdm | None = None, monitor: 'BestTestRecord | None' = None,
                history: dict | None = None, checkpoints: checkpointing.GroupCheckpoints | None = None
                ) -> tuple[train.TrainState, dict[int, dict]]:
  """Trains a group of folds (one per slot; None = idle) for `train.num_steps` lock-step steps; returns the
  stacked final TrainState and the folds that failed, {slot: {'step', 'message', 'last_good_step'}}. Each
  fold draws from its own shuffled stream, seeded by its number, so it trains the same in any group.

  labels: (N,) the corpus's labels in record order (a fold's training labels set its class weights).
  writers: {subject: SummaryWriter} of the folds whose scalars this process writes.
  monitor: the optimistic test-set record, called after every step.
  history: filled with every logged value, {subject: {'step': [...], metric: [...]}} (the report's curves).
  checkpoints: saves the folds as they train; a group with checkpoints continues from its newest complete
    one: state, data iterators, history, optimistic record.

  Guard: at every logging point each fold's metrics are checked; a fold with a non-finite loss or metric
  stops there (its slot then trains on masked batches), keeps its last good checkpoint and is reported.
  """
  k = fsteps.num_slots
  keys = [_fold_keys(config, fold) for fold in group]
  start = checkpoints.start if checkpoints is not None else 0
  if start:
    state = fold_parallel.stack_states(checkpoints.restore(start), fsteps.state_sharding)
  else:
    state = fsteps.init(fold_parallel.slot_keys([key for key, _ in keys], fsteps.state_sharding))
  step_keys = fold_parallel.slot_keys([key for _, key in keys], fsteps.state_sharding)
  example = dict(input_pipeline.example_shapes(config.data, config.train.batch_size),
                 class_weight=np.zeros((config.train.batch_size,), np.float32))
  idle = fold_parallel.idle_batch(example)
  streams, class_weight = {}, {}
  local = fold_parallel.local_slots(fsteps.state_sharding, k)   # the slots this process feeds
  real = [s for s, fold in enumerate(group) if fold is not None]
  for s in local:
    fold = group[s]
    if fold is None:
      continue
    streams[s] = input_pipeline.train_iterator(
        source, fold.train_indices, config.data, config.train.batch_size,
        seed=config.seed * 100_003 + fold.number, num_threads=config.data.num_threads,
        normalization=input_pipeline.normalization_for(source, fold.train_indices, config.data))
    if start:   # the position this fold's stream had reached at the checkpoint
      streams[s].set_state(checkpoints.progress[s].snapshots[start]['data_iterator'])
    class_weight[s] = class_weights(config, np.asarray(labels)[fold.train_indices])
  if start:
    _restore_records(checkpoints, group, start, history, monitor)
  schedule = train.learning_rate_schedule(config.train)
  failed: dict[int, dict] = {}
  if progress is not None:
    progress.update(start * len(real))
  for step in range(start, config.train.num_steps):
    per_slot = {s: idle for s in local}
    for s, stream in streams.items():
      if s not in failed:
        batch = next(stream)
        per_slot[s] = dict(batch, class_weight=class_weight[s][batch['label']])
    batch = fold_parallel.global_batch(per_slot, example, fsteps.batch_sharding, k)
    state, step_metrics = fsteps.train(state, batch, step_keys, step)
    last = step + 1 == config.train.num_steps
    if (step + 1) % config.train.log_every_steps == 0 or last:
      host_metrics = fold_parallel.to_host(step_metrics)
      for s in _non_finite_slots(host_metrics, [s for s in real if s not in failed]):
        failed[s] = _failure(group[s], step + 1, host_metrics, s,
                             checkpoints.last_saved[s] if checkpoints is not None else 0)
        logging.error(failed[s]['message'])
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
      snapshots = {s: {'data_iterator': streams[s].get_state() if s in streams else None,
                       'best_test': monitor.best[s] if monitor is not None else None} for s in healthy_slots}
      histories = {s: (history or {}).get(group[s].subject, {}) for s in healthy_slots}
      checkpoints.save(step + 1, fold_parallel.to_host(state), snapshots, histories, healthy_slots)
  return state, failed


def _restore_records(checkpoints: checkpointing.GroupCheckpoints, group: list, start: int,
                     history: dict | None, monitor: 'BestTestRecord | None') -> None:
  """What a resumed group had recorded by step `start`: its logged curves and its optimistic record."""
  for s, fold in enumerate(group):
    if fold is None:
      continue
    progress = checkpoints.progress[s]
    if history is not None and progress.history:
      history[fold.subject] = resume.history_until(progress.history, start)
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


def predict_group(config, group: list[Fold | None], source, fsteps: fold_parallel.FoldSteps,
                  state: train.TrainState, normalizations: dict | None = None) -> list[dict | None]:
  """Each fold's predictions on its held-out subject, in record order ({'index', 'label', 'prediction',
  'probabilities'} + MOL's 'flow_epe', 'landmark_nme'); None for idle slots. Folds with fewer test clips
  run masked batches while the others finish. `normalizations` {slot: (shift, scale)} defaults to each
  test split's own under `data.normalization`.

  With `eval.num_views` V > 1 every clip is also sampled at V positions inside its T segments and the
  class probabilities (and MOL's errors) are averaged over the views; the prediction is their argmax."""
  views = [_predict_view(config, group, source, fsteps, state, normalizations, position)
           for position in input_pipeline.view_positions(int(config.eval.get('num_views', 1)))]
  if len(views) == 1:
    return views[0]
  per_fold = []
  for per_view in zip(*views):
    if per_view[0] is None:
      per_fold.append(None)
      continue
    out = dict(per_view[0])
    for key in ('probabilities', 'flow_epe', 'landmark_nme'):
      if key in out:
        out[key] = np.mean([v[key] for v in per_view], axis=0).astype(out[key].dtype)
    out['prediction'] = np.argmax(out['probabilities'], axis=-1).astype(out['prediction'].dtype)
    per_fold.append(out)
  return per_fold


def _predict_view(config, group, source, fsteps, state, normalizations, position) -> list[dict | None]:
  k, bs = fsteps.num_slots, config.eval.batch_size
  example = input_pipeline.example_shapes(config.data, bs)
  idle = fold_parallel.idle_batch(example)
  streams = {}
  local = fold_parallel.local_slots(fsteps.state_sharding, k)
  for s in local:
    fold = group[s]
    if fold is not None:
      norm = (normalizations or {}).get(s) or input_pipeline.normalization_for(source, fold.test_indices,
                                                                                config.data)
      streams[s] = input_pipeline.eval_batches(source, fold.test_indices, config.data, bs, norm, position)
  num_batches = max(math.ceil(len(f.test_indices) / bs) for f in group if f is not None)
  collected: list[dict] = [{} for _ in range(k)]
  for _ in range(num_batches):
    per_slot = {s: idle for s in local}
    for s, stream in streams.items():
      per_slot[s] = next(stream, idle)
    out = fold_parallel.to_host(fsteps.eval(state, fold_parallel.global_batch(per_slot, example,
                                                                               fsteps.batch_sharding, k)))
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


class BestTestRecord:
  """The released code's model selection, kept only to be reported *beside* the honest score: every
  `every` steps each fold's test set is scored and the step with the best test accuracy (first one on
  ties) is remembered. Choosing a model on its own test set is optimistic — it is not an estimate of
  accuracy on unseen subjects."""

  def __init__(self, config, group: list[Fold | None], source, fsteps: fold_parallel.FoldSteps,
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


def _measure_step_bytes(model, config, example) -> Callable[[int], int | None]:
  """measure(K): per-device bytes of the compiled K-fold train step (for `cv.parallel_folds=0`)."""
  def measure(k: int) -> int | None:
    mesh = fold_parallel.make_mesh(k, int(config.cv.get('data_parallel', 1)))
    fsteps = fold_parallel.make_fold_steps(model, config.train, loss_weights(config), example, mesh, k)
    keys = jax.ShapeDtypeStruct((k,), jax.random.key(0).dtype)
    state = jax.eval_shape(fsteps.init, keys)
    batch = {key: jax.ShapeDtypeStruct((k,) + np.shape(v), np.asarray(v).dtype)
             for key, v in dict(example, class_weight=np.zeros(len(example['label']), np.float32)).items()}
    step = jax.ShapeDtypeStruct((), np.int32)
    return fold_parallel.per_device_bytes(fsteps.train.lower(state, batch, keys, step).compile())
  return measure


def score_group(config, group: list[Fold | None], source, index: data_sources.CorpusIndex,
                fsteps: fold_parallel.FoldSteps, state: train.TrainState) -> list[dict | None]:
  """results.json entries of a group's folds (None for idle slots), scored with the stacked `state`."""
  steps_trained = fold_parallel.to_host(state.step)
  outs = predict_group(config, group, source, fsteps, state)
  return [None if fold is None else scoring.fold_result(fold, out, index, steps_trained[s])
          for s, (fold, out) in enumerate(zip(group, outs))]


def make_group_steps(config, model, num_folds: int) -> fold_parallel.FoldSteps:
  """The run's group size (`cv.parallel_folds`), mesh and jitted group steps."""
  example = input_pipeline.example_shapes(config.data, config.train.batch_size)
  k = group_size(config, num_folds, _measure_step_bytes(model, config, example))
  mesh = fold_parallel.make_mesh(k, int(config.cv.get('data_parallel', 1)))
  return fold_parallel.make_fold_steps(model, config.train, loss_weights(config), example, mesh, k)


def environment(config) -> dict:
  """What a run's numbers depend on besides its config: results are bit-for-bit reproducible with the same
  seed, software versions and device layout (float rounding differs across these)."""
  import importlib.metadata
  import platform
  packages = ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'grain', 'tensorflow-datasets', 'numpy',
              'ml-collections', 'opencv-contrib-python-headless', 'dlib-bin')
  versions = {}
  for name in packages:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = None
  device = jax.devices()[0]
  return {'seed': int(config.seed), 'python': platform.python_version(), 'packages': versions,
          'platform': device.platform, 'device_kind': device.device_kind, 'device_count': jax.device_count(),
          'process_count': jax.process_count()}


def fold_template(config, model) -> train.TrainState:
  """The abstract single-fold TrainState a checkpoint restores into."""
  example = input_pipeline.example_shapes(config.data, config.train.batch_size)
  shapes = {k: jax.ShapeDtypeStruct(example[k].shape, example[k].dtype) for k in ('frames', 'frame_mask')}
  return jax.eval_shape(lambda key: train.create_train_state(model, config.train, shapes, key),
                        jax.random.key(0))


def _record_environment(workdir: str, current: dict, resuming: bool) -> None:
  """environment.json: the first start's environment; a resumption in another one is appended under
  `resumed_in` with a warning (its steps round differently from an uninterrupted run's)."""
  path = os.path.join(workdir, 'environment.json')
  if resuming and os.path.exists(path):
    with open(path) as f:
      recorded = json.load(f)
    first = {k: v for k, v in recorded.items() if k != 'resumed_in'}
    if first == current or current in recorded.get('resumed_in', []):
      return
    logging.warning('%s is continued with other software or devices than it started with (see %s): the '
                    'resumed steps may round differently from an uninterrupted run', workdir, path)
    current = dict(recorded, resumed_in=recorded.get('resumed_in', []) + [current])
  resume.write_json(path, current)


def run_loso(config, workdir: str) -> dict:
  """Trains and scores every selected LOSO fold, `cv.parallel_folds` at a time; writes the run directory
  (process 0 of a multi-process job); returns results.json's dict.

  A run directory that already holds this config's run is continued (`fdp_jax.resume`): finished folds are
  read back, an interrupted group restarts from its newest complete checkpoint."""
  config_checks.check_before_work(config)
  source, index, info = data_sources.load_corpus(config.data)  # first: a corpus not built stops all work
  config_checks.check_against_corpus(config, index)
  primary = jax.process_index() == 0
  resuming = resume.check_same_run(workdir, config)
  os.makedirs(workdir, exist_ok=True)
  if primary and not resuming:
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write(config.to_json_best_effort(indent=1))
  if primary:
    _record_environment(workdir, environment(config), resuming)
  folds = select_folds(loso_folds(index.subjects), config.cv.subjects)
  model = build_model(config.model, config.data.num_classes, config.data.image_size)
  fsteps = make_group_steps(config, model, len(folds))
  k, mesh = fsteps.num_slots, fsteps.mesh
  logging.info('%s: %d samples, %d subjects, %d folds to run, %d at a time on a %s mesh', info.full_name,
               len(index), len(set(index.subjects)), len(folds), k, dict(mesh.shape))
  every = int(config.cv.get('best_test_every_steps', 0))
  template = fold_template(config, model)
  results_by_subject, best_test, history = {}, {}, {}
  timing = {'parallel_folds': k, 'mesh': dict(mesh.shape), 'groups': []}
  with tqdm.tqdm(total=len(folds) * config.train.num_steps, desc='LOSO training', unit='fold-step',
                 dynamic_ncols=True, disable=not (config.get('progress_bar', True) and primary)) as progress:
    for group in fold_parallel.fold_groups(folds, k):
      start = time.perf_counter()
      saved = {s: resume.load_progress(workdir, fold.subject) for s, fold in enumerate(group) if fold}
      finished = {s: p for s, p in saved.items() if p.finished}
      for s, p in finished.items():   # done or failed in an earlier start of this run
        results_by_subject[p.subject] = p.result
        if p.best_test is not None:
          best_test[p.subject] = p.best_test
        history[p.subject] = p.history
        progress.update(config.train.num_steps)
      active = [None if fold is None or s in finished else fold for s, fold in enumerate(group)]
      if not any(active):
        timing['groups'].append({'subjects': [p.subject for p in finished.values()], 'seconds': 0.0,
                                 'finished_earlier': True})
        continue
      checkpoints = checkpointing.GroupCheckpoints(
          workdir, active, int(config.cv.checkpoint_every_steps),
          fold_parallel.owned_slots(fsteps.state_sharding, k), template)
      entries, records, resumed_from = _run_group(config, active, source, index, fsteps, checkpoints, every,
                                                  workdir, primary, progress, history)
      for s, fold in enumerate(active):
        if fold is not None:
          results_by_subject[fold.subject] = entries[s]
          if records[s] is not None:
            best_test[fold.subject] = records[s]
      timing['groups'].append({'subjects': [fold.subject for fold in active if fold is not None],
                               'seconds': round(time.perf_counter() - start, 2),
                               **({'resumed_from_step': resumed_from} if resumed_from else {})})
  fold_results = [results_by_subject[fold.subject] for fold in folds]
  optimistic = [best_test[fold.subject] for fold in folds if fold.subject in best_test]
  run_results = scoring.results_dict(config, info, index, fold_results,
                         {'every_steps': every, 'folds': optimistic} if optimistic else None)
  if primary:
    resume.write_json(os.path.join(workdir, 'results.json'), run_results)
    resume.write_json(os.path.join(workdir, 'timing.json'), timing)
    resume.write_json(os.path.join(workdir, 'train_history.json'),
                      {fold.subject: history[fold.subject] for fold in folds if fold.subject in history})
  return run_results


def _run_group(config, group, source, index, fsteps, checkpoints, every, workdir, primary, progress,
               history) -> tuple[list, list, int]:
  """Trains (or continues) and scores one group of folds: (results.json entry per slot, optimistic record
  per slot, the step it continued from)."""
  resumed_from = checkpoints.start   # first, on every process: it may be a collective
  writers = {}
  if primary:
    for fold in group:
      if fold is not None:
        # On a resumed fold, TensorBoard drops the scalars logged after the step it continues from.
        writers[fold.subject] = SummaryWriter(os.path.join(workdir, 'tensorboard', fold.subject),
                                              purge_step=resumed_from + 1 if resumed_from else None)
  record = (BestTestRecord(config, group, source, fsteps, len(index.class_names), every) if every > 0 else None)
  state, failed = train_group(config, group, source, index.labels, fsteps, writers, progress, record, history,
                              checkpoints)
  healthy = [None if s in failed else fold for s, fold in enumerate(group)]
  entries = score_group(config, healthy, source, index, fsteps, state) if any(healthy) else [None] * len(group)
  records = [None] * len(group)
  for s, fold in enumerate(group):
    if fold is None:
      continue
    if s in failed:
      entries[s] = scoring.failed_fold_result(fold, failed[s])
      checkpoints.finish(s, 'failed', failure=failed[s], result=entries[s],
                         history=history.get(fold.subject, {}))
    else:
      records[s] = record.best[s] if record is not None else None
      checkpoints.finish(s, 'done', result=entries[s], best_test=records[s],
                         history=history.get(fold.subject, {}))
      if fold.subject in writers:
        for key, value in entries[s]['metrics'].items():
          writers[fold.subject].add_scalar(f'eval/{key}', value, config.train.num_steps)
    if fold.subject in writers:
      writers[fold.subject].close()
  return entries, records, resumed_from
