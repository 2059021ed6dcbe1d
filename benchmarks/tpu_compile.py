"""What a LOSO run's steps cost on a TPU, compiled ahead of time on this (CPU) machine.

  python benchmarks/tpu_compile.py --topology=v5e:2x2 --configs=configs/casme2.py
  python benchmarks/tpu_compile.py                       # v5e:2x2; FDP paper, FDP released, MOL; both routings
                                                         # and both compute dtypes
  python benchmarks/tpu_compile.py --topology=v6e:1x1 --routings=xla --dtypes=bfloat16

Needs libtpu: pip install "jax[tpu]==<the installed jax version>". Each config's fold-parallel train and eval
steps are compiled exactly as the trainer builds them (`fdp_jax.cv.aot.compile_group_steps`: one fold per
device of the topology, or `--folds_per_chip`), at the config's own batch (the released recipes: 36 for
FDP, 32 for MOL). Printed per device (a TPU core for v2/v3, a chip from v4 on): device memory the step
needs (arguments, outputs, temporaries) against the device's HBM, XLA's FLOPs and bytes accessed per step,
and the roofline lower bound of a step, max(FLOPs / peak bfloat16 rate, bytes / HBM bandwidth), with the
public peak figures below. XLA's own time estimate (`optimal_seconds`) is not used: it has come out
negative for whole training steps. One JSON line per compile, then a Markdown table.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Public figures per JAX device: (peak dense bfloat16 FLOP/s, HBM bytes, HBM bytes/s). TPU v2 and v3 show
# each of a chip's two cores as a device, so their figures are half a chip's.
TPU_DEVICES = {
    'TPU v2': (22.5e12, 8 * 2**30, 350e9),
    'TPU v3': (61.5e12, 16 * 2**30, 450e9),
    'TPU v4': (275e12, 32 * 2**30, 1228e9),
    'TPU v5 lite': (197e12, 16 * 2**30, 819e9),      # v5e
    'TPU v5': (459e12, 95 * 2**30, 2765e9),          # v5p
    'TPU v6 lite': (918e12, 32 * 2**30, 1640e9),     # v6e (Trillium)
}


def load_config(path: str):
  """`configs/<name>.py[:arg]` → its ConfigDict."""
  import importlib.util
  path, _, arg = path.partition(':')
  spec = importlib.util.spec_from_file_location('config_module', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg or None)


def measure(topology: str, config_path: str, routing: str, dtype: str, folds_per_chip: int) -> dict:
  from fdp_jax.cv import aot
  devices = aot.tpu_devices(topology)
  config = load_config(config_path)
  config.train.conv_routing, config.train.compute_dtype = routing, dtype
  kind = devices[0].device_kind
  peak, hbm, bandwidth = TPU_DEVICES.get(kind, (None, None, None))
  row = {'topology': topology, 'device_kind': kind, 'devices': len(devices), 'config': config_path,
         'batch': int(config.train.batch_size), 'folds_per_device': folds_per_chip, 'conv_routing': routing,
         'compute_dtype': dtype, 'hbm_gib': round(hbm / 2**30, 1) if hbm else None}
  try:
    fsteps, train, evaluation = aot.compile_group_steps(config, devices, folds_per_chip)
  except Exception as e:   # the compiler refuses a step that cannot fit the chip: that is the finding
    if 'RESOURCE_EXHAUSTED' not in str(e):
      raise
    return dict(row, does_not_fit=str(e).split('RESOURCE_EXHAUSTED: ', 1)[-1].split('\n')[0])
  row.update(model=fsteps.options.family.name, folds=fsteps.num_slots)
  for name, cost in (('train', train), ('eval', evaluation)):
    row[name] = {'gflop': round(cost.flops / 1e9, 1) if cost.flops else None,
                 'gb_accessed': round(cost.bytes_accessed / 1e9, 2) if cost.bytes_accessed else None,
                 'memory_gib': round(cost.memory_bytes / 2**30, 2),
                 'temp_gib': round(cost.temp_bytes / 2**30, 2),
                 'compile_s': round(cost.compile_s, 1)}
    if peak and cost.flops and cost.bytes_accessed:
      compute_ms, memory_ms = cost.flops / peak * 1e3, cost.bytes_accessed / bandwidth * 1e3
      row[name].update(compute_ms=round(compute_ms, 2), memory_ms=round(memory_ms, 2),
                       bound='compute' if compute_ms >= memory_ms else 'memory')
  return row


def table(rows: list[dict]) -> str:
  lines = ['| topology | model | routing | dtype | folds | train GFLOP | train GB | train memory / HBM (GiB) | '
           'roofline ms (compute, memory) | eval memory (GiB) | compile s |',
           '|---|---|---|---|---:|---:|---:|---:|---|---:|---:|']
  for r in rows:
    if 'does_not_fit' in r:
      lines.append(f"| {r['topology']} | {r['config']} | {r['conv_routing']} | {r['compute_dtype']} | | does not fit: "
                   f"{r['does_not_fit']} | | | | | |")
      continue
    t, e = r['train'], r['eval']
    lines.append(f"| {r['topology']} | {r['model']} | {r['conv_routing']} | {r['compute_dtype']} | {r['folds']} | "
                 f"{t['gflop']} | {t['gb_accessed']} | {t['memory_gib']} / {r['hbm_gib']} | "
                 f"{t.get('compute_ms')}, {t.get('memory_ms')} ({t.get('bound')}) | {e['memory_gib']} | "
                 f"{t['compile_s']} + {e['compile_s']} |")
  return '\n'.join(lines)


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--topology', default='v5e:2x2', help='comma-separated, e.g. v5e:2x2,v2:2x2,v5e:1x1,v6e:1x1')
  p.add_argument('--configs', default='configs/casme2.py,configs/casme2_released.py,configs/mol_casme2.py')
  p.add_argument('--routings', default='xla,cpu')
  p.add_argument('--dtypes', default='bfloat16,float32')
  p.add_argument('--folds_per_chip', type=int, default=1)
  p.add_argument('--out', default='', help='also write the rows to this JSON file')
  a = p.parse_args()
  rows = []
  for topology in a.topology.split(','):
    for config in a.configs.split(','):
      for routing in a.routings.split(','):
        for dtype in a.dtypes.split(','):
          rows.append(measure(topology, config, routing, dtype, a.folds_per_chip))
          print(json.dumps(rows[-1]), flush=True)
  if a.out:
    with open(a.out, 'w') as f:
      json.dump(rows, f, indent=1)
  print()
  print(table(rows))


if __name__ == '__main__':
  main()
