"""Chooses the spotting recipe on `synthetic_long/dev` (8 subjects that are not those of `default`): trains the
spotter on LOSO folds of some dev subjects for each candidate and prints snippet UF1 and spotting F1 (pooled
over the held-out videos; the spotter's threshold rule and the baseline's per-fold threshold as in a run).

  python benchmarks/choose_spotting.py --subjects=s00,s01,s02,s03 [--candidates=NAME,...]
  python benchmarks/choose_spotting.py --subjects=s00,s01,s02,s03,s04,s05,s06,s07 --candidates=default \
      --peak_grid                        # then the threshold rule (spot.p × spot.smooth) on the same curves

Each candidate is the spotting config with a few overrides (CANDIDATES). The numbers and the choice are in
benchmarks/README.md ("Spotting").
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags, logging  # noqa: E402

from configs import spot_synthetic  # noqa: E402
from fdp_jax.cv import loso as cv_loso  # noqa: E402
from fdp_jax.cv.folds import loso_folds, select_folds  # noqa: E402
from fdp_jax.spotting import metrics, peaks, loso as spot_loso, snippets  # noqa: E402
from fdp_jax.spotting.videos import load_videos  # noqa: E402

CANDIDATES = {
    'default': {},
    'size64': {'data.image_size': 64},
    'clip_mean': {'data.frame_reference': 'clip_mean'},
    'p0.3': {'spot.p': 0.3},
    'min_score0.5': {'spot.min_score': 0.5},
    'T12': {'data.num_frames': 12},
    'K12': {'spot.half_window': 12},
    'steps800': {'train.num_steps': 800},
    'lr1e-3': {'train.learning_rate': 1e-3},
}

flags.DEFINE_bool('peak_grid', False, 'Also score spot.p × spot.smooth on each candidate\'s curves (no retraining).')
flags.DEFINE_string('subjects', 's00,s01,s02,s03', 'Dev subjects held out (one fold each).')
flags.DEFINE_string('candidates', 'default,size64,clip_mean,p0.3,min_score0.5,T12', 'Candidates to run, in order '
                    f'(any of {", ".join(CANDIDATES)}).')
FLAGS = flags.FLAGS


def candidate_config(overrides: dict):
  config = spot_synthetic.get_config()
  config.data.builder_config = 'dev'
  config.progress_bar = False
  for key, value in overrides.items():
    section, name = key.split('.')
    config[section][name] = value
  return config


def evaluate(config, workdir: str) -> dict:
  videos, _ = load_videos(config.data)
  source = snippets.SnippetSource(videos, int(config.spot.half_window), int(config.spot.stride))
  index = source.index()
  folds = select_folds(loso_folds(index.subjects), FLAGS.subjects)
  start = time.perf_counter()
  results, _, _, _ = cv_loso.train_folds(config, folds, source, index, workdir, True)
  seconds = time.perf_counter() - start
  outcome = spot_loso.spot_folds(config, videos, folds, results, None)
  by_video = {v.video_id: v for v in videos}
  spotter = metrics.spotting_scores(([i for i, _, _ in found['spotted']], by_video[vid].intervals)
                                    for vid, found in outcome['per_video'].items())
  naive = metrics.spotting_scores((found['baseline'], by_video[vid].intervals)
                                  for vid, found in outcome['per_video'].items())
  snippet_uf1 = sum(results[f.subject]['metrics']['uf1'] for f in folds) / len(folds)
  grid = {}
  if FLAGS.peak_grid:   # the threshold rule only acts on the curves: score it without retraining
    for p in (0.5, 0.6, 0.7, 0.8):
      for smooth in (5, 9, 13, 17):
        rule = peaks.PeakRule(p=p, min_score=float(config.spot.min_score), smooth=smooth)
        grid[p, smooth] = metrics.spotting_scores(
            ([i for i, _ in spot_loso.spot_video(outcome['curves'][vid].astype(float), rule,
                                                outcome['fold_rules'][by_video[vid].subject]['lengths'])],
             by_video[vid].intervals) for vid in outcome['per_video'])['overall']['f1']
  return {'snippet_uf1': snippet_uf1, 'spotter': spotter, 'baseline': naive, 'seconds': seconds, 'grid': grid}


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  print('| candidate | snippet UF1 (fold mean) | F1 overall | F1 micro | F1 macro | TP/FP/FN | baseline F1 | train s |')
  print('|---|---:|---:|---:|---:|---|---:|---:|')
  for name in FLAGS.candidates.split(','):
    with tempfile.TemporaryDirectory() as workdir:
      r = evaluate(candidate_config(CANDIDATES[name]), workdir)
    s, o = r['spotter'], r['spotter']['overall']
    print(f"| {name} | {r['snippet_uf1']:.3f} | {o['f1']:.3f} | {s['micro']['f1']:.3f} | {s['macro']['f1']:.3f} | "
          f"{o['tp']}/{o['fp']}/{o['fn']} | {r['baseline']['overall']['f1']:.3f} | {r['seconds']:.0f} |", flush=True)
    if r['grid']:
      print(f'\n{name}: spotting F1 by spot.p (rows) and spot.smooth (columns)\n\n| p | '
            + ' | '.join(str(s) for s in (5, 9, 13, 17)) + ' |\n|---|---:|---:|---:|---:|')
      for p in (0.5, 0.6, 0.7, 0.8):
        print(f'| {p} | ' + ' | '.join(f"{r['grid'][p, s]:.3f}" for s in (5, 9, 13, 17)) + ' |')
      print(flush=True)


if __name__ == '__main__':
  app.run(main)
