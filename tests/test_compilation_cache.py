"""launch.py keeps compiled steps in a persistent cache across processes (`experiment.use_compilation_cache`)."""

import os
import subprocess
import sys

from conftest import REPO

_SNIPPET = """
import sys
import jax, jax.numpy as jnp
from fdp_jax import experiment
print(experiment.use_compilation_cache(None if sys.argv[1] == 'default' else sys.argv[1]))
jax.jit(lambda x: jnp.sin(x) * 2 + 1)(jnp.ones(3)).block_until_ready()
"""


def _run(tmp_path, path: str, **env) -> str:
  clean = {k: v for k, v in os.environ.items()
           if k not in ('JAX_COMPILATION_CACHE_DIR', 'XDG_CACHE_HOME')}
  done = subprocess.run([sys.executable, '-c', _SNIPPET, path], cwd=REPO, capture_output=True, text=True,
                        timeout=120, env=dict(clean, HOME=str(tmp_path / 'home'), PYTHONPATH=str(REPO),
                                              JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0', **env))
  assert done.returncode == 0, done.stderr[-2000:]
  return done.stdout.strip().splitlines()[-1]


def _entries(folder) -> list[str]:
  return os.listdir(folder) if os.path.isdir(folder) else []


def test_default_cache_is_written_under_the_users_cache_folder(tmp_path):
  folder = tmp_path / 'home' / '.cache' / 'fdp_jax' / 'xla'
  assert _run(tmp_path, 'default') == str(folder)
  assert _entries(folder)   # the compiled program was stored


def test_empty_path_turns_the_cache_off(tmp_path):
  assert _run(tmp_path, '') == 'None'
  assert not (tmp_path / 'home' / '.cache').exists()


def test_a_cache_the_user_set_wins(tmp_path):
  mine = tmp_path / 'mine'
  assert _run(tmp_path, 'default', JAX_COMPILATION_CACHE_DIR=str(mine)) == str(mine)
  assert _entries(mine) and not (tmp_path / 'home' / '.cache').exists()
  xdg = tmp_path / 'xdg'
  assert _run(tmp_path, 'default', XDG_CACHE_HOME=str(xdg)) == str(xdg / 'fdp_jax' / 'xla')
  assert _entries(xdg / 'fdp_jax' / 'xla')
