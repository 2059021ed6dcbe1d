"""The leave-one-subject-out protocol, the one entry point of cross-validation: `run_loso` trains and scores
every selected fold, `cv.parallel_folds` at a time, and writes the run directory (`fdp_jax.rundir`).

Selection is honest: the model scored on a fold is the one at the end of its schedule. Scores come from the
confusion matrix summed over all folds (`fdp_jax.scoring`). A run is resumable (`fdp_jax.cv.checkpoints`),
and a fold whose loss turns non-finite is stopped and reported as failed while the others go on.
"""

from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple

import jax
import numpy as np
import tqdm
from absl import logging
from tensorboardX import SummaryWriter

from fdp_jax import (config_checks, data_sources, device_input, families, input_pipeline, run_results, rundir,
                     scoring, train)
from fdp_jax.cv import checkpoints as ckpt
from fdp_jax.cv import parallel, selection
from fdp_jax.cv.evaluation import BestTestRecord, score_group
from fdp_jax.cv.folds import loso_folds, select_folds
from fdp_jax.cv.training import train_group


def group_size(config, num_folds: int, measure: Callable[[int], int | None]) -> int:
  """Folds trained at once: `cv.parallel_folds` (capped at the fold count), or with 0 as many as fit
  (`parallel.auto_group_size`; `measure(K)` is the per-device bytes of a K-fold step)."""
  k = int(config.cv.parallel_folds)
  if k < 0:
    raise ValueError(f'cv.parallel_folds must be ≥ 0 (0 = as many as fit), got {k}')
  if k == 0:
    return parallel.auto_group_size(num_folds, int(config.cv.data_parallel), measure)
  return min(k, num_folds)


def _measure_step_bytes(model, config, example) -> Callable[[int], int | None]:
  """measure(K): per-device bytes of the compiled K-fold train step (for `cv.parallel_folds=0`)."""
  def measure(k: int) -> int | None:
    fsteps = parallel.make_fold_steps(config, model, example, k)
    keys = jax.ShapeDtypeStruct((k,), jax.random.key(0).dtype)
    state = jax.eval_shape(fsteps.init, keys)
    batch = {key: jax.ShapeDtypeStruct((k,) + np.shape(v), np.asarray(v).dtype)
             for key, v in dict(example, class_weight=np.zeros(len(example['label']), np.float32)).items()}
    step = jax.ShapeDtypeStruct((), np.int32)
    return parallel.per_device_bytes(fsteps.train.lower(state, batch, keys, step).compile())
  return measure


def make_group_steps(config, model, example: dict, num_folds: int,
                     clips: dict | None = None) -> parallel.FoldSteps:
  """The run's group size (`cv.parallel_folds`), mesh and jitted group steps for batches like `example`
  (`input_pipeline.example_shapes`; sampling on the device when given the corpus's `clips`)."""
  k = group_size(config, num_folds, _measure_step_bytes(model, config, example))
  return parallel.make_fold_steps(config, model, example, k, clips=clips)


def device_clips(config, source, index) -> dict | None:
  """The corpus's arrays for the on-device input (`device_input.load_clips`) when the run samples on the
  device (`data.on_device`), else None."""
  if not device_input.use_device_input(config.data, index, jax.devices()[0]):
    return None
  clips = device_input.load_clips(source, config.data)
  logging.info('the corpus is on the device: %d clips, %.1f MiB; batches are sampled there', len(index),
               clips['frames'].nbytes / 2**20)
  return clips


def fold_template(config, model, example: dict) -> train.TrainState:
  """The abstract single-fold TrainState a checkpoint restores into (`example`: a training batch's shapes,
  `input_pipeline.example_shapes`)."""
  shapes = {k: jax.ShapeDtypeStruct(example[k].shape, example[k].dtype) for k in ('frames', 'frame_mask')}
  return jax.eval_shape(lambda key: train.create_train_state(model, config.train, shapes, key),
                        jax.random.key(0))


class FoldProgram(NamedTuple):
  """What every fold of a config trains, is scored and restores with, built once for its folds."""
  model: Any                  # the family's Linen module (`families.build_model`)
  steps: parallel.FoldSteps   # the jitted group steps (`make_group_steps`)
  template: train.TrainState  # the abstract single-fold state (`fold_template`)


