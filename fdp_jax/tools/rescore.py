"""Re-scores a finished run from its checkpoints and rewrites its results and report.

  python -m fdp_jax.tools.rescore --workdir=runs/20261122-101500-synthetic_me

Each fold's final checkpoint is restored and its held-out subject scored again, in the groups and on the
mesh the run trained with (`timing.json`), so `results.json` comes out identical to the one training wrote
on the same platform, device count and CPU instruction set (elsewhere the last float digits change, and a
warning says so: `fdp_jax.environment`). The optimistic best-test-step record cannot be
recomputed from final checkpoints; it is carried over from the existing `results.json`.
"""

from __future__ import annotations

import tqdm
from absl import flags, logging

from fdp_jax import data_sources, environment, run_results, rundir
from fdp_jax.cv import checkpoints, loso, parallel, selection
from fdp_jax.cv.evaluation import score_group
from fdp_jax.cv.folds import loso_folds
from fdp_jax.tools import common

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command-line flags (defined only when run as a command, so the module imports cleanly)."""
  common.define_run_flag()


def evaluate_run(workdir: str) -> dict:
  """Re-scores every fold of the run in `workdir`; rewrites results.json and the report; returns results."""
  config = rundir.load_config(workdir)
  previous = rundir.read_json(workdir, rundir.RESULTS)
  rundir.record_environment(workdir, environment.current(config), resuming=True, what='re-scored')
  timing = rundir.read_json(workdir, rundir.TIMING)
  source, index, info = data_sources.load_corpus(config.data)
  subjects = [f['subject'] for f in previous['folds']]
  folds = [f for f in loso_folds(index.subjects) if f.subject in subjects]
  if [f.subject for f in folds] != subjects:
    raise ValueError(f'the corpus at {config.data.builder}/{config.data.builder_config} no longer has the '
                     f"run's folds {subjects}")
  # A fold the guard stopped has no final model: its entry is carried over, its slot left idle.
  failed = {f['subject']: f for f in previous['folds'] if f.get('status') == 'failed'}
  by_subject = {}
  if config.cv.selection == 'inner_loso':   # each fold with the candidate it was trained with
    chosen = {f['subject']: f['inner_selection'] for f in previous['folds'] if 'inner_selection' in f}
    for c, overrides in enumerate(selection.candidates(config)):
      subset = [f for f in folds if f.subject in chosen and chosen[f.subject]['chosen'] == c]
      if subset:
        for entry in _rescore(selection.candidate_config(config, overrides), subset, source, index, timing,
                              failed, workdir):
          by_subject[entry['subject']] = dict(entry, inner_selection=chosen[entry['subject']])
    for f in folds:   # failed before any choice was recorded
      by_subject.setdefault(f.subject, failed.get(f.subject))
  else:
    by_subject = {e['subject']: e for e in _rescore(config, folds, source, index, timing, failed, workdir)}
  fold_results = [by_subject[f.subject] for f in folds]
  optimistic = previous.get('optimistic_best_test')
  results = run_results.recognition(
      config, info, index, fold_results,
      {'every_steps': optimistic['every_steps'], 'folds': optimistic['folds']} if optimistic else None)
  results = run_results.extend(workdir, results, run_results.added_sections(previous))
  run_results.write_report(workdir, results)
  return results


def _rescore(config, folds, source, index, timing, failed, workdir: str) -> list[dict]:
  """The folds' results.json entries, each restored from its final checkpoint and scored with `config`."""
  config.cv.parallel_folds = int(timing['parallel_folds'])   # the run's groups: the same numerics
  program = loso.fold_program(config, source, index, len(folds))
  fsteps, template = program.steps, program.template
  fold_results = []
  for group in tqdm.tqdm(parallel.fold_groups(folds, fsteps.num_slots), desc='evaluating', unit='group'):
    active = [None if fold is None or fold.subject in failed else fold for fold in group]
    entries = [None] * len(group)
    if any(active):
      restored = {s: checkpoints.restore_fold(workdir, fold.subject, template)
                  for s, fold in enumerate(active) if fold}
      some = next(iter(restored.values()))                      # idle slots: any state, dropped
      states = [restored.get(s, some) for s in range(len(active))]
      stacked = parallel.stack_states(states, fsteps.state_sharding)
      entries = score_group(config, active, source, index, fsteps, stacked)
    fold_results += [failed.get(fold.subject) or entry for fold, entry in zip(group, entries) if fold is not None]
  return fold_results


def main(argv):
  del argv
  results = common.run_quietly(lambda: evaluate_run(FLAGS.workdir),
                               (FileNotFoundError, data_sources.DatasetNotBuiltError))
  print(run_results.markdown_table(results))
  logging.info('rewrote %s and %s', rundir.path(FLAGS.workdir, rundir.RESULTS),
               rundir.path(FLAGS.workdir, rundir.REPORT))


if __name__ == '__main__':
  common.start(define_flags, main)
