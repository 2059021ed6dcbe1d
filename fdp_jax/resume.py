"""Resuming an interrupted run: what each fold has done, kept beside its checkpoints.

`<workdir>/progress/<subject>.json` is rewritten atomically after each of the fold's checkpoints and when the
fold is scored or fails:

  status      'training' | 'done' | 'failed'
  snapshots   {step: {'data_iterators': grain iterator state, 'best_test': the optimistic record so far}}, one
              per checkpoint the fold keeps (`checkpointing.KEEP`)
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

# Keys that may differ between the first start of a run and its resumption without changing its results:
# where the corpus lives, console output, reader threads, and a multi-host job's per-process settings.
RESUME_INDEPENDENT = ('progress_bar', 'data.data_dir', 'data.num_threads', 'cv.coordinator_address',
                      'cv.process_id')


class RunMismatchError(ValueError):
  """The run directory holds a run with another config: resuming it would mix two experiments."""


def write_json(path: str, obj) -> None:
  """Atomic: a reader (or a resumed run) sees the old file or the new one, never half of one. The temporary
  name is per process, so processes of a multi-host job writing the same file cannot collide."""
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'w') as f:
    json.dump(obj, f, indent=1)
  os.replace(tmp, path)


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


def progress_path(workdir: str, subject: str) -> str:
  return os.path.join(workdir, 'progress', f'{subject}.json')


def load_progress(workdir: str, subject: str) -> FoldProgress:
  """The fold's progress file, or a fresh record when the fold has not checkpointed yet."""
  path = progress_path(workdir, subject)
  if not os.path.exists(path):
    return FoldProgress(subject)
  with open(path) as f:
    raw = json.load(f)
  raw['snapshots'] = {int(step): snap for step, snap in raw.get('snapshots', {}).items()}
  return FoldProgress(**raw)


def save_progress(workdir: str, progress: FoldProgress) -> None:
  os.makedirs(os.path.join(workdir, 'progress'), exist_ok=True)
  write_json(progress_path(workdir, progress.subject), dataclasses.asdict(progress))


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


def _flatten(tree: dict, prefix: str = '') -> dict:
  flat = {}
  for key, value in tree.items():
    name = f'{prefix}{key}'
    if isinstance(value, dict):
      flat.update(_flatten(value, name + '.'))
    else:
      flat[name] = value
  return flat


def config_differences(saved: dict, current: dict) -> list[str]:
  """'key: saved → current' for every key (dotted) whose value differs, RESUME_INDEPENDENT ones aside."""
  a, b = _flatten(saved), _flatten(current)
  return [f'{key}: {a.get(key, "<absent>")!r} → {b.get(key, "<absent>")!r}'
          for key in sorted(set(a) | set(b))
          if key not in RESUME_INDEPENDENT and a.get(key) != b.get(key)]


def config_json(config) -> dict:
  return json.loads(config.to_json_best_effort())


def check_same_run(workdir: str, config) -> bool:
  """True when `workdir` already holds a run (to be continued), False when it holds none. Raises
  RunMismatchError, naming the differing keys, when it holds a run with another config."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return False
  with open(path) as f:
    saved = json.load(f)
  differences = config_differences(saved, config_json(config))
  if differences:
    raise RunMismatchError(
        f'{workdir} holds a run with another config, so it cannot be continued with this one:\n  '
        + '\n  '.join(differences[:20])
        + f'\nPass a new --workdir to start a separate run, or rerun with the config in {path} to continue '
          'that one.')
  return True


def find_interrupted_run(runs_root: str, config) -> str | None:
  """The newest run directory under `runs_root` with this config and no results.json (a run that was
  interrupted): rerunning the same command without --workdir continues it."""
  if not os.path.isdir(runs_root):
    return None
  current = config_json(config)
  for name in sorted(os.listdir(runs_root), reverse=True):   # names start with the start time
    workdir = os.path.join(runs_root, name)
    path = os.path.join(workdir, 'config.json')
    if not os.path.exists(path) or os.path.exists(os.path.join(workdir, 'results.json')):
      continue
    try:
      with open(path) as f:
        saved = json.load(f)
    except (OSError, json.JSONDecodeError):
      continue
    if not config_differences(saved, current):
      return workdir
  return None
