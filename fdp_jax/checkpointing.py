"""Per-fold orbax checkpoints: `<workdir>/checkpoints/<subject>/<step>/`."""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp


def fold_manager(workdir: str, subject: str, max_to_keep: int = 1) -> ocp.CheckpointManager:
  """A fold's manager. In a multi-process job only process 0 opens one: the fold-parallel trainer gathers
  every fold's state to the hosts and process 0 writes it (no barrier with the other processes)."""
  path = os.path.join(os.path.abspath(workdir), 'checkpoints', subject)
  multiprocessing = ocp.options.MultiprocessingOptions()
  if jax.process_count() > 1:   # orbax cannot create the folder for a subset of processes
    multiprocessing = ocp.options.MultiprocessingOptions(primary_host=0, active_processes={0})
    os.makedirs(path, exist_ok=True)
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=jax.process_count() == 1,
                                         enable_async_checkpointing=False,
                                         multiprocessing_options=multiprocessing)
  return ocp.CheckpointManager(path, options=options)


def _payload(state) -> dict:
  return {'step': state.step, 'params': state.params, 'batch_stats': state.batch_stats,
          'opt_state': state.opt_state}


def save(manager: ocp.CheckpointManager, state) -> None:
  step = int(jax.device_get(state.step))
  manager.save(step, args=ocp.args.StandardSave(_payload(state)), force=True)
  manager.wait_until_finished()


def restore(manager: ocp.CheckpointManager, state, step: int | None = None):
  """Restores into the structure of `state` (the latest step unless given); None when nothing is saved."""
  step = manager.latest_step() if step is None else step
  if step is None:
    return None
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _payload(state))
  restored = manager.restore(step, args=ocp.args.StandardRestore(abstract))
  return state.replace(step=restored['step'], params=restored['params'],
                       batch_stats=restored['batch_stats'], opt_state=restored['opt_state'])
