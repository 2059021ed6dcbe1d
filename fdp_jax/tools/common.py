"""What the command-line tools that use a finished run share: the flags naming the run and a user's input,
and the body of their `main` (quiet logging, and the errors a user can act on turned into an exit message)."""

from __future__ import annotations

import sys
from typing import Callable, TypeVar

from absl import app, flags, logging

FLAGS = flags.FLAGS
T = TypeVar('T')


def define_run_flag(help_text: str = 'Run directory written by launch.py.') -> None:
  flags.DEFINE_string('workdir', None, help_text, required=True)


def define_input_flags(run_help: str, input_help: str, output_help: str, fold_help: str) -> None:
  """--workdir, --input, --output and --fold: a finished run, a user's input, where the results go, and the
  held-out subject whose model to use."""
  define_run_flag(run_help)
  flags.DEFINE_string('input', None, input_help, required=True)
  flags.DEFINE_string('output', None, output_help, required=True)
  flags.DEFINE_string('fold', '', fold_help)


def run_quietly(work: Callable[[], T], errors: tuple[type[BaseException], ...], prefix: str = '') -> T:
  """`work()` with logging at WARNING unless --verbosity is given (orbax logs every restore at INFO); one of
  `errors` exits with its message after `prefix` instead of a traceback."""
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  try:
    return work()
  except errors as e:
    sys.exit(f'{prefix}{e}')


def start(define_flags: Callable[[], None], main: Callable) -> None:
  """Defines a tool's flags (only when it runs as a command, so that its module imports cleanly) and runs
  its `main`."""
  define_flags()
  app.run(main)
