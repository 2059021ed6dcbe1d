"""The one check of a config's argument (`--config=configs/<name>.py:<arg>`), used by every config's
`get_config`: an argument the config does not list stops the launch while flags are parsed — before any
corpus build, compilation or run directory — naming the config file, the argument and the ones it accepts.

A config lists its arguments in a module constant `ARGUMENTS` ({argument: what it runs}; the key None is
the config without an argument) and starts `get_config` with `arguments.check(__file__, arg, ARGUMENTS)`.
An argument that names a builder config of a corpus is listed by `builder_configs(corpus)`, so it is checked
against the builder's own configs.
"""

from __future__ import annotations

import os
from typing import Mapping


class ConfigArgumentError(ValueError):
  """An argument the config does not accept; the message names the file, the argument and the choices."""


def _shown(arg: str | None) -> str:
  return '(none)' if arg is None else repr(arg)


def check(config_file: str, arg: str | None, accepted: Mapping[str | None, str]) -> str | None:
  """`arg` (None or '' = no argument) when `accepted` lists it; ConfigArgumentError otherwise."""
  arg = arg or None
  if arg in accepted:
    return arg
  name = os.path.join('configs', os.path.basename(config_file))
  choices = ', '.join(f'{_shown(a)}: {what}' if what else _shown(a) for a, what in accepted.items())
  raise ConfigArgumentError(f'{name} does not accept the argument {arg!r} (--config={name}:{arg}). It accepts '
                            f'{choices}.')


def builder_configs(corpus: str, default: str) -> dict[str | None, str]:
  """{None: the default builder config, and every builder config of `corpus`}, read from its TFDS builder
  (`datasets/<corpus>/`)."""
  from fdp_jax import data_sources
  configs = data_sources.builder_class(corpus).BUILDER_CONFIGS
  names = [c.name for c in configs]
  if default not in names:
    raise ValueError(f'{default!r} is not a builder config of {corpus}: {names}')
  return {None: f'builder config {default}', **{c.name: '' for c in configs}}