def fold_program(config, source, index, num_folds: int) -> FoldProgram:
  """The model, group steps and checkpoint template of `config` for `num_folds` folds of the corpus
  (`source`, `index`). The corpus goes to the device first when the steps sample there; the batch shapes are
  derived once, for the steps and the template alike."""
  clips = device_clips(config, source, index)
  model = families.build_model(config.model, config.data.num_classes, config.data.image_size)
  example = input_pipeline.example_shapes(config.data, config.train.batch_size)
  fsteps = make_group_steps(config, model, example, num_folds, clips)
  return FoldProgram(model, fsteps, fold_template(config, model, example))


def open_run(config, workdir: str, index) -> tuple[list, bool]:
  """Opens `config`'s run on its corpus (`index`, loaded): the folds it runs (`cv.subjects`), the config
  checked against the corpus, then the run directory (`rundir.prepare`), so that a config that cannot run on
  this corpus leaves no run directory behind. Returns (folds, whether this is process 0). Every run opens
  here: a LOSO recognition run (`run_loso`) and a spotting run (`fdp_jax.spotting.loso`)."""
  folds = select_folds(loso_folds(index.subjects), config.cv.subjects)
  config_checks.check_against_corpus(config, index)
  primary = jax.process_index() == 0
  rundir.prepare(workdir, config, primary)
  return folds, primary


def run_loso(config, workdir: str) -> dict:
  """Trains and scores every selected LOSO fold, `cv.parallel_folds` at a time; writes the run directory
  (process 0 of a multi-process job); returns results.json's dict. With `cv.selection='inner_loso'` each
  fold's settings are first chosen by LOSO over its training subjects (`fdp_jax.cv.selection`).

  A run directory that already holds this config's run is continued (`fdp_jax.cv.checkpoints`): finished
  folds are read back, an interrupted group restarts from its newest complete checkpoint. `config` has been
  validated (`fdp_jax.experiment.check_run`)."""
  source, index, info = data_sources.load_corpus(config.data)  # first: a corpus not built stops all work
  folds, primary = open_run(config, workdir, index)
  if config.cv.selection == 'inner_loso':
    results_by_subject, best_test, history, timing = _select_then_train(config, folds, source, index, workdir,
                                                                        primary)
  else:
    results_by_subject, best_test, history, timing = train_folds(config, folds, source, index, workdir, primary)
  fold_results = [results_by_subject[fold.subject] for fold in folds]
  optimistic = [best_test[fold.subject] for fold in folds if fold.subject in best_test]
  every = int(config.cv.best_test_every_steps)
  outcome = run_results.recognition(config, info, index, fold_results,
                                    {'every_steps': every, 'folds': optimistic} if optimistic else None)
  if primary:
    run_results.write(workdir, outcome)
    rundir.write_json(rundir.path(workdir, rundir.TIMING), timing)
    rundir.write_json(rundir.path(workdir, rundir.HISTORY),
                      {fold.subject: history[fold.subject] for fold in folds if fold.subject in history})
  return outcome


def _select_then_train(config, folds, source, index, workdir, primary) -> tuple[dict, dict, dict, dict]:
  """`cv.selection='inner_loso'`: every candidate scored by LOSO over each outer fold's training subjects
  (all outer folds' inner folds trained together), then each outer fold trained with its chosen candidate."""
  grid = selection.candidates(config)
  configs = [selection.candidate_config(config, overrides) for overrides in grid]
  inner = selection.inner_folds(folds, index.subjects)
  inner_results, timing, programs = [], {'selection': []}, []
  for c, candidate in enumerate(configs):
    quiet = candidate.copy_and_resolve_references()
    quiet.cv.best_test_every_steps = 0   # the inner runs are for choosing only
    logging.info('selection: candidate %d %s on %d inner folds', c, grid[c] or '(the config)', len(inner))
    # One compiled program per candidate, for its inner folds and then for the outer folds that choose it.
    programs.append(fold_program(candidate, source, index, len(inner)))
    results, _, _, t = train_folds(quiet, inner, source, index, rundir.selection_dir(workdir, c),
                                   primary, desc=f'selection, candidate {c}', program=programs[c])
    inner_results.append(results)
    timing['selection'].append(t)
  choice = selection.choose(folds, inner_results, len(index.class_names))
  results_by_subject, best_test, history, timing['groups'] = {}, {}, {}, []
  for c, candidate in enumerate(configs):
    chosen = [fold for fold in folds if choice[fold.subject]['chosen'] == c]
    if not chosen:
      continue
    results, best, hist, t = train_folds(candidate, chosen, source, index, workdir, primary, program=programs[c])
    results_by_subject.update(results)
    best_test.update(best)
    history.update(hist)
    timing['groups'] += t['groups']
    timing.update({k: v for k, v in t.items() if k != 'groups'})
  for fold in folds:
    results_by_subject[fold.subject] = dict(results_by_subject[fold.subject], inner_selection={
        **choice[fold.subject], 'overrides': grid[choice[fold.subject]['chosen']]})
  return results_by_subject, best_test, history, timing


