"""Wall time of a whole LOSO run, sequential against fold-parallel, for a config and a device count.

  python benchmarks/cv.py                                    # configs/synthetic.py, all devices
  python benchmarks/cv.py --devices=2 --parallel_folds=2     # CPU: 2 fake devices sharing the host's cores
  python benchmarks/cv.py --config=configs/synthetic_released.py:casme2_sized --modes=parallel \\
      -- --config.train.num_steps=500                        # a CASME II-sized LOSO (26 folds) on a GPU

Each mode is one `launch.py` process (compilation, corpus loading and evaluation included: what a user
waits for), with `--config.cv.parallel_folds=1` (sequential) or `=K` (fold-parallel; 0 = as many as fit).
On CPU, `--devices=N` splits the host into N XLA devices (`--xla_force_host_platform_device_count`); they
share its cores, so fold-parallel CPU runs measure the scheduling, not more compute. Arguments after `--`
go to launch.py. The table is printed and written to `--output` as JSON.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from fdp_jax import rundir  # noqa: E402


def run_mode(config: str, parallel_folds: int, devices: int, extra: list[str], workdir: str) -> dict:
  env = dict(os.environ)
  if devices:
    env['XLA_FLAGS'] = (env.get('XLA_FLAGS', '') + f' --xla_force_host_platform_device_count={devices}').strip()
  cmd = [sys.executable, os.path.join(REPO, 'launch.py'), f'--config={config}',
         f'--config.cv.parallel_folds={parallel_folds}', '--config.progress_bar=False', f'--workdir={workdir}',
         *extra]
  start = time.perf_counter()
  proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
  wall = time.perf_counter() - start
  if proc.returncode:
    sys.exit(f'{" ".join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
  with open(rundir.path(workdir, rundir.TIMING)) as f:
    timing = json.load(f)
  with open(rundir.path(workdir, rundir.RESULTS)) as f:
    results = json.load(f)
  return {'parallel_folds': timing['parallel_folds'], 'mesh': timing['mesh'],
          'folds': results['aggregate']['num_folds'], 'wall_s': round(wall, 1),
          'groups_s': round(sum(g['seconds'] for g in timing['groups']), 1),
          'uf1': results['aggregate']['uf1']}


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--config', default='configs/synthetic.py')
  parser.add_argument('--devices', type=int, default=0, help='fake CPU devices (0: the real ones)')
  parser.add_argument('--parallel_folds', type=int, default=0, help='K of the parallel mode (0: as many as fit)')
  parser.add_argument('--modes', default='sequential,parallel')
  parser.add_argument('--output', default='')
  args, extra = parser.parse_known_args()
  extra = [a for a in extra if a != '--']
  rows = {}
  with tempfile.TemporaryDirectory() as tmp:
    for mode in args.modes.split(','):
      k = 1 if mode == 'sequential' else args.parallel_folds
      rows[mode] = run_mode(args.config, k, args.devices, extra, os.path.join(tmp, mode))
      print(f'{mode}: {rows[mode]}', flush=True)
  import jax  # after the runs: only to name the platform
  platform = f'{jax.devices()[0].platform} ({jax.devices()[0].device_kind})'
  print(f'\n{args.config} {" ".join(extra)} on {platform}, devices={args.devices or "all"}')
  print('| mode | folds | K | mesh | wall s | training+eval s | UF1 |\n|---|---:|---:|---|---:|---:|---:|')
  for mode, r in rows.items():
    print(f"| {mode} | {r['folds']} | {r['parallel_folds']} | {r['mesh']} | {r['wall_s']} | {r['groups_s']} | "
          f"{r['uf1']:.4f} |")
  if 'sequential' in rows and 'parallel' in rows:
    print(f"speed-up (wall): {rows['sequential']['wall_s'] / rows['parallel']['wall_s']:.2f}×")
  if args.output:
    with open(args.output, 'w') as f:
      json.dump({'config': args.config, 'extra': extra, 'platform': platform, 'devices': args.devices,
                 'rows': rows}, f, indent=1)


if __name__ == '__main__':
  main()
