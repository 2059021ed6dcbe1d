"""What decides a run's floats besides its config and seed, and the warning when a run is continued or
re-scored where that differs.

XLA compiles every step for the machine it runs on. The same config and seed give the same floats, bit for
bit, only with the same jax/jaxlib (and flax, optax) versions, the same platform, device kind and count, the
same XLA flags and, on the CPU, the same instruction set: XLA:CPU generates code for the newest vector
extensions the CPU has, up to `--xla_cpu_max_isa`, and those round differently (fused multiply-adds, the
order of a vectorised sum). Elsewhere the results differ in the last digits, and a prediction whose top two
classes are that close can change.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform

import jax

PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'grain', 'tensorflow-datasets', 'numpy',
            'ml-collections', 'opencv-contrib-python-headless', 'dlib-bin')

# XLA:CPU's instruction-set levels on x86-64 (the values `--xla_cpu_max_isa` takes), oldest first, each with the
# /proc/cpuinfo flag of a CPU that has it.
X86_LEVELS = (('SSE4_2', 'sse4_2'), ('AVX', 'avx'), ('AVX2', 'avx2'), ('AVX512', 'avx512f'),
              ('AVX512_VNNI', 'avx512_vnni'), ('AVX512_BF16', 'avx512_bf16'), ('AMX', 'amx_tile'),
              ('AMX_FP16', 'amx_fp16'))


def _cpuinfo_flags() -> set[str]:
  """The CPU's feature flags as Linux lists them (empty elsewhere)."""
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('flags'):
          return set(line.partition(':')[2].split())
  except OSError:
    pass
  return set()


def xla_max_isa(xla_flags: str | None = None) -> str | None:
  """The value of `--xla_cpu_max_isa` in `xla_flags` (default: $XLA_FLAGS), upper-cased; None when unset
  (the last one counts, as in XLA's own parsing)."""
  value = None
  for flag in (os.environ.get('XLA_FLAGS', '') if xla_flags is None else xla_flags).split():
    name, _, v = flag.partition('=')
    if name == '--xla_cpu_max_isa':
      value = v.upper() or None
  return value


def cpu_instruction_set(xla_flags: str | None = None, cpu_flags: set[str] | None = None,
                        machine: str | None = None) -> str:
  """The instruction-set level XLA:CPU generates code for here: on x86-64 the newest of `X86_LEVELS` the
  CPU has (`cpu_flags`, default /proc/cpuinfo's), capped by `--xla_cpu_max_isa` in `xla_flags` (default
  $XLA_FLAGS); on AArch64 'NEON', XLA's default there; else the machine's name."""
  machine = (machine or platform.machine()).lower()
  cap = xla_max_isa(xla_flags)
  if machine in ('x86_64', 'amd64'):
    cpu_flags = _cpuinfo_flags() if cpu_flags is None else cpu_flags
    names = [name for name, _ in X86_LEVELS]
    own = None
    for name, flag in X86_LEVELS:          # each level needs the ones before it
      if flag not in cpu_flags:
        break
      own = name
    if own is None:
      return cap or 'x86-64 (features unknown)'
    return names[min(names.index(own), names.index(cap))] if cap in names else own
  if machine in ('aarch64', 'arm64'):
    return cap or 'NEON'
  return cap or machine


def current(config) -> dict:
  """environment.json's record of this process: the seed, software versions, devices and, on the CPU, the
  instruction set and XLA flags the steps are compiled with."""
  versions = {}
  for name in PACKAGES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = None
  device = jax.devices()[0]
  on_cpu = device.platform == 'cpu'
  return {'seed': int(config.seed), 'python': platform.python_version(), 'packages': versions,
          'platform': device.platform, 'device_kind': device.device_kind, 'device_count': jax.device_count(),
          'process_count': jax.process_count(),
          'cpu_instruction_set': cpu_instruction_set() if on_cpu else None,
          'xla_flags': os.environ.get('XLA_FLAGS', '')}


def _flatten(record: dict, prefix: str = '') -> dict:
  flat = {}
  for key, value in record.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat


def differences(first: dict, now: dict) -> list[str]:
  """'key: first → now' for every entry (dotted) that differs; an entry a record lacks reads '<absent>'
  (a run started before it was recorded)."""
  a, b = _flatten(first), _flatten(now)
  return [f'{key}: {a.get(key, "<absent>")!r} → {b.get(key, "<absent>")!r}'
          for key in sorted(set(a) | set(b)) if a.get(key, '<absent>') != b.get(key, '<absent>')]


def warning(workdir: str, what: str, changed: list[str]) -> str:
  """The one warning printed when the run in `workdir` is `what` ('continued', 're-scored') in another
  environment."""
  return (f'{workdir} is {what} in another environment than it started in ({"; ".join(changed)}): its '
          'results will not be bit-identical to an uninterrupted run on the first one (XLA rounds '
          'differently across versions, platforms, device counts and CPU instruction sets; predictions '
          'whose top classes are that close can change). It goes on.')
