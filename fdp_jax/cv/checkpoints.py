"""Per-fold checkpoints and progress files, and where an interrupted run continues.

Checkpoints: orbax, `checkpoints/<subject>/<step>/` of the run directory, the newest KEEP of them. Two are
kept while a fold trains, so that a run killed while saving (or before recording the save in its progress
file) still has a complete earlier checkpoint to continue from; a scored fold keeps only its final one.
Orbax writes a step into a temporary folder renamed only when complete; temporary folders left by a killed
save are removed when the manager opens.

Progress: `progress/<subject>.json` is rewritten atomically after each of the fold's checkpoints and when
the fold is scored or fails:

  status      'training' | 'done' | 'failed'
  snapshots   {step: {'data_iterator': grain iterator state, 'best_test': the optimistic record so far}}, one
              per checkpoint the fold keeps
  history     the logged training values up to the newest snapshot (the report's curves)
  result      the fold's results.json entry, once scored; 'best_test' its optimistic record
  failure     {'step', 'message', 'last_good_step'} of a fold stopped by a non-finite loss

Rerunning the same command (same config, same run directory) continues the run: folds marked done or failed
are not trained again, and an interrupted group of folds restarts from the newest step that every fold of
the group has both a checkpoint and a snapshot of — model, optimiser, step, data iterator, and the record of
the optimistic selection — so its results are those of an uninterrupted run. A save cut short leaves an
orbax temporary folder that is not a checkpoint (and is removed on the next start), or a checkpoint without a
snapshot; both are passed over for the previous step.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Sequence

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from fdp_jax import rundir
from fdp_jax.cv import parallel

KEEP = 2


@dataclasses.dataclass
class FoldProgress:
  subject: str
  status: str = 'training'
  snapshots: dict[int, dict] = dataclasses.field(default_factory=dict)
  history: dict = dataclasses.field(default_factory=dict)
  result: dict | None = None
  best_test: dict | None = None
  failure: dict | None = None

  @property
  def finished(self) -> bool:
    return self.status in ('done', 'failed')


def load_progress(workdir: str, subject: str) -> FoldProgress:
  """The fold's progress file, or a fresh record when the fold has not checkpointed yet."""
  path = rundir.progress_path(workdir, subject)
  if not os.path.exists(path):
    return FoldProgress(subject)
  with open(path) as f:
    raw = json.load(f)
  raw['snapshots'] = {int(step): snap for step, snap in raw.get('snapshots', {}).items()}
  return FoldProgress(**raw)


def save_progress(workdir: str, progress: FoldProgress) -> None:
  rundir.write_json(rundir.progress_path(workdir, progress.subject), dataclasses.asdict(progress))


def add_snapshot(progress: FoldProgress, step: int, snapshot: dict, history: dict, keep: int) -> None:
  """Records the snapshot of a checkpoint just saved at `step`; keeps the newest `keep`, as orbax does."""
  progress.snapshots[step] = snapshot
  for old in sorted(progress.snapshots)[:-keep]:
    del progress.snapshots[old]
  progress.history = history


def resume_step(progresses: Sequence[FoldProgress], checkpoint_steps: Sequence[Sequence[int]]) -> int:
  """The newest step every fold of a group can restart from (a snapshot and a checkpoint); 0 = none."""
  common = None
  for progress, steps in zip(progresses, checkpoint_steps):
    usable = set(progress.snapshots) & set(steps)
    common = usable if common is None else common & usable
  return max(common) if common else 0


def history_until(history: dict, step: int) -> dict:
  """A fold's logged values up to `step` (what an uninterrupted run had logged by then)."""
  if not history:
    return {}
  keep = [i for i, s in enumerate(history['step']) if s <= step]
  return {key: [values[i] for i in keep] for key, values in history.items()}


def fold_manager(workdir: str, subject: str, max_to_keep: int = KEEP) -> ocp.CheckpointManager:
  """A fold's manager. In a multi-process job only process 0 opens one: the fold-parallel trainer gathers
  every fold's state to the hosts and process 0 writes it (no barrier with the other processes)."""
  path = rundir.checkpoint_dir(workdir, subject)
  multiprocessing = ocp.options.MultiprocessingOptions()
  if jax.process_count() > 1:   # orbax cannot create the folder for a subset of processes
    multiprocessing = ocp.options.MultiprocessingOptions(primary_host=0, active_processes={0})
    os.makedirs(path, exist_ok=True)
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=jax.process_count() == 1,
                                         enable_async_checkpointing=False, cleanup_tmp_directories=True,
                                         multiprocessing_options=multiprocessing)
  return ocp.CheckpointManager(path, options=options)


def _payload(state) -> dict:
  payload = {'step': state.step, 'params': state.params, 'batch_stats': state.batch_stats,
             'opt_state': state.opt_state}
  if state.ema_params is not None:
    payload['ema_params'] = state.ema_params
  return payload


def save(manager: ocp.CheckpointManager, state) -> None:
  step = int(jax.device_get(state.step))
  manager.save(step, args=ocp.args.StandardSave(_payload(state)), force=True)
  manager.wait_until_finished()


