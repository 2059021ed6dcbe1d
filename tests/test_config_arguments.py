"""Every config accepts exactly the arguments it lists (`configs/arguments.py`): a bogus one stops before any
work with the file, the argument and the choices; each listed one (and each one its docstring shows) loads."""

import importlib
import os
import re
import subprocess
import sys

import ml_collections
import pytest

from conftest import REPO
from configs import arguments

CONFIGS = sorted(f[:-3] for f in os.listdir(REPO / 'configs') if f.endswith('.py') and f != '__init__.py')
LAUNCHABLE = [name for name in CONFIGS if hasattr(importlib.import_module(f'configs.{name}'), 'get_config')]


def test_every_launchable_config_lists_its_arguments():
  assert len(LAUNCHABLE) >= 18
  for name in LAUNCHABLE:
    module = importlib.import_module(f'configs.{name}')
    assert None in getattr(module, 'ARGUMENTS', {}), f'configs/{name}.py has no ARGUMENTS with None'
    shown = set(re.findall(rf'configs/{name}\.py:(\w+)', module.__doc__ or ''))
    assert shown <= set(module.ARGUMENTS), (name, shown - set(module.ARGUMENTS))


@pytest.mark.parametrize('name', LAUNCHABLE)
def test_bogus_argument_is_refused_and_listed_ones_load(name):
  module = importlib.import_module(f'configs.{name}')
  with pytest.raises(arguments.ConfigArgumentError) as e:
    module.get_config('mer_onyl')
  message = str(e.value)
  assert f'configs/{name}.py' in message and "'mer_onyl'" in message
  for arg in module.ARGUMENTS:
    if arg is not None:
      assert repr(arg) in message
    assert isinstance(module.get_config(arg), ml_collections.ConfigDict), (name, arg)


def test_builder_config_arguments_come_from_the_builder():
  from configs import casme2
  from fdp_jax import data_sources
  names = {c.name for c in data_sources.builder_class('casme2').BUILDER_CONFIGS}
  assert set(casme2.ARGUMENTS) == names | {None}
  assert casme2.get_config('3class_cropped_64').data.builder_config == '3class_cropped_64'


def test_launch_stops_before_any_work(tmp_path):
  env = dict(os.environ, TFDS_DATA_DIR=str(tmp_path / 'tfds'), JAX_PLATFORMS='cpu')
  done = subprocess.run([sys.executable, 'launch.py', '--config=configs/mol_synthetic.py:smal',
                         f'--workdir={tmp_path / "run"}'], cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=120)
  assert done.returncode == 1
  assert done.stderr.strip().splitlines()[-1].startswith(
      "FATAL configs/mol_synthetic.py does not accept the argument 'smal'")
  assert 'Traceback' not in done.stderr and "'mer_only'" in done.stderr and "'small'" in done.stderr
  assert not (tmp_path / 'run').exists() and not (tmp_path / 'tfds').exists()
