"""Trains and scores a model with leave-one-subject-out cross-validation.

  python launch.py                                    # configs/synthetic.py
  python launch.py --config=configs/synthetic.py --config.train.num_steps=50 --workdir=runs/quick

Rerunning an interrupted command continues its run: with --workdir, the run in that folder; without it, the
newest run under runs/ with the same config and no results.json yet.
"""

import re
import sys

from fdp_jax import host_memory

if __name__ == '__main__':
  host_memory.reexec_with_huge_pages()   # before JAX is imported: faster CPU steps (fdp_jax/host_memory.py)

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402



def unknown_key_exit(error: Exception, argv: list[str]) -> None:
  """A one-line error for an override of a key the config does not have: the locked config raises it while
  the flag is defined (config_flags reads the overrides from sys.argv then), as a traceback otherwise."""
  unknown = re.search(r'(\w+)', str(error))   # the message starts with the key, quoted
  given = [a.split('=')[0] for a in argv if a.startswith('--config.')
           and unknown and re.search(rf'\.{unknown.group(1)}(=|$)', a)]
  hint = re.search(r'Did you mean "(\w+)"', str(error))
  sys.exit(f'FATAL Flags parsing error: {", ".join(given) or "a --config override"} names a key the config '
           f'does not have{f" (did you mean {hint.group(1)!r}?)" if hint else ""}. The keys are those of the '
           'config file; list them with --helpfull.')


try:
  config_flags.DEFINE_config_file('config', 'configs/synthetic.py', 'Config file (configs/<name>.py[:arg]).',
                                  lock_config=True)
except (AttributeError, KeyError) as e:
  unknown_key_exit(e, sys.argv)
flags.DEFINE_string('workdir', None, 'Run directory (default: the interrupted run of this config under runs/, '
                    'else a fresh folder there).')
flags.DEFINE_string('compilation_cache', None, "Persistent XLA compilation cache folder (default "
                    "$XDG_CACHE_HOME or ~/.cache, then fdp_jax/xla; '' = off; JAX_COMPILATION_CACHE_DIR wins): a "
                    'rerun of the same shapes, a resumed run included, skips compiling its steps.')
FLAGS = flags.FLAGS


def parse_flags(argv: list[str]) -> list[str]:
  try:
    return FLAGS(argv)
  except (AttributeError, KeyError) as e:   # with --config=<file>, the overrides are applied here
    unknown_key_exit(e, argv)
  except flags.Error as e:
    # A config argument the config does not accept (configs/arguments.py): its one line, not the traceback
    # config_flags wraps it in.
    argument = re.search(r'ConfigArgumentError: (.*)', str(e))
    sys.exit(f'FATAL {argument.group(1)}' if argument else f'FATAL Flags parsing error: {e}\n'
             'Pass --helpshort or --helpfull to see help on flags.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not FLAGS['verbosity'].present:
    # orbax logs every checkpoint step at INFO; keep the console to the progress bar and the results.
    logging.set_verbosity(logging.WARNING)
  from fdp_jax import experiment, rundir  # after flag parsing, so --help is fast
  workdir = FLAGS.workdir
  if workdir is None:
    workdir = rundir.find_interrupted_run(rundir.RUNS_ROOT, FLAGS.config)
    if workdir:
      print(f'Continuing the interrupted run in {workdir} (same config, no results yet); pass --workdir to '
            'start a separate run.', file=sys.stderr)
    else:
      workdir = rundir.new_workdir(FLAGS.config)
  experiment.use_compilation_cache(FLAGS.compilation_cache)
  experiment.main(FLAGS.config, workdir)


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
