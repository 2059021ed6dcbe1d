"""The entry points' one-time re-exec with glibc's huge-page malloc tunable."""

import os
import subprocess
import sys

import pytest

from conftest import REPO
from fdp_jax import host_memory

PROBE = ('from fdp_jax import host_memory; host_memory.reexec_with_huge_pages(); '
         'import os; print(os.environ.get("GLIBC_TUNABLES"))')


def _probe(**env_changes):
  env = {k: v for k, v in os.environ.items() if k not in ('GLIBC_TUNABLES', 'FDP_JAX_NO_REEXEC')}
  env.update(env_changes)
  out = subprocess.run([sys.executable, '-c', PROBE], cwd=REPO, env=env, capture_output=True, text=True,
                       check=True)
  return out.stdout.split()


@pytest.mark.skipif(not (sys.platform == 'linux' and host_memory._glibc_supports_hugetlb()),
                    reason='needs Linux with glibc >= 2.35')
def test_reexec_sets_the_tunable_once_and_keeps_the_command():
  assert _probe() == [host_memory.TUNABLE]


def test_user_settings_and_opt_out_are_respected():
  assert _probe(GLIBC_TUNABLES='glibc.malloc.arena_max=2') == ['glibc.malloc.arena_max=2']
  assert _probe(FDP_JAX_NO_REEXEC='1') == ['None']
