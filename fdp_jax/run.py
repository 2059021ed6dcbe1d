"""What `launch.py` runs: validate the config, run the protocol, print the results table."""

from __future__ import annotations

import sys

import jax
from absl import logging

from fdp_jax import cross_validation, data_sources, fold_parallel, report


def main(config, workdir: str) -> dict:
  if config.cv.protocol != 'loso':
    raise ValueError(f"unknown cv.protocol {config.cv.protocol!r}: only 'loso' is implemented")
  fold_parallel.initialize_distributed(config.cv)   # before any JAX computation
  try:
    results = cross_validation.run_loso(config, workdir)
  except data_sources.DatasetNotBuiltError as e:
    sys.exit(str(e))
  if jax.process_index() == 0:
    path = report.write_report(workdir, results)
    print(cross_validation.markdown_table(results))
    print(f'Run directory: {workdir} (report: {path}; TensorBoard: tensorboard --logdir {workdir}/tensorboard)')
  logging.info('results written to %s/results.json', workdir)
  return results
