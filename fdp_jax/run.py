"""What `launch.py` runs: validate the config, run the protocol, print the results table."""

from __future__ import annotations

import sys

import jax
from absl import logging

from fdp_jax import config_checks, cross_validation, data_sources, fold_parallel, report, resume, scoring

# What stops a run before any work, with a message that says what to do (no traceback).
STOPS_BEFORE_WORK = (data_sources.DatasetNotBuiltError, config_checks.ConfigError, resume.RunMismatchError)


def main(config, workdir: str) -> dict:
  """Runs the protocol in `workdir` (continuing the run already there, if any). Exits with status 1 and a
  message when the config or the corpus cannot run, and after writing everything when a fold failed."""
  try:
    config_checks.check_before_work(config)
    fold_parallel.initialize_distributed(config.cv)   # before any JAX computation
    results = cross_validation.run_loso(config, workdir)
  except STOPS_BEFORE_WORK as e:
    sys.exit(str(e))
  if jax.process_index() == 0:
    path = report.write_report(workdir, results)
    print(scoring.markdown_table(results))
    print(f'Run directory: {workdir} (report: {path}; TensorBoard: tensorboard --logdir {workdir}/tensorboard)')
  logging.info('results written to %s/results.json', workdir)
  failed = results['aggregate']['failed_folds']
  if failed:
    sys.exit(f'{len(failed)} fold(s) failed ({", ".join(failed)}): the aggregate covers the other folds only. '
             f'Each failure, and what to do, is in {workdir}/results.json under folds[].error.')
  return results