def train_folds(config, folds, source, index, workdir: str, primary: bool,
                desc: str = 'LOSO training', program: FoldProgram | None = None) -> tuple[dict, dict, dict, dict]:
  """Trains and scores `folds` with `config`, in groups of `cv.parallel_folds`, checkpointing into `workdir`
  (folds finished in an earlier start are read back): (results.json entry, optimistic record and training
  history, each by subject; timing). `program`: this config's `fold_program`, when already built."""
  program = fold_program(config, source, index, len(folds)) if program is None else program
  fsteps, template = program.steps, program.template
  k, mesh = fsteps.num_slots, fsteps.mesh
  logging.info('%d samples, %d subjects, %d folds to run, %d at a time on a %s mesh', len(index),
               len(set(index.subjects)), len(folds), k, dict(mesh.shape))
  every = int(config.cv.best_test_every_steps)
  results_by_subject, best_test, history = {}, {}, {}
  timing = {'parallel_folds': k, 'mesh': dict(mesh.shape), 'groups': []}
  with tqdm.tqdm(total=len(folds) * config.train.num_steps, desc=desc, unit='fold-step',
                 dynamic_ncols=True, disable=not (config.progress_bar and primary)) as progress:
    for group in parallel.fold_groups(folds, k):
      start = time.perf_counter()
      saved = {s: ckpt.load_progress(workdir, fold.subject) for s, fold in enumerate(group) if fold}
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
      checkpoints = ckpt.GroupCheckpoints(
          workdir, active, int(config.cv.checkpoint_every_steps),
          parallel.owned_slots(fsteps.state_sharding, k), template)
      entries, records, resumed_from, seconds = _run_group(config, active, source, index, fsteps, checkpoints,
                                                           every, workdir, primary, progress, history)
      for s, fold in enumerate(active):
        if fold is not None:
          results_by_subject[fold.subject] = entries[s]
          if records[s] is not None:
            best_test[fold.subject] = records[s]
      timing['groups'].append({'subjects': [fold.subject for fold in active if fold is not None],
                               'seconds': round(time.perf_counter() - start, 2), **seconds,
                               **({'resumed_from_step': resumed_from} if resumed_from else {})})
  return results_by_subject, best_test, history, timing


def _run_group(config, group, source, index, fsteps, checkpoints, every, workdir, primary, progress,
               history) -> tuple[list, list, int, dict]:
  """Trains (or continues) and scores one group of folds: (results.json entry per slot, optimistic record
  per slot, the step it continued from, {'train_s', 'eval_s'}: seconds training, compilation included,
  and scoring)."""
  resumed_from = checkpoints.start   # first, on every process: it may be a collective
  writers = {}
  if primary:
    for fold in group:
      if fold is not None:
        # On a resumed fold, TensorBoard drops the scalars logged after the step it continues from.
        writers[fold.subject] = SummaryWriter(rundir.tensorboard_dir(workdir, fold.subject),
                                              purge_step=resumed_from + 1 if resumed_from else None)
  record = (BestTestRecord(config, group, source, fsteps, len(index.class_names), every) if every > 0 else None)
  start = time.perf_counter()
  state, failed = train_group(config, group, source, index.labels, fsteps, writers, progress, record, history,
                              checkpoints)
  jax.block_until_ready(state)
  trained = time.perf_counter()
  healthy = [None if s in failed else fold for s, fold in enumerate(group)]
  entries = score_group(config, healthy, source, index, fsteps, state) if any(healthy) else [None] * len(group)
  seconds = {'train_s': round(trained - start, 2), 'eval_s': round(time.perf_counter() - trained, 2)}
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
  return entries, records, resumed_from, seconds
