"""A tiny LOSO job in its own process that SIGKILLs itself at a chosen point, for the resume tests.

  python tests/resume_job.py DATA_DIR WORKDIR [--die_at=WHAT:N]

WHAT:N kills the process (SIGKILL: no cleanup, no finally blocks) at the N-th occurrence, counted in this
process, of:
  step      a training step has run (mid-fold)
  save      an orbax checkpoint has written its files but not committed them (during a checkpoint save)
  progress  a fold's progress file is about to be written (after its checkpoint, before the record of it)
  eval      an evaluation batch is about to run (the optimistic record's or the final scoring's)
4 folds on 2 fake devices: 2 groups of 2 folds, 6 steps, checkpoints every 2 steps.
"""

import argparse
import os
import signal
import sys

if __name__ == '__main__':
  parser = argparse.ArgumentParser()
  parser.add_argument('data_dir')
  parser.add_argument('workdir')
  parser.add_argument('--die_at', default='')
  args = parser.parse_args()
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  from conftest import resume_job_config, xla_flags
  os.environ['XLA_FLAGS'] = xla_flags(2)
  os.environ['JAX_PLATFORMS'] = 'cpu'

  from fdp_jax import experiment
  from fdp_jax.cv import checkpoints, loso

  def die_on(n, fn):
    """fn, wrapped to SIGKILL this process on its n-th call (before running it)."""
    calls = [0]

    def wrapped(*a, **kw):
      calls[0] += 1
      if calls[0] == n:
        os.kill(os.getpid(), signal.SIGKILL)
      return fn(*a, **kw)
    return wrapped

  if args.die_at:
    what, n = args.die_at.split(':')
    n = int(n)
    if what == 'save':
      from orbax.checkpoint._src.path import atomicity
      finalize = atomicity.AtomicRenameTemporaryPath.finalize
      kill = die_on(n, lambda: None)

      async def finalize_or_die(self):
        kill()
        await finalize(self)
      atomicity.AtomicRenameTemporaryPath.finalize = finalize_or_die
    elif what == 'progress':
      checkpoints.save_progress = die_on(n, checkpoints.save_progress)
    elif what in ('step', 'eval'):
      make = loso.make_group_steps

      def make_group_steps(*a, **kw):
        fsteps = make(*a, **kw)
        if what == 'step':   # the n-th step has run: die before the next one
          return fsteps._replace(train=die_on(n + 1, fsteps.train))
        return fsteps._replace(eval=die_on(n, fsteps.eval))
      loso.make_group_steps = make_group_steps
    else:
      raise SystemExit(f'unknown --die_at {args.die_at}')

  experiment.main(resume_job_config(args.data_dir), args.workdir)
