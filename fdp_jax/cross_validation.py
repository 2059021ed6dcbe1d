"""Leave-one-subject-out cross-validation: folds, the per-fold training loop, and the run's results.

Selection is honest: the model scored on a fold is the one at the end of its schedule. Scores come from
the confusion matrix summed over all folds (`fdp_jax.metrics`).

Run directory layout:
  config.json            the resolved config
  results.json           per fold and `aggregate` (deterministic for a given config and seed)
  timing.json            wall-clock per fold (kept out of results.json so results stay reproducible)
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

from fdp_jax import checkpointing, data_sources, input_pipeline, metrics, train
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


def train_fold(config, fold: Fold, source, labels: np.ndarray, steps: train.Steps, workdir: str,
               progress: tqdm.tqdm | None = None,
               monitor: Callable[[int, train.TrainState], None] | None = None) -> train.TrainState:
  """Trains one fold from scratch for `train.num_steps` steps; returns the final TrainState.

  labels: (N,) the corpus's labels in record order (the fold's training labels set the class weights).
  monitor: called as monitor(step, state) after every step (e.g. the optimistic test-set record).
  """
  base_key = jax.random.fold_in(jax.random.key(config.seed), fold.number)
  init_key, step_key = jax.random.split(base_key)
  batches = input_pipeline.train_iterator(
      source, fold.train_indices, config.data, config.train.batch_size,
      seed=config.seed * 100_003 + fold.number, num_threads=config.data.num_threads,
      normalization=input_pipeline.normalization_for(source, fold.train_indices, config.data))
  state = steps.init(init_key)
  writer = SummaryWriter(os.path.join(workdir, 'tensorboard', fold.subject))
  schedule = train.learning_rate_schedule(config.train)
  class_weight = class_weights(config, np.asarray(labels)[fold.train_indices])
  for step in range(config.train.num_steps):
    batch = next(batches)
    batch['class_weight'] = class_weight[batch['label']]
    state, step_metrics = steps.train(state, batch, jax.random.fold_in(step_key, step))
    last = step + 1 == config.train.num_steps
    if (step + 1) % config.train.log_every_steps == 0 or last:
      m = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
      if not all(math.isfinite(v) for v in m.values()):
        raise FloatingPointError(f'fold {fold.subject}: non-finite training metrics at step {step + 1}: {m}')
      for k, v in m.items():
        writer.add_scalar(f'train/{k}', v, step + 1)
      writer.add_scalar('train/learning_rate', float(schedule(step)), step + 1)
      if progress is not None:
        progress.set_postfix(fold=fold.subject, loss=f'{m["loss"]:.3f}', acc=f'{m["accuracy"]:.2f}')
    if progress is not None:
      progress.update(1)
    if monitor is not None:
      monitor(step + 1, state)
  writer.close()
  return state


def predict_fold(config, fold: Fold, source, steps: train.Steps, state: train.TrainState,
                 normalization: tuple[float, float] | None = None) -> dict[str, np.ndarray]:
  """Predictions on the held-out subject, in record order ({'index', 'label', 'prediction',
  'probabilities'}); `normalization` defaults to the test split's own under `data.normalization`."""
  if normalization is None:
    normalization = input_pipeline.normalization_for(source, fold.test_indices, config.data)
  batches = input_pipeline.eval_batches(source, fold.test_indices, config.data, config.eval.batch_size,
                                        normalization)
  out = train.predict(steps.eval, state, batches)
  order = np.argsort(out['index'], kind='stable')
  return {k: v[order] for k, v in out.items()}


