"""The run directory: where a run writes what, and how a run is recognised again. No other module spells
these paths.

  config.json             the resolved config
  environment.json        seed, software versions, devices, CPU instruction set, XLA flags: what decides the
                          floats (`fdp_jax.environment`); where a run was continued or re-scored elsewhere
  results.json            per fold and `aggregate` (deterministic for a given config and seed)
  timing.json             wall-clock per group of parallel folds, split into training and scoring (kept out
                          of results.json so that results stay reproducible)
  train_history.json      every logged training value (the report's curves)
  report.md, confusion_matrix.png, training_curves.png    the report (`fdp_jax.run_results`, `fdp_jax.figures`)
  checkpoints/<subject>/  orbax checkpoints of each fold (periodic while it trains; its final state once scored)
  progress/<subject>.json what each fold has done, for resuming (`fdp_jax.cv.checkpoints`)
  tensorboard/<subject>/  scalars for every loss term, train accuracy, learning rate
  selection/<candidate>/  `cv.selection='inner_loso'`: each candidate's inner LOSO run (`fdp_jax.cv.selection`)
  ablation/               a MOL run's MER-only ablation, a run directory of its own (`config.compare_ablation`)
  mol_examples/           a MOL run's held-out clips drawn with their predicted flow and landmarks
  score_curves.npz        a spotting run's per-frame class probabilities of every held-out video
  recognizer/             the recognition run a spotting run trained for itself, a run directory of its own
  timelines/              a spotting run's report figures, one per video
  report.html, review/    a spotting run's review page and its held-out videos re-encoded for it, one per video
                          (`fdp_jax.spotting.review_page`)

results.json is written by `fdp_jax.run_results` only.

Files are written atomically (`write_json`): a reader, or a resumed run, sees the old file or the new one.
"""

from __future__ import annotations

import datetime
import json
import os

import ml_collections

from configs import base
from fdp_jax import environment

CONFIG = 'config.json'
ENVIRONMENT = 'environment.json'
RESULTS = 'results.json'
TIMING = 'timing.json'
HISTORY = 'train_history.json'
REPORT = 'report.md'
CONFUSION_PNG = 'confusion_matrix.png'
CURVES_PNG = 'training_curves.png'
SCORE_CURVES = 'score_curves.npz'
ABLATION_DIR = 'ablation'
RECOGNIZER_DIR = 'recognizer'
SELECTION_DIR = 'selection'
MOL_EXAMPLES_DIR = 'mol_examples'
TIMELINES_DIR = 'timelines'
REVIEW_PAGE = 'report.html'
REVIEW_DIR = 'review'

# Where launch.py puts a run directory when no --workdir is given.
RUNS_ROOT = 'runs'

# Config keys that may differ between the first start of a run and its resumption without changing its
# results: where the corpus lives, console output, reader threads, the recipe's provenance note, and a
# multi-host job's per-process settings.
RESUME_INDEPENDENT = ('progress_bar', 'settings_chosen_on', 'data.data_dir', 'data.num_threads',
                      'cv.coordinator_address', 'cv.process_id')


class RunMismatchError(ValueError):
  """The run directory holds a run with another config: resuming it would mix two experiments."""


def path(workdir: str, name: str) -> str:
  """The path of one of the run's files or folders (`CONFIG`, `RESULTS`, `ABLATION_DIR`, …)."""
  return os.path.join(workdir, name)


def checkpoint_dir(workdir: str, subject: str) -> str:
  """The absolute folder of one fold's orbax checkpoints (orbax wants absolute paths)."""
  return os.path.join(os.path.abspath(workdir), 'checkpoints', subject)


def progress_path(workdir: str, subject: str) -> str:
  return os.path.join(workdir, 'progress', f'{subject}.json')


def tensorboard_dir(workdir: str, subject: str | None = None) -> str:
  return os.path.join(workdir, 'tensorboard', *([subject] if subject else []))


def selection_dir(workdir: str, candidate: int) -> str:
  """The run directory of one candidate's inner LOSO (`cv.selection='inner_loso'`)."""
  return os.path.join(workdir, SELECTION_DIR, f'{candidate}')


def mol_example(subject: str, index: int) -> str:
  """The picture of one held-out clip (its record `index`), relative to the run directory (as results.json
  and report.md name it)."""
  return os.path.join(MOL_EXAMPLES_DIR, f'{subject}_{index}.png')


def timeline(video_id: str) -> str:
  """One video's timeline figure, relative to the run directory (as report.md links it)."""
  return os.path.join(TIMELINES_DIR, video_id.replace('/', '_') + '.png')


def review_video(video_id: str) -> str:
  """One held-out video re-encoded for the review page, relative to the run directory (as the page links it)."""
  return os.path.join(REVIEW_DIR, video_id.replace('/', '_') + '.mp4')


def new_workdir(config, root: str = RUNS_ROOT) -> str:
  """A fresh run directory name under `root`: the start time, then the corpus ('20261122-101500-casme2')."""
  return os.path.join(root, datetime.datetime.now().strftime('%Y%m%d-%H%M%S') + '-' + config.data.builder)


