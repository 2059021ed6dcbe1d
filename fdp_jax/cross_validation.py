"""Leave-one-subject-out cross-validation: folds, the per-fold training loop, and the run's results.

Selection is honest: the model scored on a fold is the one at the end of its schedule. Scores come from
the confusion matrix summed over all folds (`fdp_jax.metrics`).

Run directory layout:
  config.json            the resolved config
  environment.json       seed, software versions, devices and processes (what reproducibility depends on)
  results.json           per fold and `aggregate` (deterministic for a given config and seed)
  timing.json            wall-clock per group of parallel folds (kept out of results.json so results stay
                         reproducible)
  checkpoints/<subject>/ orbax checkpoint of each fold's final state
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

from fdp_jax import checkpointing, data_sources, fold_parallel, input_pipeline, metrics, train
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
                writers: dict, progress: tqdm.tqdm | None = None,
                monitor: Callable[[int, train.TrainState], None] | None = None,
                history: dict | None = None) -> train.TrainState:
  """Trains a group of folds (one per slot; None = idle) from scratch for `train.num_steps` lock-step
  steps; returns the stacked final TrainState. Each fold draws from its own shuffled stream, seeded by
  its number, so it trains the same in any group.

  labels: (N,) the corpus's labels in record order (a fold's training labels set its class weights).
  writers: {subject: SummaryWriter} of the folds whose scalars this process writes.
  monitor: called as monitor(step, state) after every step (e.g. the optimistic test-set record).
  history: filled with every logged value, {subject: {'step': [...], metric: [...]}} (the report's curves).
  """
  k = fsteps.num_slots
  keys = [_fold_keys(config, fold) for fold in group]
  state = fsteps.init(fold_parallel.slot_keys([key for key, _ in keys], fsteps.state_sharding))
  step_keys = fold_parallel.slot_keys([key for _, key in keys], fsteps.state_sharding)
  example = dict(input_pipeline.example_shapes(config.data, config.train.batch_size),
                 class_weight=np.zeros((config.train.batch_size,), np.float32))
  idle = fold_parallel.idle_batch(example)
  streams, class_weight = {}, {}
  local = fold_parallel.local_slots(fsteps.state_sharding, k)   # the slots this process feeds
  for s in local:
    fold = group[s]
    if fold is None:
      continue
    streams[s] = input_pipeline.train_iterator(
        source, fold.train_indices, config.data, config.train.batch_size,
        seed=config.seed * 100_003 + fold.number, num_threads=config.data.num_threads,
        normalization=input_pipeline.normalization_for(source, fold.train_indices, config.data))
    class_weight[s] = class_weights(config, np.asarray(labels)[fold.train_indices])
  schedule = train.learning_rate_schedule(config.train)
  running = sum(fold is not None for fold in group)
  for step in range(config.train.num_steps):
    per_slot = {s: idle for s in local}
    for s, stream in streams.items():
      batch = next(stream)
      per_slot[s] = dict(batch, class_weight=class_weight[s][batch['label']])
    batch = fold_parallel.global_batch(per_slot, example, fsteps.batch_sharding, k)
    state, step_metrics = fsteps.train(state, batch, step_keys, step)
    last = step + 1 == config.train.num_steps
    if (step + 1) % config.train.log_every_steps == 0 or last:
      _log_group_metrics(group, fold_parallel.to_host(step_metrics), step + 1, float(schedule(step)),
                         writers, progress, history)
    if progress is not None:
      progress.update(running)
    if monitor is not None:
      monitor(step + 1, state)
  return state


def _log_group_metrics(group, metrics_by_slot: dict, step: int, learning_rate: float, writers: dict,
                       progress: tqdm.tqdm | None, history: dict | None) -> None:
  for s, fold in enumerate(group):
    if fold is None:
      continue
    m = {k: float(v[s]) for k, v in metrics_by_slot.items()}
    if not all(math.isfinite(v) for v in m.values()):
      raise FloatingPointError(f'fold {fold.subject}: non-finite training metrics at step {step}: {m}')
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
  results = []
  for per_view in zip(*views):
    if per_view[0] is None:
      results.append(None)
      continue
    out = dict(per_view[0])
    for key in ('probabilities', 'flow_epe', 'landmark_nme'):
      if key in out:
        out[key] = np.mean([v[key] for v in per_view], axis=0).astype(out[key].dtype)
    out['prediction'] = np.argmax(out['probabilities'], axis=-1).astype(out['prediction'].dtype)
    results.append(out)
  return results


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
  results = []
  for s, fold in enumerate(group):
    if fold is None:
      results.append(None)
      continue
    out = {key: np.concatenate(v) for key, v in collected[s].items()}
    order = np.argsort(out['index'], kind='stable')
    results.append({key: v[order] for key, v in out.items()})
  return results


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

  def __call__(self, step: int, state: train.TrainState) -> None:
    if step % self.every and step != self.config.train.num_steps:
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


def fold_result(fold: Fold, out: dict, index: data_sources.CorpusIndex, steps_trained: int) -> dict:
  """A fold's entry of results.json from its held-out predictions (`predict_group`)."""
  num_classes = len(index.class_names)
  cm = metrics.confusion_matrix(out['label'], out['prediction'], num_classes)
  return {
      'subject': fold.subject,
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


def _auxiliary_metrics(out: dict) -> dict:
  """MOL's flow end-point error and landmark NME, means over the fold's clips (absent for FDP)."""
  return {key: float(np.mean(out[key])) for key in ('flow_epe', 'landmark_nme') if key in out}


def aggregate(fold_results: Sequence[dict], class_names: Sequence[str]) -> dict:
  """Scores of the confusion matrix summed over folds (never an average of per-fold scores); MOL's flow
  EPE and landmark NME as means over all test clips (each fold's mean weighted by its clip count)."""
  cm = np.sum([np.asarray(f['confusion_matrix']) for f in fold_results], axis=0)
  result = {**metrics.scores_from_confusion(cm), 'num_folds': len(fold_results),
            'confusion_matrix': cm.tolist(), 'per_class': metrics.per_class_scores(cm, class_names)}
  for key in ('flow_epe', 'landmark_nme'):
    if fold_results and all(key in f.get('metrics', {}) for f in fold_results):
      counts = np.array([f['num_test'] for f in fold_results], np.float64)
      result[key] = float(np.dot([f['metrics'][key] for f in fold_results], counts) / counts.sum())
  return result


def markdown_table(results: dict) -> str:
  rows = ['| held-out subject | test clips | accuracy | UF1 | UAR |', '|---|---:|---:|---:|---:|']
  for f in results['folds']:
    m = f['metrics']
    rows.append(f"| {f['subject']} | {f['num_test']} | {m['accuracy']:.3f} | {m['uf1']:.3f} | {m['uar']:.3f} |")
  a = results['aggregate']
  rows.append(f"| **all ({a['num_folds']} folds)** | {a['num_samples']} | **{a['accuracy']:.3f}** | "
              f"**{a['uf1']:.3f}** | **{a['uar']:.3f}** |")
  rows.append('')
  rows.append(f"Aggregate over the summed confusion matrix: UF1 {a['uf1']:.4f}, UAR {a['uar']:.4f}, "
              f"WF1 {a['wf1']:.4f}, WAR {a['war']:.4f}, accuracy {a['accuracy']:.4f} "
              f"(selection: {results['selection']}).")
  if 'flow_epe' in a:
    rows.append(f"MOL auxiliary tasks over all test clips: flow end-point error {a['flow_epe']:.3f} px, "
                f"landmark NME {a['landmark_nme']:.4f} (mean error / inter-pupil distance).")
  if 'optimistic_best_test' in results:
    o = results['optimistic_best_test']['aggregate']
    rows.append(f"OPTIMISTIC, not an estimate (the released rule: each fold's best step chosen on its own "
                f"test set): UF1 {o['uf1']:.4f}, UAR {o['uar']:.4f}, accuracy {o['accuracy']:.4f}.")
  return '\n'.join(rows)


def write_json(path: str, obj) -> None:
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(obj, f, indent=1)
  os.replace(tmp, path)


def check_single_frame_baseline(config) -> None:
  """The 'static' pooling is the single-frame baseline only on raw frames: a frame minus a reference
  of its clip already carries the clip's motion."""
  if (config.model.get('temporal_pooling') == 'static'
      and config.data.get('frame_reference', 'none') != 'none'):
    raise ValueError("model.temporal_pooling='static' is the single-frame baseline: it needs "
                     "data.frame_reference='none' (a frame minus its clip's reference shows the motion). "
                     'Use --config=configs/synthetic.py:static')


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
  return [None if fold is None else fold_result(fold, out, index, steps_trained[s])
          for s, (fold, out) in enumerate(zip(group, outs))]


def results_dict(config, info, index: data_sources.CorpusIndex, fold_results: list[dict],
                 optimistic: dict | None = None) -> dict:
  """results.json: the run's folds and the aggregate of their summed confusion matrix; `optimistic` is
  the released best-test-step record ({'every_steps', 'folds'}), reported beside and labelled."""
  results = {
      'selection': 'end_of_schedule',
      'seed': int(config.seed),
      'dataset': {'name': info.name, 'config': info.config_name, 'version': str(info.version),
                  'num_samples': len(index), 'num_subjects': len(set(index.subjects)),
                  'class_names': list(index.class_names)},
      'folds': fold_results,
      'aggregate': aggregate(fold_results, index.class_names),
  }
  if optimistic and optimistic['folds']:
    results['optimistic_best_test'] = {
        'warning': 'OPTIMISTIC: each fold keeps the step with the best accuracy on its own test set (the '
                   'released selection rule); this is not an estimate of performance on unseen subjects. '
                   'The honest score is `aggregate`.',
        'every_steps': optimistic['every_steps'],
        'folds': optimistic['folds'],
        'aggregate': aggregate(optimistic['folds'], index.class_names),
    }
  return results


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


def run_loso(config, workdir: str) -> dict:
  """Trains and scores every selected LOSO fold, `cv.parallel_folds` at a time; writes the run directory
  (process 0 of a multi-process job); returns results.json's dict."""
  check_single_frame_baseline(config)
  source, index, info = data_sources.load_corpus(config.data)  # first: a corpus not built stops all work
  primary = jax.process_index() == 0
  if len(index.class_names) != config.data.num_classes:
    raise ValueError(f'config.data.num_classes is {config.data.num_classes} but {info.name} has '
                     f'{len(index.class_names)} classes {list(index.class_names)}')
  os.makedirs(workdir, exist_ok=True)
  if primary:
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write(config.to_json_best_effort(indent=1))
    write_json(os.path.join(workdir, 'environment.json'), environment(config))
  folds = select_folds(loso_folds(index.subjects), config.cv.subjects)
  model = build_model(config.model, config.data.num_classes, config.data.image_size)
  fsteps = make_group_steps(config, model, len(folds))
  k, mesh = fsteps.num_slots, fsteps.mesh
  logging.info('%s: %d samples, %d subjects, %d folds to run, %d at a time on a %s mesh', info.full_name,
               len(index), len(set(index.subjects)), len(folds), k, dict(mesh.shape))
  every = int(config.cv.get('best_test_every_steps', 0))
  fold_results, best_test, history = [], [], {}
  timing = {'parallel_folds': k, 'mesh': dict(mesh.shape), 'groups': []}
  total = len(folds) * config.train.num_steps
  with tqdm.tqdm(total=total, desc='LOSO training', unit='fold-step', dynamic_ncols=True,
                 disable=not (config.get('progress_bar', True) and primary)) as progress:
    for group in fold_parallel.fold_groups(folds, k):
      start = time.perf_counter()
      real = [(s, fold) for s, fold in enumerate(group) if fold is not None]
      writers = ({fold.subject: SummaryWriter(os.path.join(workdir, 'tensorboard', fold.subject))
                  for _, fold in real} if primary else {})
      record = (BestTestRecord(config, group, source, fsteps, len(index.class_names), every)
                if every > 0 else None)
      state = train_group(config, group, source, index.labels, fsteps, writers, progress, record, history)
      host_state = fold_parallel.to_host(state)
      if primary:
        for s, fold in real:
          checkpointing.save(checkpointing.fold_manager(workdir, fold.subject),
                             fold_parallel.slot(host_state, s))
      entries = score_group(config, group, source, index, fsteps, state)
      for s, fold in real:
        fold_results.append(entries[s])
        if record is not None:
          best_test.append(record.best[s])
        if fold.subject in writers:
          for key, value in entries[s]['metrics'].items():
            writers[fold.subject].add_scalar(f'eval/{key}', value, config.train.num_steps)
          writers[fold.subject].close()
      timing['groups'].append({'subjects': [fold.subject for _, fold in real],
                               'seconds': round(time.perf_counter() - start, 2)})
  results = results_dict(config, info, index, fold_results,
                         {'every_steps': every, 'folds': best_test} if best_test else None)
  if primary:
    write_json(os.path.join(workdir, 'results.json'), results)
    write_json(os.path.join(workdir, 'timing.json'), timing)
    write_json(os.path.join(workdir, 'train_history.json'), history)
  return results
