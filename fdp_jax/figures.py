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


def timeline_figure(entry: dict, curve: np.ndarray | None, path: str, title: str = '') -> None:
  """One video's timeline. curve: (N, 3) none/micro/macro probabilities (NaN where not scored)."""
  plt = _pyplot()
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
