"""A tiny LOSO job in its own process, for the fold-parallel tests (the device count must be set before JAX
is imported, so these runs cannot share the test process).

  python tests/fold_parallel_job.py DATA_DIR WORKDIR PARALLEL_FOLDS [--devices=4] [--data_parallel=D]
      [--process_id=I --num_processes=N --coordinator=localhost:PORT [--lag_s=S] [--stall_at_step=N]]

--lag_s: process 1 starts training S seconds after the others (past the 30-s deadline of the cross-process
collectives' own rendezvous: the others must wait for it at `parallel.wait_for_all_processes`).
--stall_at_step: a process stops for good when it is about to record a fold's checkpoint of step N (the
checkpoint is written, its record is not), so that the test can kill the job at a known point.
"""

import argparse
import os
import sys

if __name__ == '__main__':
  parser = argparse.ArgumentParser()
  parser.add_argument('data_dir')
  parser.add_argument('workdir')
  parser.add_argument('parallel_folds', type=int)
  parser.add_argument('--devices', type=int, default=4)
  parser.add_argument('--data_parallel', type=int, default=1)
  parser.add_argument('--process_id', type=int, default=0)
  parser.add_argument('--num_processes', type=int, default=1)
  parser.add_argument('--coordinator', default='')
  parser.add_argument('--lag_s', type=float, default=0.0)
  parser.add_argument('--stall_at_step', type=int, default=0)
  args = parser.parse_args()
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  from conftest import fold_parallel_job_config, xla_flags
  os.environ['XLA_FLAGS'] = xla_flags(args.devices)
  os.environ['JAX_PLATFORMS'] = 'cpu'

  import time

  from fdp_jax import experiment
  from fdp_jax.cv import checkpoints, parallel

  if args.stall_at_step:
    save_progress = checkpoints.save_progress

    def stall_or_save_progress(workdir, progress):
      if args.stall_at_step in progress.snapshots:
        time.sleep(3600)
      save_progress(workdir, progress)
    checkpoints.save_progress = stall_or_save_progress

  config = fold_parallel_job_config(args.data_dir, args.parallel_folds)
  config.cv.data_parallel = args.data_parallel
  if args.num_processes > 1:
    config.cv.distributed = True
    config.cv.coordinator_address = args.coordinator
    config.cv.num_processes = args.num_processes
    config.cv.process_id = args.process_id
    parallel.initialize_distributed(config.cv)   # run.main would; every process must join first
    if args.process_id == 1:
      time.sleep(args.lag_s)
  experiment.main(config, args.workdir)
