"""The run report: `report.md` with the per-fold table and the aggregate scores (the optimistic best-test
numbers beside the honest ones when recorded), a confusion-matrix PNG and training-curve PNGs.

Written at the end of every training run and rewritten by `python -m fdp_jax.tools.rescore`. Curves come from
`train_history.json` (every logged step of every fold), which the trainer writes beside `results.json`.
"""

from __future__ import annotations

import json
import os

import numpy as np

from fdp_jax import mol_evidence, rundir, scoring


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


def write_report(workdir: str, results: dict) -> str:
  """Writes report.md and its figures into `workdir`; returns the report's path."""
  a = results['aggregate']
  names = results['dataset']['class_names']
  if not a['num_folds']:   # every fold failed: nothing to score or draw
    path = rundir.path(workdir, rundir.REPORT)
    with open(path, 'w') as f:
      f.write(f"# LOSO on {results['dataset']['name']}/{results['dataset']['config']}\n\n"
              + scoring.markdown_table(results) + '\n')
    return path
  confusion_figure(a['confusion_matrix'], names,
                   f"LOSO, {a['num_folds']} folds: UF1 {a['uf1']:.3f}, UAR {a['uar']:.3f}",
                   rundir.path(workdir, rundir.CONFUSION_PNG))
  normalization = results.get('test_normalization', {})
  column = (scoring.selection_label(results) if normalization.get('transductive')
            else f'honest ({scoring.selection_label(results)})')
  lines = [f"# LOSO on {results['dataset']['name']}/{results['dataset']['config']}", '',
           f"{a['num_folds']} folds, {a['num_samples']} clips, seed {results['seed']}, selection "
           f"`{results['selection']}` (each fold scored with the model at the end of its schedule).", '',
           f"- Settings chosen on: {results.get('settings_chosen_on', scoring.NOT_STATED)}.",
           f"- Test-split normalisation: {normalization.get('description', 'not recorded')}.",
           f"- Settings per fold: {results.get('settings_selection', {}).get('description', 'as configured')}.", '',
           *([f"**INCOMPLETE**: fold(s) {', '.join(a['failed_folds'])} failed (non-finite loss); the scores "
              'below cover the other folds only.', ''] if a.get('failed_folds') else []),
           *([f"**PARTIAL RUN**: {len(a['subjects_not_evaluated'])} subject(s) of the corpus were not held out "
              f"(`cv.subjects`): {', '.join(a['subjects_not_evaluated'])}.", '']
             if a.get('subjects_not_evaluated') else []),
           f'| score (summed confusion matrix; {column}) | value |', '|---|---:|']
  for key in ('uf1', 'uar', 'accuracy', 'wf1', 'war'):
    lines.append(f'| {key.upper() if key != "accuracy" else "accuracy"} | {a[key]:.4f} |')
  if a.get('per_corpus'):
    lines += ['', 'Per corpus: each corpus\'s slice of the pooled predictions, scored from its own confusion '
              'matrix.', '', '| corpus | clips | UF1 | UAR | accuracy |', '|---|---:|---:|---:|---:|',
              f"| **all (pooled)** | {a['num_samples']} | {a['uf1']:.4f} | {a['uar']:.4f} | {a['accuracy']:.4f} |"]
    for corpus, c in a['per_corpus'].items():
      lines.append(f"| {corpus} | {c['num_samples']} | {c['uf1']:.4f} | {c['uar']:.4f} | {c['accuracy']:.4f} |")
  if 'optimistic_best_test' in results:
    o = results['optimistic_best_test']['aggregate']
    lines += ['', '**Optimistic, not an estimate** — the released selection rule (each fold keeps the step '
              'with the best accuracy on its own test subject, checked every '
              f"{results['optimistic_best_test']['every_steps']} steps):", '',
              f'| | {column} | OPTIMISTIC (best test step) |', '|---|---:|---:|']
    for key in ('uf1', 'uar', 'accuracy'):
      lines.append(f'| {key} | {a[key]:.4f} | {o[key]:.4f} |')
  lines += ['', '## Per fold', '', scoring.markdown_table(results), '',
            '## Per class', '', '| class | precision | recall | F1 | support |', '|---|---:|---:|---:|---:|']
  fmt = lambda v: '—' if v is None else f'{v:.3f}'   # undefined: no such labels or predictions
  for name, c in a['per_class'].items():
    lines.append(f"| {name} | {fmt(c['precision'])} | {fmt(c['recall'])} | {fmt(c['f1'])} | {c['support']} |")
  lines += mol_evidence.report_lines(results)
  lines += ['', f'![confusion matrix]({rundir.CONFUSION_PNG})']
  history_path = rundir.path(workdir, rundir.HISTORY)
  if os.path.exists(history_path):
    with open(history_path) as f:
      curves_figure(json.load(f), rundir.path(workdir, rundir.CURVES_PNG))
    lines += ['', f'![training curves]({rundir.CURVES_PNG})']
  lines += ['', f'TensorBoard: `tensorboard --logdir {rundir.tensorboard_dir(workdir)}`', '']
  path = rundir.path(workdir, rundir.REPORT)
  with open(path, 'w') as f:
    f.write('\n'.join(lines))
  return path
