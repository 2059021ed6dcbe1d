"""MOL's evidence on held-out subjects: LOSO runs of `configs/mol_synthetic.py:small` (MOL, then its MER-only
ablation on the same folds, steps and seed) at several seeds, summarised as one table.

  python benchmarks/mol_seeds.py                       # synthetic_me/mol, all folds, seeds 0,1,2
  python benchmarks/mol_seeds.py --seeds=0 --output=/tmp/mol   # any other argument goes to launch.py

Each seed is one `launch.py` run in its own run directory under `--output` (resumable: a finished run is read
back, an interrupted one continues from its checkpoints; a lock file per run lets sweeps started side by side
share them). The tables (Markdown and JSON) are rewritten after every run. They give, per seed and as mean ±
sample standard deviation over the seeds: UF1 and UAR of MOL and of the ablation, the fewest classes any fold
predicts, Welch's p of MOL's per-seed UF1 against the ablation's, the flow end-point error over all pixels and
over the moving pixels (`fdp_jax.metrics.moving_flow_threshold`) beside zero flow, TV-L1 and Farnebäck on
the same clips, and the landmark NME beside the training subjects' mean landmarks and dlib.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ablate import claim, launch, mean_sd, outcome, sweep_parser, welch_p, write_tables  # noqa: E402
from fdp_jax import rundir  # noqa: E402

FLOW = ('flow_epe', 'flow_epe_moving')
REFERENCES = ('zero_flow', 'zero_flow_moving', 'tvl1', 'tvl1_moving', 'farneback', 'farneback_moving',
              'training_mean', 'dlib')


def run_dir(args, seed: int) -> str:
  return os.path.join(args.output, args.builder_config, f'seed{seed}')


def train(args, seed: int, extra: list[str]) -> float | str | None:
  """Runs (or continues) one seed; its wall time, None when it had results, 'elsewhere' when another sweep
  runs it."""
  workdir = run_dir(args, seed)
  results = rundir.path(workdir, rundir.RESULTS)
  if os.path.exists(results) and 'ablation' in json.load(open(results)):
    return None
  if not claim(workdir):
    return 'elsewhere'
  try:
    return launch(args, 'configs/mol_synthetic.py:small', seed, workdir, extra)
  finally:
    os.remove(workdir + '.lock')


def fewest_classes(results: dict) -> int:
  """The fewest distinct classes any finished fold predicts on its held-out subject."""
  return min(len(set(f['predictions'])) for f in results['folds'] if f.get('status') == 'done')


def read_seed(workdir: str) -> dict | None:
  """One finished seed's figures (None while MOL or its ablation is unfinished)."""
  path = rundir.path(workdir, rundir.RESULTS)
  if not os.path.exists(path):
    return None
  results = json.load(open(path))
  ablation_path = rundir.path(rundir.path(workdir, rundir.ABLATION_DIR), rundir.RESULTS)
  if 'ablation' not in results or not os.path.exists(ablation_path):
    return None
  ablation = json.load(open(ablation_path))
  a, b = results['aggregate'], ablation['aggregate']
  refs = results.get('mol_references', {}).get('aggregate', {})
  return {'uf1': a['uf1'], 'uar': a['uar'], 'fewest_classes': fewest_classes(results),
          'ablation_uf1': b['uf1'], 'ablation_uar': b['uar'], 'ablation_fewest_classes': fewest_classes(ablation),
          'num_folds': a['num_folds'], 'landmark_nme': a['landmark_nme'],
          **{key: a.get(key) for key in FLOW}, **{key: refs.get(key) for key in REFERENCES}}


def summarise(args, seeds: list[int]) -> dict:
  runs = {seed: read_seed(run_dir(args, seed)) for seed in seeds}
  done = {seed: run for seed, run in runs.items() if run is not None}
  if not done:
    return {'seeds': []}
  keys = [k for k in next(iter(done.values())) if all(run[k] is not None for run in done.values())]
  out = {'seeds': sorted(done), 'runs': done}
  for key in keys:
    out[key], out[f'{key}_sd'] = mean_sd([float(run[key]) for run in done.values()])
  out['fewest_classes'] = min(run['fewest_classes'] for run in done.values())
  out['ablation_fewest_classes'] = min(run['ablation_fewest_classes'] for run in done.values())
  out['uf1_p'] = welch_p([run['uf1'] for run in done.values()], [run['ablation_uf1'] for run in done.values()])
  return out


def markdown(summary: dict) -> str:
  if not summary['seeds']:
    return 'no finished seed yet\n'
  s, n = summary, len(summary['seeds'])
  pm = lambda key, digits=3: f"{s[key]:.{digits}f} ± {s[key + '_sd']:.{digits}f}"  # noqa: E731
  p = '–' if s['uf1_p'] is None else f"{s['uf1_p']:.2g}"
  lines = [f"Seeds {', '.join(map(str, s['seeds']))} ({n}); mean ± sd over seeds.", '',
           '| | UF1 | UAR | fewest classes a fold predicts |', '|---|---:|---:|---:|',
           f"| MOL | {pm('uf1')} | {pm('uar')} | {s['fewest_classes']} |",
           f"| MER-only ablation | {pm('ablation_uf1')} | {pm('ablation_uar')} | {s['ablation_fewest_classes']} |",
           '', f"MOL − ablation UF1: {s['uf1'] - s['ablation_uf1']:+.3f} (Welch's p {p}).", '',
           '| flow | EPE, all pixels (px) | EPE, moving pixels (px) |', '|---|---:|---:|',
           f"| MOL | {pm('flow_epe', 4)} | {pm('flow_epe_moving', 4)} |"]
  for key, title in (('zero_flow', 'zero flow'), ('tvl1', 'TV-L1'), ('farneback', 'Farnebäck')):
    if key in s:
      lines.append(f"| {title} | {s[key]:.4f} | {s[key + '_moving']:.4f} |")
  lines += ['', '| landmarks | NME |', '|---|---:|', f"| MOL | {pm('landmark_nme', 4)} |"]
  for key, title in (('training_mean', "training subjects' mean"), ('dlib', 'dlib')):
    if key in s:
      lines.append(f'| {title} | {s[key]:.4f} |')
  lines += ['', '| seed | MOL UF1 | UAR | fewest classes | ablation UF1 | UAR | fewest classes | flow EPE | '
            'moving | NME |', '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
  for seed, r in sorted(s['runs'].items()):
    lines.append(f"| {seed} | {r['uf1']:.3f} | {r['uar']:.3f} | {r['fewest_classes']} | {r['ablation_uf1']:.3f} | "
                 f"{r['ablation_uar']:.3f} | {r['ablation_fewest_classes']} | {r['flow_epe']:.4f} | "
                 f"{r['flow_epe_moving']:.4f} | {r['landmark_nme']:.4f} |")
  return '\n'.join(lines) + '\n'


def main():
  args, extra = sweep_parser(__doc__, ('mol', 'mol_dev'), 'mol_seeds').parse_known_args()
  seeds = [int(s) for s in args.seeds.split(',')]
  table = os.path.join(args.output, args.builder_config, 'evidence')
  for seed in seeds:
    wall = train(args, seed, extra)
    summary = summarise(args, seeds)
    write_tables(table, summary, markdown(summary))
    print(f'seed {seed}: {outcome(wall)}', flush=True)
  print(open(table + '.md').read())


if __name__ == '__main__':
  main()