def write_json(file_path: str, obj) -> None:
  """Atomic: a reader (or a resumed run) sees the old file or the new one, never half of one. The temporary
  name is per process, so processes of a multi-host job writing the same file cannot collide."""
  os.makedirs(os.path.dirname(file_path) or '.', exist_ok=True)
  tmp = f'{file_path}.tmp{os.getpid()}'
  with open(tmp, 'w') as f:
    json.dump(obj, f, indent=1)
  os.replace(tmp, file_path)


def read_json(workdir: str, name: str):
  """One of the run's JSON files; FileNotFoundError names the run directory when it is missing."""
  file_path = path(workdir, name)
  if not os.path.exists(file_path):
    raise FileNotFoundError(f'{file_path} not found: {workdir} is not a run directory written by launch.py, '
                            'or that run has not got that far')
  with open(file_path) as f:
    return json.load(f)


def config_json(config) -> dict:
  return json.loads(config.to_json_best_effort())


def write_config(workdir: str, config) -> None:
  os.makedirs(workdir, exist_ok=True)
  with open(path(workdir, CONFIG), 'w') as f:
    f.write(config.to_json_best_effort(indent=1))


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a run was started with, a key its config.json lacks (a run from before that key existed) at
  its neutral default (`configs.base.complete`)."""
  return base.complete(read_json(workdir, CONFIG))


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
  """'key: saved → current' for every key (dotted) whose value differs, RESUME_INDEPENDENT ones aside. A key
  the saved config lacks reads as its neutral default (`configs.base.complete`): a run started before that key
  existed is the same run as long as the current config leaves the key there."""
  a, b = _flatten(config_json(base.complete(saved))), _flatten(current)
  return [f'{key}: {a.get(key, "<absent>")!r} → {b.get(key, "<absent>")!r}'
          for key in sorted(set(a) | set(b))
          if key not in RESUME_INDEPENDENT and a.get(key) != b.get(key)]


def check_same_run(workdir: str, config) -> bool:
  """True when `workdir` already holds a run (to be continued), False when it holds none. Raises
  RunMismatchError, naming the differing keys, when it holds a run with another config."""
  config_path = path(workdir, CONFIG)
  if not os.path.exists(config_path):
    return False
  with open(config_path) as f:
    saved = json.load(f)
  differences = config_differences(saved, config_json(config))
  if differences:
    raise RunMismatchError(
        f'{workdir} holds a run with another config, so it cannot be continued with this one:\n  '
        + '\n  '.join(differences[:20])
        + f'\nPass a new --workdir to start a separate run, or rerun with the config in {config_path} to '
          'continue that one.')
  return True


def find_interrupted_run(runs_root: str, config) -> str | None:
  """The newest run directory under `runs_root` with this config and no results.json (a run that was
  interrupted): rerunning the same command without --workdir continues it."""
  if not os.path.isdir(runs_root):
    return None
  current = config_json(config)
  for name in sorted(os.listdir(runs_root), reverse=True):   # names start with the start time
    workdir = os.path.join(runs_root, name)
    config_path = path(workdir, CONFIG)
    if not os.path.exists(config_path) or os.path.exists(path(workdir, RESULTS)):
      continue
    try:
      with open(config_path) as f:
        saved = json.load(f)
      same = not config_differences(saved, current)
    except (OSError, ValueError, KeyError, AttributeError):   # unreadable, or no config this code wrote
      continue
    if same:
      return workdir
  return None


def record_environment(workdir: str, now: dict, resuming: bool, what: str = 'continued') -> None:
  """environment.json: the first start's environment (`fdp_jax.environment.current`). A run continued
  (`what`: 'continued', or 're-scored' by `fdp_jax.tools.rescore`) in another environment prints one warning that
  names what differs, and that environment is appended once under `resumed_in` (or `rescored_in`)."""
  from absl import logging
  env_path = path(workdir, ENVIRONMENT)
  if not (resuming and os.path.exists(env_path)):
    write_json(env_path, now)
    return
  with open(env_path) as f:
    recorded = json.load(f)
  first = {k: v for k, v in recorded.items() if k not in ('resumed_in', 'rescored_in')}
  changed = environment.differences(first, now)
  if not changed:
    return
  logging.warning(environment.warning(workdir, what, changed))
  key = 'rescored_in' if what == 're-scored' else 'resumed_in'
  if now not in recorded.get(key, []):
    write_json(env_path, dict(recorded, **{key: recorded.get(key, []) + [now]}))


def prepare(workdir: str, config, primary: bool) -> bool:
  """Opens `workdir` for `config`'s run: refuses another config's run there (RunMismatchError), creates the
  folder, writes config.json for a new run and environment.json (process 0). Returns whether an earlier
  start of the same run is continued."""
  resuming = check_same_run(workdir, config)
  os.makedirs(workdir, exist_ok=True)
  if primary and not resuming:
    write_config(workdir, config)
  if primary:
    record_environment(workdir, environment.current(config), resuming)
  return resuming
