"""report.md of a spotting run: the spotter beside the baseline, the analysis, and one timeline figure per
video — the micro and macro score curves, the annotated intervals, what the spotter and the baseline
spotted (true positives filled, false positives hatched) and the frames without a face."""

from __future__ import annotations

import os

import numpy as np

from fdp_jax import report, rundir
from fdp_jax.spotting import loso

TIMELINES = 'timelines'
COLOURS = {'micro': 'tab:red', 'macro': 'tab:blue'}


def timeline_figure(entry: dict, curve: np.ndarray | None, path: str, title: str = '') -> None:
  """One video's timeline. curve: (N, 3) none/micro/macro probabilities (NaN where not scored)."""
  plt = report._pyplot()
  n = entry['num_frames']
  fig, ax = plt.subplots(figsize=(12, 3.2))
  if curve is not None:
    for c, kind in ((1, 'micro'), (2, 'macro')):
      ax.plot(np.arange(n), curve[:, c], color=COLOURS[kind], lw=0.8, label=f'P({kind})')
  for k, (first, last) in enumerate(entry.get('no_face', [])):
    ax.axvspan(first, last + 1, color='0.85', lw=0, label=None if k else 'no face')
  rows = (('truth', 1.12), ('spotted', 1.06), ('baseline', 1.0))
  true_positives = {s for s, _ in entry.get('true_positives', [])}
  for key, y in rows:
    for i, interval in enumerate(entry[key]):
      hit = key != 'spotted' or i in true_positives
      ax.broken_barh([(interval['onset'], interval['offset'] - interval['onset'] + 1)], (y, 0.04),
                     facecolors=COLOURS[interval['type']] if hit else 'none', edgecolors=COLOURS[interval['type']],
                     hatch=None if hit else '////', lw=0.8)
  ax.set_yticks([0, 0.5, 1.0, 1.02, 1.08, 1.14])
  ax.set_yticklabels(['0', '0.5', '1', 'baseline', 'spotted', 'truth'], fontsize=7)
  ax.set_ylim(0, 1.2)
  ax.set_xlim(0, n)
  ax.set_xlabel('frame')
  ax.set_title(title or entry['video_id'], fontsize=9)
  ax.legend(loc='center left', fontsize=7, ncol=3)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def write_report(workdir: str, results: dict) -> str:
  """Writes report.md and the timelines into `workdir`; returns the report's path."""
  curves_path = rundir.path(workdir, loso.CURVES)
  curves = dict(np.load(curves_path)) if os.path.exists(curves_path) else {}
  os.makedirs(rundir.path(workdir, TIMELINES), exist_ok=True)
  d = results['dataset']
  lines = [f"# Spot-then-recognise, LOSO on {d['name']}/{d['config']}", '',
           f"{results['num_folds']} folds, {d['num_videos']} videos, seed {results['seed']}; each video spotted by "
           'the spotter of the fold that held its subject out; intervals recognised by the recogniser fold of the '
           f"same subject ({results['recognizer']['workdir']}).", '',
           f"- Settings chosen on: {results['settings_chosen_on']}.",
           *([f"- **INCOMPLETE**: fold(s) {', '.join(results['failed_folds'])} failed."] if results['failed_folds']
             else []),
           *([f"- **PARTIAL RUN**: subjects not held out: {', '.join(results['subjects_not_evaluated'])}."]
             if results['subjects_not_evaluated'] else []), '',
           loso.markdown_table(results), '',
           'A spotted interval is a true positive when its IoU with an annotated interval of the same type is ≥ 0.5, '
           'matched one-to-one; counts are pooled over every video of every fold. STRS = F1(spotting) × UF1 of the '
           "recogniser's classes on the true positives.", '', '## Timelines', '',
           'Curves: the spotter\'s P(micro) and P(macro); bars: annotated (top), spotted (middle: filled = true '
           'positive, hatched = false positive) and the baseline\'s (bottom); grey: frames without a face.', '']
  for entry in results['videos']:
    name = entry['video_id'].replace('/', '_') + '.png'
    timeline_figure(entry, curves.get(entry['video_id']), os.path.join(rundir.path(workdir, TIMELINES), name))
    lines += [f"### {entry['video_id']}", '', f'![{entry["video_id"]}]({TIMELINES}/{name})', '']
  path = rundir.path(workdir, rundir.REPORT)
  with open(path, 'w') as f:
    f.write('\n'.join(lines))
  return path
