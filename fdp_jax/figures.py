"""The report's figures: the confusion matrix and the training curves of a recognition run, the timeline of
each video of a spotting run. Files only; never a window."""

from __future__ import annotations

import numpy as np


def _pyplot():
  import matplotlib
  matplotlib.use('Agg')   # files only; never a window
  import matplotlib.pyplot as plt
  return plt


def confusion_figure(cm: np.ndarray, class_names, title: str, path: str) -> None:
  """Rows are true classes, columns predictions; counts in the cells, row-normalised shading."""
  plt = _pyplot()
  cm = np.asarray(cm)
  rates = cm / np.maximum(cm.sum(1, keepdims=True), 1)
  n = len(class_names)
  fig, ax = plt.subplots(figsize=(1.1 * n + 2.5, 1.1 * n + 1.5))
  ax.imshow(rates, cmap='Blues', vmin=0, vmax=1)
  ax.set_xticks(range(n), class_names, rotation=45, ha='right')
  ax.set_yticks(range(n), class_names)
  ax.set_xlabel('predicted')
  ax.set_ylabel('true')
  for i in range(n):
    for j in range(n):
      ax.text(j, i, int(cm[i, j]), ha='center', va='center', color='white' if rates[i, j] > 0.5 else 'black')
  ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


# The trivial value of a training signal (`fdp_jax.training_signals`), drawn dashed in its panel.
SIGNAL_REFERENCES = {'rank_tau': (0.0, 'no order'), 'di_unexplained': (1.0, "the batch's mean image"),
                     'flow_epe_vs_zero': (1.0, 'zero flow')}


def curves_figure(history: dict, path: str) -> None:
  """One panel per logged metric (loss terms, train accuracy, learning rate, training signals), one line per
  fold; each point is the mean over the steps since the previous one. A signal's trivial value is dashed."""
  plt = _pyplot()
  keys = sorted({k for fold in history.values() for k in fold if k != 'step'},
                key=lambda k: (k != 'loss', not k.startswith('loss'), k))
  cols = min(3, max(len(keys), 1))
  rows = max(1, -(-len(keys) // cols))
  fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
  for ax, key in zip(axes.flat, keys):
    for subject, fold in history.items():
      if key in fold:
        ax.plot(fold['step'], fold[key], label=subject, lw=1)
    if key in SIGNAL_REFERENCES:
      value, name = SIGNAL_REFERENCES[key]
      ax.axhline(value, color='grey', ls='--', lw=1, label=name)
    ax.set_title(key)
    ax.set_xlabel('step (mean over the steps since the previous point)')
  for ax in list(axes.flat)[len(keys):]:
    ax.axis('off')
  if len(history) <= 12 and keys:
    axes.flat[0].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


COLOURS = {'micro': 'tab:red', 'macro': 'tab:blue'}
# The interval rows of a timeline, top to bottom: entry key and label.
TIMELINE_ROWS = (('truth', 'annotated'), ('spotted', 'spotted'), ('baseline', 'baseline'))


def timeline_figure(entry: dict, curve: np.ndarray | None, path: str, title: str = '') -> None:
  """One video's timeline: a row of interval bars per key of `TIMELINE_ROWS` that `entry` has (red micro,
  blue macro; a spotted interval that matches no annotated one hatched when there is an annotated row), and
  under them the P(micro) / P(macro) curves; frames without a face grey in both. curve: (N, 3)
  none/micro/macro probabilities (NaN where not scored)."""
  plt = _pyplot()
  from matplotlib.patches import Patch
  from matplotlib.lines import Line2D
  n = entry['num_frames']
  rows = [(key, label) for key, label in TIMELINE_ROWS if key in entry]
  fig, (bars, curves) = plt.subplots(2, 1, sharex=True, figsize=(12, 2.6 + 0.3 * len(rows)),
                                     gridspec_kw={'height_ratios': [0.45 * len(rows), 2.2], 'hspace': 0.08})
  for ax in (bars, curves):
    for first, last in entry.get('no_face', []):
      ax.axvspan(first, last + 1, color='0.85', lw=0)
  true_positives = {s for s, _ in entry.get('true_positives', [])}
  judged = 'truth' in entry
  for y, (key, _) in enumerate(reversed(rows)):
    for i, interval in enumerate(entry[key]):
      hit = key != 'spotted' or not judged or i in true_positives
      colour = COLOURS[interval['type']]
      bars.broken_barh([(interval['onset'], interval['offset'] - interval['onset'] + 1)], (y - 0.35, 0.7),
                       facecolors=colour if hit else 'none', edgecolors=colour, hatch=None if hit else '////',
                       lw=0.8)
  bars.set_yticks(range(len(rows)), [label for _, label in reversed(rows)], fontsize=8)
  bars.set_ylim(-0.6, len(rows) - 0.4)
  bars.tick_params(axis='x', bottom=False)
  bars.set_title(title or entry['video_id'], fontsize=9)
  if curve is not None:
    for c, kind in ((1, 'micro'), (2, 'macro')):
      curves.plot(np.arange(n), curve[:, c], color=COLOURS[kind], lw=0.8)
  curves.set_ylim(0, 1.02)
  curves.set_ylabel('probability', fontsize=8)
  curves.set_xlim(0, n)
  curves.set_xlabel('frame')
  handles = [Line2D([], [], color=COLOURS['micro'], lw=1, label='P(micro)'),
             Line2D([], [], color=COLOURS['macro'], lw=1, label='P(macro)'),
             Patch(color=COLOURS['micro'], label='micro-expression interval'),
             Patch(color=COLOURS['macro'], label='macro-expression interval')]
  if judged:
    handles.append(Patch(facecolor='none', edgecolor='0.3', hatch='////', label='spotted, no annotated match'))
  handles.append(Patch(color='0.85', label='no face'))
  fig.legend(handles=handles, loc='lower center', ncol=len(handles), fontsize=7, frameon=False,
             bbox_to_anchor=(0.5, 0.0))
  fig.subplots_adjust(left=0.07, right=0.99, top=0.9, bottom=0.24)
  fig.savefig(path, dpi=90)
  plt.close(fig)
