"""Huge pages for the host allocator: a quarter or more off every CPU training step.

XLA:CPU allocates each execution's large temporary buffers with malloc, which glibc serves above 32 MB
with fresh mmap'ed memory and returns on free: every step faults its working set in again, 4 KiB at a
time. With glibc's `glibc.malloc.hugetlb=1` tunable, malloc asks for transparent huge pages (madvise), which
cuts the faults about 60-fold (measurements: benchmarks/README.md). Tunables are read when a process starts,
so the entry points re-execute themselves once with it set.
"""

from __future__ import annotations

import os
import platform
import sys

TUNABLE = 'glibc.malloc.hugetlb=1'


def _glibc_supports_hugetlb() -> bool:
  name, version = platform.libc_ver()
  if name != 'glibc' or not version:
    return False
  major, minor = (int(v) for v in version.split('.')[:2])
  return (major, minor) >= (2, 35)   # the hugetlb malloc tunable appeared in glibc 2.35


def reexec_with_huge_pages() -> None:
  """Re-executes the current Python command with GLIBC_TUNABLES=glibc.malloc.hugetlb=1, once.

  Does nothing off Linux/glibc ≥ 2.35, when GLIBC_TUNABLES is already set (the user's choice wins, and it
  stops a second re-exec), or when FDP_JAX_NO_REEXEC is set. Call it before importing JAX.
  """
  if sys.platform != 'linux' or 'GLIBC_TUNABLES' in os.environ or os.environ.get('FDP_JAX_NO_REEXEC'):
    return
  if not _glibc_supports_hugetlb():
    return
  env = dict(os.environ, GLIBC_TUNABLES=TUNABLE)
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