class BestTestRecord:
  """The released code's model selection, kept only to be reported *beside* the honest score: every
  `every` steps the fold's test set is scored and the step with the best test accuracy (first one on ties)
  is remembered. Choosing a model on its own test set is optimistic — it is not an estimate of accuracy on
  unseen subjects."""

  def __init__(self, config, fold: Fold, source, steps: train.Steps, num_classes: int, every: int):
    self.config, self.fold, self.source, self.steps = config, fold, source, steps
    self.num_classes, self.every = num_classes, every
    self.normalization = input_pipeline.normalization_for(source, fold.test_indices, config.data)
    self.best: dict | None = None

  def __call__(self, step: int, state: train.TrainState) -> None:
    if step % self.every and step != self.config.train.num_steps:
      return
    out = predict_fold(self.config, self.fold, self.source, self.steps, state, self.normalization)
    cm = metrics.confusion_matrix(out['label'], out['prediction'], self.num_classes)
    accuracy = float(np.trace(cm) / max(cm.sum(), 1))
    if self.best is None or accuracy > self.best['accuracy']:
      self.best = {'subject': self.fold.subject, 'step': step, 'accuracy': accuracy,
                   'confusion_matrix': cm.tolist()}


def evaluate_fold(config, fold: Fold, source, index: data_sources.CorpusIndex, steps: train.Steps,
                  state: train.TrainState) -> dict:
  """Scores the held-out subject; returns the fold's entry of results.json."""
  out = predict_fold(config, fold, source, steps, state)
  num_classes = len(index.class_names)
  cm = metrics.confusion_matrix(out['label'], out['prediction'], num_classes)
  return {
      'subject': fold.subject,
      'num_train': int(len(fold.train_indices)),
      'num_test': int(len(fold.test_indices)),
      'steps': int(jax.device_get(state.step)),
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


def _write_json(path: str, obj) -> None:
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


def run_loso(config, workdir: str) -> dict:
  """Trains and scores every selected LOSO fold; writes the run directory; returns results.json's dict."""
  check_single_frame_baseline(config)
  source, index, info = data_sources.load_corpus(config.data)  # first: a corpus not built stops all work
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    f.write(config.to_json_best_effort(indent=1))
  if len(index.class_names) != config.data.num_classes:
    raise ValueError(f'config.data.num_classes is {config.data.num_classes} but {info.name} has '
                     f'{len(index.class_names)} classes {list(index.class_names)}')
  folds = select_folds(loso_folds(index.subjects), config.cv.subjects)
  model = build_model(config.model, config.data.num_classes, config.data.image_size)
  example = input_pipeline.example_shapes(config.data, config.train.batch_size)
  steps = train.make_steps(model, config.train, loss_weights(config), example)
  logging.info('%s: %d samples, %d subjects, %d folds to run', info.full_name, len(index),
               len(set(index.subjects)), len(folds))
  every = int(config.cv.get('best_test_every_steps', 0))
  fold_results, best_test, timing = [], [], {}
  total = len(folds) * config.train.num_steps
  with tqdm.tqdm(total=total, desc='LOSO training', unit='step', dynamic_ncols=True,
                 disable=not config.get('progress_bar', True)) as progress:
    for fold in folds:
      start = time.perf_counter()
      record = (BestTestRecord(config, fold, source, steps, len(index.class_names), every)
                if every > 0 else None)
      state = train_fold(config, fold, source, index.labels, steps, workdir, progress, record)
      if record is not None:
        best_test.append(record.best)
      checkpointing.save(checkpointing.fold_manager(workdir, fold.subject), state)
      fold_results.append(evaluate_fold(config, fold, source, index, steps, state))
      timing[fold.subject] = round(time.perf_counter() - start, 2)
  results = {
      'selection': 'end_of_schedule',
      'seed': int(config.seed),
      'dataset': {'name': info.name, 'config': info.config_name, 'version': str(info.version),
                  'num_samples': len(index), 'num_subjects': len(set(index.subjects)),
                  'class_names': list(index.class_names)},
      'folds': fold_results,
      'aggregate': aggregate(fold_results, index.class_names),
  }
  if best_test:
    results['optimistic_best_test'] = {
        'warning': 'OPTIMISTIC: each fold keeps the step with the best accuracy on its own test set (the '
                   'released selection rule); this is not an estimate of performance on unseen subjects. '
                   'The honest score is `aggregate`.',
        'every_steps': every,
        'folds': best_test,
        'aggregate': aggregate(best_test, index.class_names),
    }
  _write_json(os.path.join(workdir, 'results.json'), results)
  _write_json(os.path.join(workdir, 'timing.json'), {'fold_seconds': timing})
  return results
