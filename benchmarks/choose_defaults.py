"""Chooses (or confirms) the default config's settings on the development corpus, never on the folds it reports.

  python benchmarks/choose_defaults.py                          # synthetic_me/dev, its first 5 subjects' folds
  python benchmarks/choose_defaults.py --folds=s00,s01 --only=defaults,no_ema   # a quick partial sweep

`configs/synthetic.py` is scored by LOSO on `synthetic_me/default`. Its settings are chosen here on
`synthetic_me/dev`: ten other subjects drawn by the same generative rules (another seed). Each candidate
changes one setting of the defaults and is one `launch.py` run over the same dev folds; the evaluation-views
candidate re-scores the defaults' checkpoints (`fdp_jax.tools.rescore`) instead of training again.

The rule, stated before the sweep: a setting is changed only where an alternative beats the current default
by more than `--margin` UF1 on the dev folds (on 5 folds of 24 clips, one clip is ≈ 0.01 of accuracy);
otherwise the default is confirmed. The table is printed and written to `--output` (JSON and .md).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from fdp_jax import rundir  # noqa: E402

# name -> (setting it varies, launch.py overrides); each differs from the defaults in one setting.
CANDIDATES = {
    'defaults': ('(configs/synthetic.py as it is)', []),
    'reference_none': ('frame reference', ['--config.data.frame_reference=none', '--config.data.reference_gain=1']),
    'reference_first': ('frame reference', ['--config.data.frame_reference=first']),
    'gain_1': ('reference gain', ['--config.data.reference_gain=1']),
    'gain_8': ('reference gain', ['--config.data.reference_gain=8']),
    'lr_1e-3': ('learning rate', ['--config.train.learning_rate=1e-3']),
    'lr_4e-3': ('learning rate', ['--config.train.learning_rate=4e-3']),
    'no_ema': ('parameter moving average', ['--config.train.ema_decay=0']),
    'no_class_balance': ('class balancing', ['--config.loss.class_balance=False']),
    'views_1': ('evaluation views', None),   # the defaults' checkpoints, re-scored with one view
}


def aggregate(workdir: str) -> dict:
  with open(rundir.path(workdir, rundir.RESULTS)) as f:
    a = json.load(f)['aggregate']
  return {k: a[k] for k in ('uf1', 'uar', 'accuracy', 'num_folds')}


def train_candidate(config: str, overrides: list[str], workdir: str) -> dict:
  cmd = [sys.executable, os.path.join(REPO, 'launch.py'), f'--config={config}', '--config.progress_bar=False',
         f'--workdir={workdir}', *overrides]
  start = time.perf_counter()
  proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
  if proc.returncode:
    sys.exit(f'{" ".join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
  return {**aggregate(workdir), 'wall_s': round(time.perf_counter() - start, 1)}


def rescore_with_one_view(trained: str, workdir: str) -> dict:
  """The defaults' run copied, its config set to one evaluation view, re-scored from its checkpoints."""
  shutil.copytree(trained, workdir)
  config_file = rundir.path(workdir, rundir.CONFIG)
  with open(config_file) as f:
    config = json.load(f)
  config['eval']['num_views'] = 1
  with open(config_file, 'w') as f:
    json.dump(config, f, indent=1)
  start = time.perf_counter()
  proc = subprocess.run([sys.executable, '-m', 'fdp_jax.tools.rescore', f'--workdir={workdir}'], cwd=REPO,
                        capture_output=True, text=True)
  if proc.returncode:
    sys.exit(f're-scoring {workdir} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
  return {**aggregate(workdir), 'wall_s': round(time.perf_counter() - start, 1)}


def decisions(rows: dict, margin: float) -> dict:
  """Per setting varied: the best alternative, and whether it beats the defaults by more than `margin`."""
  base = rows['defaults']['uf1']
  out = {}
  for name, row in rows.items():
    if name == 'defaults':
      continue
    setting = CANDIDATES[name][0]
    best = out.get(setting)
    if best is None or row['uf1'] > rows[best['candidate']]['uf1']:
      out[setting] = {'candidate': name, 'uf1': row['uf1'], 'change': row['uf1'] - base > margin}
  return out


def markdown(rows: dict, chosen: dict, args) -> str:
  lines = [f'Dev corpus `{args.builder_config}`, held-out subjects {args.folds}, margin {args.margin} UF1.', '',
           '| candidate | varies | UF1 | UAR | accuracy | folds | wall s |', '|---|---|---:|---:|---:|---:|---:|']
  for name, r in rows.items():
    lines.append(f"| {name} | {CANDIDATES[name][0]} | {r['uf1']:.4f} | {r['uar']:.4f} | {r['accuracy']:.4f} | "
                 f"{r['num_folds']} | {r['wall_s']} |")
  lines.append('')
  for setting, d in chosen.items():
    verdict = f"change to {d['candidate']}" if d['change'] else 'keep the default'
    lines.append(f"- {setting}: best alternative {d['candidate']} (UF1 {d['uf1']:.4f}): {verdict}")
  return '\n'.join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--config', default='configs/synthetic.py')
  parser.add_argument('--builder_config', default='dev', help='the development corpus (never `default`)')
  parser.add_argument('--folds', default='s00,s01,s02,s03,s04', help="held-out dev subjects, or 'all'")
  parser.add_argument('--only', default='', help='comma-separated candidates (default: all)')
  parser.add_argument('--margin', type=float, default=0.02)
  parser.add_argument('--output', default='choose_defaults')
  parser.add_argument('--keep', default='', help='keep the runs in this folder (default: a temporary one)')
  args = parser.parse_args()
  if args.builder_config == 'default':
    sys.exit('choose settings on the development corpus, not on the folds the default run reports')
  names = args.only.split(',') if args.only else list(CANDIDATES)
  if 'views_1' in names and 'defaults' not in names:
    names.insert(0, 'defaults')
  common = [f'--config.data.builder_config={args.builder_config}', f'--config.cv.subjects={args.folds}']
  root = args.keep or tempfile.mkdtemp(prefix='choose_defaults-')
  rows = {}
  for name in names:
    workdir = os.path.join(root, name)
    overrides = CANDIDATES[name][1]
    rows[name] = (rescore_with_one_view(os.path.join(root, 'defaults'), workdir) if overrides is None
                  else train_candidate(args.config, common + overrides, workdir))
    print(f'{name}: {rows[name]}', flush=True)
  chosen = decisions(rows, args.margin) if 'defaults' in rows else {}
  table = markdown(rows, chosen, args)
  print('\n' + table)
  with open(args.output + '.json', 'w') as f:
    json.dump({'config': args.config, 'builder_config': args.builder_config, 'folds': args.folds,
               'margin': args.margin, 'rows': rows, 'decisions': chosen}, f, indent=1)
  with open(args.output + '.md', 'w') as f:
    f.write(table + '\n')
  if not args.keep:
    shutil.rmtree(root)


if __name__ == '__main__':
  main()
