"""What each of FDP's parts adds: LOSO runs of the default config with one part removed or replaced, several
seeds each, summarised as mean ± standard deviation of UF1 and UAR.

  python benchmarks/ablate.py                               # synthetic_me/default, all folds, seeds 0,1,2
  python benchmarks/ablate.py --builder_config=dev --folds=s00,s01,s02,s03,s04 --seeds=0
  python benchmarks/ablate.py --only=full,static            # some variants
  python benchmarks/ablate.py --output=/tmp/abl --config.train.num_steps=20   # any other argument goes to launch.py

Every run is one `launch.py` run of `configs/synthetic.py` with the variant's overrides and `--config.seed`
(parameter initialisation, dropout and the order of the training batches), in its own run directory under
`--output`: same steps, schedule and evaluation for all. Folds train as `cv.parallel_folds` says (in parallel
on accelerators). The sweep is resumable: a run with results is read back, an interrupted one continues from
its checkpoints; sweeps started side by side share the runs (a lock file per run). The table (Markdown and
JSON) is rewritten after every run, so a partial sweep shows what it has. Beside UF1 and UAR it gives each
variant's difference from full FDP with the p of Welch's t-test over the seeds, and its last logged training
signals (`fdp_jax.training_signals`, mean over folds and seeds): the rank scorer's Kendall τ with frame order
and the decoder's unexplained share of the dynamic images.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from scipy import stats

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from fdp_jax import rundir  # noqa: E402

# name -> (what differs from full FDP, config argument, launch.py overrides)
VARIANTS = {
    'full': ('FDP as configured: rank scorer + ranking loss, rank pooling, dynamic-image decoder', '', []),
    'no_rank_loss': ('no ranking loss (the scorer still modulates the features)', '', ['--config.loss.rank=0.0']),
    'no_di_loss': ('no dynamic-image loss (the decoder is not trained)', '', ['--config.loss.dynamic_image=0.0']),
    'arp': ('plain approximate rank pooling of the frame features, no scorer', '',
            ['--config.model.temporal_pooling=arp']),
    'conv3d_released': ("the release's Conv3d temporal pooling instead of rank pooling", '',
                        ['--config.model.temporal_pooling=conv3d_released']),
    'static': ('the centre frame only, raw (`configs/synthetic.py:static`)', ':static', []),
}
SIGNALS = ('rank_tau', 'di_unexplained')


def run_dir(args, variant: str, seed: int) -> str:
  return os.path.join(args.output, args.builder_config, variant, f'seed{seed}')


def claim(workdir: str) -> bool:
  """Whether this process may run `workdir`: a lock file beside it holds the PID of the sweep running it, so
  several sweeps started at once (on a machine with cores to spare) share the runs instead of repeating them."""
  lock = workdir + '.lock'
  os.makedirs(os.path.dirname(lock), exist_ok=True)
  try:
    fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
  except FileExistsError:
    try:
      os.kill(int(open(lock).read() or 0), 0)
      return False                                    # a live sweep has it
    except (ProcessLookupError, ValueError):
      os.remove(lock)                                 # left by a sweep that was stopped
      return claim(workdir)
  os.write(fd, str(os.getpid()).encode())
  os.close(fd)
  return True


def train(args, variant: str, seed: int, extra: list[str]) -> float | str | None:
  """Runs (or continues) one variant × seed; returns its wall time, None when it had results already,
  'elsewhere' when another sweep is running it."""
  workdir = run_dir(args, variant, seed)
  if os.path.exists(rundir.path(workdir, rundir.RESULTS)):
    return None
  if not claim(workdir):
    return 'elsewhere'
  try:
    return _launch(args, variant, seed, extra, workdir)
  finally:
    os.remove(workdir + '.lock')


def _launch(args, variant: str, seed: int, extra: list[str], workdir: str) -> float:
  _, argument, overrides = VARIANTS[variant]
  wall = launch(args, f'configs/synthetic.py{argument}', seed, workdir, [*overrides, *extra])
  with open(os.path.join(workdir, 'ablation_wall_s.txt'), 'w') as f:
    f.write(f'{wall:.1f}\n')
  return wall


def launch(args, config: str, seed: int, workdir: str, arguments: list[str]) -> float:
  """Runs launch.py on `config` at `seed` with the sweep's corpus and held-out subjects, writing `workdir`,
  `arguments` last; its wall time in seconds (exits with launch.py's output when it fails)."""
  cmd = [sys.executable, os.path.join(REPO, 'launch.py'), f'--config={config}', '--config.progress_bar=False',
         f'--config.seed={seed}', f'--config.data.builder_config={args.builder_config}', f'--workdir={workdir}',
         *arguments]
  if args.folds != 'all':
    cmd.append(f'--config.cv.subjects={args.folds}')
  start = time.perf_counter()
  proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
  if proc.returncode:
    sys.exit(f'{" ".join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
  return time.perf_counter() - start


def read_run(workdir: str) -> dict | None:
  """UF1, UAR, wall time and the last logged training signals (mean over folds) of a finished run."""
  if not os.path.exists(rundir.path(workdir, rundir.RESULTS)):
    return None
  with open(rundir.path(workdir, rundir.RESULTS)) as f:
    aggregate = json.load(f)['aggregate']
  row = {'uf1': aggregate['uf1'], 'uar': aggregate['uar'], 'num_folds': aggregate['num_folds']}
  with open(rundir.path(workdir, rundir.HISTORY)) as f:
    history = json.load(f)
  for key in SIGNALS:
    last = [fold[key][-1] for fold in history.values() if fold.get(key)]
    row[key] = statistics.fmean(last) if last else None
  wall = os.path.join(workdir, 'ablation_wall_s.txt')
  row['wall_s'] = float(open(wall).read()) if os.path.exists(wall) and not resumed(workdir) else None
  return row


def resumed(workdir: str) -> bool:
  """Whether the run's last launch continued earlier work (its wall time then covers only the rest)."""
  with open(rundir.path(workdir, rundir.TIMING)) as f:
    groups = json.load(f)['groups']
  return any(group.get('finished_earlier') or group.get('resumed_from_step') for group in groups)


def mean_sd(values: list[float]) -> tuple[float, float]:
  """Mean and sample standard deviation (0 for one value)."""
  return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(args, variants: list[str], seeds: list[int]) -> dict:
  rows = {}
  for variant in variants:
    runs = {seed: read_run(run_dir(args, variant, seed)) for seed in seeds}
    done = {seed: run for seed, run in runs.items() if run is not None}
    if not done:
      continue
    row = {'setting': VARIANTS[variant][0], 'seeds': sorted(done), 'runs': done}
    for key in ('uf1', 'uar'):
      row[key], row[f'{key}_sd'] = mean_sd([run[key] for run in done.values()])
    for key in SIGNALS:
      values = [run[key] for run in done.values() if run[key] is not None]
      row[key] = statistics.fmean(values) if values else None
    walls = [run['wall_s'] for run in done.values() if run['wall_s']]
    row['wall_s'] = statistics.fmean(walls) if walls else None
    rows[variant] = row
  full = rows.get('full')
  for variant, row in rows.items():
    row['uf1_p'] = None if variant == 'full' or full is None else welch_p(
        [run['uf1'] for run in row['runs'].values()], [run['uf1'] for run in full['runs'].values()])
  return rows


def welch_p(a: list[float], b: list[float]) -> float | None:
  """Two-sided p of Welch's t-test that two variants' per-seed scores share a mean (None below 2 seeds each
  or with no spread at all): with 3 seeds only a difference several spreads wide reads as one."""
  if len(a) < 2 or len(b) < 2 or statistics.stdev(a) + statistics.stdev(b) == 0:
    return None
  return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def markdown(args, rows: dict, seeds: list[int]) -> str:
  folds = 'all subjects' if args.folds == 'all' else args.folds
  lines = [f'FDP ablation on `synthetic_me/{args.builder_config}` (LOSO, held out: {folds}), seeds {seeds}; '
           'mean ± sample standard deviation over seeds. τ: the rank scorer\'s Kendall τ with frame order, DI: '
           'the decoder\'s unexplained share of the dynamic images (1 = the batch\'s mean image), both the last '
           'logged training interval, mean over folds and seeds. p: Welch\'s t-test of the per-seed UF1 against '
           'full FDP\'s. min/run: wall time of the runs that were not resumed (other work on the machine lengthens '
           'it).', '',
           '| variant | UF1 | UAR | UF1 per seed | τ | DI | ΔUF1 vs full | p | min/run |',
           '|---|---:|---:|---|---:|---:|---:|---:|---:|']
  base = rows.get('full', {}).get('uf1')
  for variant, row in rows.items():
    per_seed = ', '.join(f'{row["runs"][s]["uf1"]:.3f}' for s in row['seeds'])
    fmt = lambda v: '–' if v is None else f'{v:.2f}'  # noqa: E731
    delta = '' if base is None or variant == 'full' else f'{row["uf1"] - base:+.3f}'
    wall = '–' if row['wall_s'] is None else f'{row["wall_s"] / 60:.1f}'
    p = '' if row['uf1_p'] is None else f'{row["uf1_p"]:.2g}'
    lines.append(f'| `{variant}` | {row["uf1"]:.3f} ± {row["uf1_sd"]:.3f} | {row["uar"]:.3f} ± {row["uar_sd"]:.3f} '
                 f'| {per_seed} | {fmt(row["rank_tau"])} | {fmt(row["di_unexplained"])} | {delta} | {p} | {wall} |')
  return '\n'.join(lines) + '\n'


def sweep_parser(description: str, builder_configs: tuple[str, str], output: str) -> argparse.ArgumentParser:
  """The arguments of a sweep of launch.py runs: synthetic_me's corpus (the first of `builder_configs` by
  default), the held-out subjects, the seeds and the folder of the runs (runs/`output`)."""
  parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--builder_config', default=builder_configs[0],
                      help="synthetic_me's corpus: '{}' or '{}'".format(*builder_configs))
  parser.add_argument('--folds', default='all', help="held-out subjects (comma-separated) or 'all'")
  parser.add_argument('--seeds', default='0,1,2')
  parser.add_argument('--output', default=os.path.join(REPO, 'runs', output))
  return parser


def main():
  parser = sweep_parser(__doc__, ('default', 'dev'), 'ablate')
  parser.add_argument('--only', default=','.join(VARIANTS), help='comma-separated variants')
  args, extra = parser.parse_known_args()
  variants = args.only.split(',')
  unknown = [v for v in variants if v not in VARIANTS]
  if unknown:
    sys.exit(f'unknown variants {unknown}: choose from {list(VARIANTS)}')
  seeds = [int(s) for s in args.seeds.split(',')]
  table = os.path.join(args.output, args.builder_config, 'ablation')
  for seed in seeds:            # seed by seed, so that a partial sweep has every variant at seed 0 first
    for variant in variants:
      wall = train(args, variant, seed, extra)
      rows = summarise(args, variants, seeds)
      write_tables(table, rows, markdown(args, rows, seeds))
      print(f'{variant} seed {seed}: {outcome(wall)}', flush=True)
  print(open(table + '.md').read())


def write_tables(table: str, rows: dict, text: str) -> None:
  """A sweep's summary as `table`.json and its Markdown as `table`.md (rewritten after every run)."""
  os.makedirs(os.path.dirname(table), exist_ok=True)
  with open(table + '.json', 'w') as f:
    json.dump(rows, f, indent=1)
  with open(table + '.md', 'w') as f:
    f.write(text)


def outcome(wall: float | str | None) -> str:
  """What `train` did, in words."""
  if isinstance(wall, float):
    return f'{wall / 60:.1f} min'
  return {None: 'had results', 'elsewhere': 'run by another sweep'}[wall]


if __name__ == '__main__':
  main()
