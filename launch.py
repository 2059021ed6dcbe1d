"""Trains and scores a model with leave-one-subject-out cross-validation.

  python launch.py                                    # configs/synthetic.py
  python launch.py --config=configs/synthetic.py --config.train.num_steps=50 --workdir=runs/quick
"""

import datetime
import os

from fdp_jax import host_memory

if __name__ == '__main__':
  host_memory.reexec_with_huge_pages()   # before JAX is imported: ~25 % faster CPU steps

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

config_flags.DEFINE_config_file('config', 'configs/synthetic.py', 'Config file (configs/<name>.py[:arg]).',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Run directory (default: a fresh folder under runs/).')
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not FLAGS['verbosity'].present:
    # orbax logs every checkpoint step at INFO; keep the console to the progress bar and the results.
    logging.set_verbosity(logging.WARNING)
  from fdp_jax import run  # after flag parsing, so --help is fast
  workdir = FLAGS.workdir or os.path.join(
      'runs', datetime.datetime.now().strftime('%Y%m%d-%H%M%S') + '-' + FLAGS.config.data.builder)
  run.main(FLAGS.config, workdir)


if __name__ == '__main__':
  app.run(main)
