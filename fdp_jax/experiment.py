"""What `launch.py` runs: validate the config, run the protocol, print the results table."""

from __future__ import annotations

import os
import sys

import jax
from absl import logging

from fdp_jax import config_checks, data_sources, families, inference, mol_evidence, run_results, rundir
from fdp_jax.cv import loso, parallel, selection
from fdp_jax.spotting import loso as spotting

# What stops a run before any work, with a message that says what to do (no traceback).
STOPS_BEFORE_WORK = (data_sources.DatasetNotBuiltError, config_checks.ConfigError, rundir.RunMismatchError)


DEFAULT_COMPILATION_CACHE = os.path.join(os.environ.get('XDG_CACHE_HOME') or '~/.cache', 'fdp_jax', 'xla')


def use_compilation_cache(path: str | None = None) -> str | None:
  """Makes JAX keep compiled programs in the folder `path` (None = `DEFAULT_COMPILATION_CACHE`, '' = off)
  across processes, so that a rerun, a resumed run or another run of the same shapes loads its
  train/eval/init steps instead of compiling them. A cache set already (JAX_COMPILATION_CACHE_DIR, or
  jax.config) wins. JAX keys every entry on the program, the compile options, XLA flags and the JAX
  version, so a hit is the executable a compile would produce. Returns the folder in use, or None. Call it
  before anything is compiled."""
  path = DEFAULT_COMPILATION_CACHE if path is None else path
  if jax.config.jax_compilation_cache_dir or not path:
    return jax.config.jax_compilation_cache_dir or None
  path = os.path.expanduser(path)
  jax.config.update('jax_compilation_cache_dir', path)
  return path


def check_run(config) -> None:
  """Validates, once and before any work, a spotting config's own keys, then every config the run trains and
  each one's selection candidates (`cv.selection.check`). The configs a run trains: `config` itself; a
  spotting config's recogniser when it trains one (no `recognizer_workdir`); a `compare_ablation` run's
  MER-only ablation (`mol_evidence.without_auxiliary_tasks`). Raises config_checks.ConfigError naming the first
  key that cannot run."""
  if config.task == 'spotting':
    spotting.check_spotting(config)
  configs = [config]
  if config.task == 'spotting' and not config.recognizer_workdir and 'model' in config.recognizer:
    configs.append(config.recognizer)
  if config.compare_ablation:
    configs.append(mol_evidence.without_auxiliary_tasks(config))
  for each in configs:
    candidates = selection.check(each)
    for one in [each] + candidates:
      config_checks.check_before_work(one)


def runs(config, workdir: str) -> list[tuple]:
  """The LOSO runs a recognition config makes, each (config, run directory): its own in `workdir`, then, with
  `compare_ablation`, its MER-only ablation (`mol_evidence.without_auxiliary_tasks`: same data, folds, steps
  and seed) in `workdir/ablation`, a run directory of its own."""
  made = [(config, workdir)]
  if config.compare_ablation:
    made.append((mol_evidence.without_auxiliary_tasks(config), rundir.path(workdir, rundir.ABLATION_DIR)))
  return made


def main(config, workdir: str) -> dict:
  """Runs the protocol in `workdir` (continuing the run already there, if any). Exits with status 1 and a
  message when the config or the corpus cannot run, and after writing everything when a fold failed."""
  try:
    check_run(config)
    parallel.initialize_distributed(config.cv)   # before any JAX computation
    if config.task == 'spotting':
      return _spotting(config, workdir)
    made = runs(config, workdir)
    outcomes = [loso.run_loso(run_config, run_dir) for run_config, run_dir in made]   # each continued like any run
  except STOPS_BEFORE_WORK as e:
    sys.exit(str(e))
  results, primary = outcomes[0], jax.process_index() == 0
  for (ablation, subdir), ablated in zip(made[1:], outcomes[1:]):
    results = run_results.with_ablation(workdir, results, ablation, subdir, ablated, primary)
  if primary:
    added = families.family(config.model).after_folds(config, workdir, results,
                                                      inference.fold_predictor(config, workdir))
    results = run_results.extend(workdir, results, added) if added else results
    path = run_results.write_report(workdir, results)
    print(run_results.console_table(results))
    print(f'Run directory: {workdir} (report: {path}; TensorBoard: tensorboard --logdir '
          f'{rundir.tensorboard_dir(workdir)})')
  logging.info('results written to %s', rundir.path(workdir, rundir.RESULTS))
  failed = results['aggregate']['failed_folds']
  if failed:
    sys.exit(f'{len(failed)} fold(s) failed ({", ".join(failed)}): the aggregate covers the other folds only. '
             f'Each failure, and what to do, is in {rundir.path(workdir, rundir.RESULTS)} under folds[].error.')
  return results


def _spotting(config, workdir: str) -> dict:
  """A spotting config (`config.task='spotting'`): `fdp_jax.spotting.loso`, its report and table."""
  results = spotting.run_spotting(config, workdir)
  if jax.process_index() == 0:
    table = run_results.spotting_table(results)
    path = run_results.write_spotting_report(workdir, results)
    print(table)
    print(f'Run directory: {workdir} (report: {path}; to watch each held-out video with its intervals, open '
          f'{rundir.path(workdir, rundir.REVIEW_PAGE)})')
  if results['failed_folds']:
    sys.exit(f"{len(results['failed_folds'])} spotter fold(s) failed ({', '.join(results['failed_folds'])}): "
             f'the scores cover the other folds only; see {rundir.path(workdir, rundir.RESULTS)}.')
  return results