def discard_after(manager: ocp.CheckpointManager, step: int) -> None:
  """Deletes the checkpoints newer than `step` (a resumed fold trains those steps again)."""
  for newer in [s for s in manager.all_steps() if s > step]:
    manager.delete(newer)


def restore(manager: ocp.CheckpointManager, state, step: int | None = None):
  """Restores into the structure of `state` (the latest step unless given); None when nothing is saved."""
  step = manager.latest_step() if step is None else step
  if step is None:
    return None
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _payload(state))
  restored = manager.restore(step, args=ocp.args.StandardRestore(abstract))
  return state.replace(step=restored['step'], params=restored['params'],
                       batch_stats=restored['batch_stats'], opt_state=restored['opt_state'],
                       ema_params=restored.get('ema_params'))


def restore_fold(workdir: str, subject: str, template):
  """A finished fold's final state (into the abstract single-fold TrainState `template`)."""
  state = restore(fold_manager(workdir, subject), template)
  if state is None:
    raise FileNotFoundError(f'no checkpoint for fold {subject} under {rundir.checkpoint_dir(workdir, subject)}: '
                            'the run did not finish this fold')
  return state


class GroupCheckpoints:
  """The checkpoints and progress files of one group of folds trained together: where
  the group restarts, restoring it there, and saving it as it trains.

  Process 0 writes the checkpoints (the stacked state is gathered to every host); each fold's progress file
  is written by the process that feeds the fold (its data iterator lives there). Every `every` steps and at
  the end of the schedule each healthy fold is saved; a fold that failed keeps its last good checkpoint.
  """

  def __init__(self, workdir: str, group: list, every: int, owned_slots: Sequence[int], template):
    """template: the abstract single-fold TrainState checkpoints restore into."""
    self.workdir, self.group, self.every, self.template = workdir, group, every, template
    self.slots = [s for s, fold in enumerate(group) if fold is not None]
    self.owned = set(owned_slots)
    self.primary = jax.process_index() == 0
    self.managers = ({s: fold_manager(workdir, group[s].subject) for s in self.slots} if self.primary else {})
    self.progress = {s: load_progress(workdir, group[s].subject) for s in self.slots}
    self._start: int | None = None
    self.last_saved = {s: 0 for s in self.slots}

  @property
  def start(self) -> int:
    """The newest step every fold of the group can restart from (0: train from scratch); the checkpoints
    newer than it (a save not recorded in every progress file) are discarded."""
    if self._start is None:
      self._start = self._start_step()
    return self._start

  def _start_step(self) -> int:
    # Every process reads the same progress files: with nothing recorded the group starts afresh and no
    # process needs process 0's view of the checkpoints (no collective).
    recorded = any(self.progress[s].snapshots for s in self.slots)
    step = 0
    if recorded and self.primary:
      step = resume_step([self.progress[s] for s in self.slots],
                                [self.managers[s].all_steps() for s in self.slots])
    if recorded and jax.process_count() > 1:
      parallel.wait_for_all_processes()
      step = int(multihost_utils.broadcast_one_to_all(np.int32(step)))
    for manager in self.managers.values():   # process 0's; e.g. a save made but not recorded
      discard_after(manager, step)
    self.last_saved = {s: step for s in self.slots}
    return step

  def restore(self, step: int) -> list:
    """Every slot's single-fold host state at `step` (idle slots get a copy of the first fold's)."""
    states = []
    for s in range(len(self.group)):
      if self.primary and s in self.managers:
        state = restore(self.managers[s], self.template, step)
        states.append(jax.tree.map(np.asarray, state))
      else:
        states.append(None)
    first = states[self.slots[0]] if self.primary else jax.tree.map(
        lambda x: np.zeros(x.shape, x.dtype), self.template)
    states = [first if st is None else st for st in states]
    if jax.process_count() > 1:
      parallel.wait_for_all_processes()     # process 0 may read checkpoints for long
      states = multihost_utils.broadcast_one_to_all(states)
    return states

  def due(self, step: int, last: bool) -> bool:
    return last or (self.every > 0 and step % self.every == 0)

  def save(self, step: int, host_state, snapshots: dict[int, dict], histories: dict[int, dict],
           healthy: Sequence[int]) -> None:
    """Saves the `healthy` slots of the stacked host state at `step`, then records each save (and the
    fold's data-iterator state and optimistic record, `snapshots[slot]`) in its progress file."""
    for s in healthy:
      if self.primary:
        save(self.managers[s], jax.tree.map(lambda x: x[s], host_state))
      self.last_saved[s] = step
    for s in healthy:
      if s in self.owned:
        add_snapshot(self.progress[s], step, snapshots[s], histories[s], KEEP)
        save_progress(self.workdir, self.progress[s])

  def finish(self, slot: int, status: str, **fields) -> None:
    """Marks a fold done (with its `result`, `best_test`) or failed (with its `failure`)."""
    if status == 'done' and self.primary:   # a scored fold keeps only its final checkpoint
      manager = self.managers[slot]
      for step in manager.all_steps()[:-1]:
        manager.delete(step)
    progress = self.progress[slot]
    progress.status = status
    for key, value in fields.items():
      setattr(progress, key, value)
    if slot in self.owned:
      save_progress(self.workdir, progress)
