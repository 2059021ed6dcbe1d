"""A run's results, built, extended and written here only: results.json, its console table and its report.md.

results.json is the record of a run. The LOSO cross-validation gives its folds (`recognition`), a spotting run
its spotter's and baseline's scores (`spotting`); what a run learns after its folds are scored joins as a
section of its own (`extend`): a MOL run's references and pictures (`fdp_jax.mol_evidence`), its MER-only
ablation (`with_ablation`), a linear probe's model (`fdp_jax.tools.probes`). Re-scoring a run
(`fdp_jax.tools.rescore`) rebuilds its folds and keeps those sections (`added_sections`).

The text made of it: a recognition run's console table and report hold the per-fold table and the aggregate
scores (the optimistic best-test numbers beside the honest ones when recorded), a MOL run's flow and landmarks
against their references, the confusion matrix and the training curves (from `train_history.json`, every
logged step of every fold; pictures by `fdp_jax.figures`); a spotting run's hold the spotter beside the
baseline, the analysis and each video's timeline. Written at the end of every run and rewritten by
`python -m fdp_jax.tools.rescore`.
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np

from fdp_jax import data_sources, families, figures, rundir, scoring
from fdp_jax.cv import selection

# How each `data.normalization` treats the test split: only the first keeps the held-out subject unseen.
TEST_NORMALIZATION = {
    'standard': {'transductive': False,
                 'description': 'fixed constants, (x/255 - 0.5)/0.5: no statistics of any split'},
    'released_per_split': {'transductive': True,
                           'description': "TRANSDUCTIVE, as released: each fold's test split is normalised by "
                                          'its own mean and max (the held-out subject\'s own statistics)'},
}
NOT_STATED = 'not stated by the config'

# The sections joined to a recognition run's results after its folds were scored, in the order re-scoring
# carries them over.
ADDED_SECTIONS = ('mol_references', 'mol_examples', 'ablation')


def settings_selection(config) -> dict:
  """How each fold's settings were chosen: as configured, or by inner LOSO among candidates (each fold's
  choice and inner scores are in its `inner_selection`)."""
  rule = config.cv.selection
  if rule == 'none':
    return {'rule': 'none', 'description': 'the config as it is, for every fold'}
  return {'rule': rule, 'candidates': selection.candidates(config),
          'description': 'per fold, the candidate with the best UF1 of a LOSO over its training subjects only '
                         '(first best on a tie), retrained on all of them and scored once on the held-out subject'}


def recognition(config, info, index: data_sources.CorpusIndex, fold_results: list[dict],
                optimistic: dict | None = None) -> dict:
  """results.json of a recognition run: its folds (`scoring.fold_result`) and the aggregate of their summed
  confusion matrix; `optimistic` is the released best-test-step record ({'every_steps', 'folds'}), reported
  beside and labelled."""
  rule = config.data.normalization
  subjects = sorted(set(index.subjects))
  results = {
      'selection': 'end_of_schedule',
      'test_normalization': {'rule': rule, **TEST_NORMALIZATION[rule]},
      'settings_chosen_on': config.settings_chosen_on or NOT_STATED,
      'settings_selection': settings_selection(config),
      'seed': int(config.seed),
      'dataset': {'name': info.name, 'config': info.config_name, 'version': str(info.version),
                  'num_samples': len(index), 'num_subjects': len(set(index.subjects)),
                  'class_names': list(index.class_names)},
      'folds': fold_results,
      'aggregate': scoring.aggregate(fold_results, index.class_names, subjects),
  }
  if optimistic and optimistic['folds']:
    results['optimistic_best_test'] = {
        'warning': 'OPTIMISTIC: each fold keeps the step with the best accuracy on its own test set (the '
                   'released selection rule); this is not an estimate of performance on unseen subjects. '
                   'The honest score is `aggregate`.',
        'every_steps': optimistic['every_steps'],
        'folds': optimistic['folds'],
        'aggregate': scoring.aggregate(optimistic['folds'], index.class_names, subjects),
    }
  return results


def spotting(config, info, videos, folds, fold_results: dict, fold_rules: dict, scores: dict,
             recognizer) -> dict:
  """results.json of a spotting run: the spotter's and the baseline's `scores` over every held-out video
  (`fdp_jax.spotting.loso.score_videos`: 'spotting', 'analysis', 'strs', 'baseline', 'videos'), the
  recogniser run that classified the intervals, and each fold's spotter entry with its `fold_rules`."""
  failed = [f.subject for f in folds if fold_results[f.subject].get('status') != 'done']
  subjects = sorted({v.subject for v in videos})
  return {
      'task': 'spotting',
      'dataset': {'name': info.name, 'config': info.config_name, 'version': str(info.version),
                  'num_videos': len(videos), 'subjects': subjects},
      'seed': int(config.seed),
      'settings_chosen_on': config.settings_chosen_on or 'not stated',
      'spotting': scores['spotting'],
      'analysis': scores['analysis'],
      'strs': scores['strs'],
      'baseline': scores['baseline'],
      'recognizer': {'workdir': os.path.abspath(recognizer.workdir), 'class_names': list(recognizer.class_names),
                     'model': recognizer.config.model.name},
      'num_folds': len(folds) - len(failed), 'failed_folds': failed,
      'subjects_not_evaluated': sorted(set(subjects) - {f.subject for f in folds}),
      'complete': not failed and len(folds) == len(subjects),
      'folds': [{'subject': f.subject, 'status': fold_results[f.subject].get('status'),
                 'steps': fold_results[f.subject].get('steps'),
                 'snippet_metrics': fold_results[f.subject].get('metrics'),
                 'error': fold_results[f.subject].get('error'),
                 **fold_rules.get(f.subject, {})} for f in folds],
      'videos': scores['videos'],
  }


def write(workdir: str, results: dict) -> None:
  """Writes results.json into `workdir` (atomically: `rundir.write_json`)."""
  rundir.write_json(rundir.path(workdir, rundir.RESULTS), results)


def extend(workdir: str, results: dict, sections: dict, primary: bool = True) -> dict:
  """`results` with `sections` added (after its own keys; a section it has already is replaced where it
  stands), rewritten in `workdir` when `primary` (process 0 of a multi-process job); returns them."""
  results = dict(results, **sections)
  if primary:
    write(workdir, results)
  return results


def with_ablation(workdir: str, results: dict, ablation, subdir: str, ablated: dict, primary: bool = True) -> dict:
  """`results` with the MER-only ablation run of their config (`ablation`, run in `subdir`:
  `fdp_jax.experiment.runs`) joined as 'ablation': its aggregate and loss weights. The ablation's own report
  is written in `subdir` first (when `primary`)."""
  if primary:
    write_report(subdir, ablated)
  section = {'workdir': os.path.relpath(subdir, workdir), 'aggregate': ablated['aggregate'],
             'loss': ablation.loss.to_dict()}
  return extend(workdir, results, {'ablation': section}, primary)


def added_sections(previous: dict) -> dict:
  """The `ADDED_SECTIONS` of an earlier results.json: what re-scoring the run keeps."""
  return {key: previous[key] for key in ADDED_SECTIONS if key in previous}


def console_table(results: dict) -> str:
  """What a finished recognition run prints: `markdown_table`, then a MOL run's `mol_comparison_table`."""
  table = markdown_table(results)
  if 'mol_references' in results:
    table += '\n\n' + '\n'.join(mol_comparison_table(results))
  return table


def markdown_table(results: dict) -> str:
  """The console table of a recognition run: each fold, then the aggregate and what qualifies it."""
  rows = ['| held-out subject | test clips | accuracy | UF1 | UAR |', '|---|---:|---:|---:|---:|']
  for f in results['folds']:
    if f.get('status') == 'failed':
      rows.append(f"| {f['subject']} | {f['num_test']} | FAILED at step {f['steps']} | – | – |")
      continue
    m = f['metrics']
    rows.append(f"| {f['subject']} | {f['num_test']} | {m['accuracy']:.3f} | {m['uf1']:.3f} | {m['uar']:.3f} |")
  a = results['aggregate']
  if not a['num_folds']:
    return '\n'.join(rows + ['', f"NO FOLD COMPLETED: {', '.join(a['failed_folds'])} failed (see results.json)."])
  rows.append(f"| **all ({a['num_folds']} folds)** | {a['num_samples']} | **{a['accuracy']:.3f}** | "
              f"**{a['uf1']:.3f}** | **{a['uar']:.3f}** |")
  rows.append('')
  rows.append(f"Aggregate over the summed confusion matrix: UF1 {a['uf1']:.4f}, UAR {a['uar']:.4f}, "
              f"WF1 {a['wf1']:.4f}, WAR {a['war']:.4f}, accuracy {a['accuracy']:.4f} "
              f"(selection: {selection_label(results)}).")
  for corpus, c in a.get('per_corpus', {}).items():
    rows.append(f"  {corpus} slice of the pooled predictions ({c['num_samples']} clips): UF1 {c['uf1']:.4f}, "
                f"UAR {c['uar']:.4f}, accuracy {c['accuracy']:.4f}")
  chosen = [(f['subject'], f['inner_selection']) for f in results['folds'] if 'inner_selection' in f]
  if chosen:
    rows.append('Settings chosen per fold by LOSO over its training subjects: ' + '; '.join(
        f"{subject} → {c['chosen']} {c['overrides'] or '(the config)'}" for subject, c in chosen))
  if a.get('subjects_not_evaluated'):
    rows.append(f"PARTIAL RUN: {len(a['subjects_not_evaluated'])} of the corpus's subjects were not held out "
                f"(cv.subjects); these scores are not the whole protocol's.")
  if a.get('failed_folds'):
    rows.append(f"INCOMPLETE: fold(s) {', '.join(a['failed_folds'])} failed (non-finite loss, see results.json); "
                f"the scores above cover the other {a['num_folds']} folds only.")
  rows += families.aggregate_lines(a)
  if 'optimistic_best_test' in results:
    o = results['optimistic_best_test']['aggregate']
    rows.append(f"OPTIMISTIC, not an estimate (the released rule: each fold's best step chosen on its own "
                f"test set): UF1 {o['uf1']:.4f}, UAR {o['uar']:.4f}, accuracy {o['accuracy']:.4f}.")
  return '\n'.join(rows)


def selection_label(results: dict) -> str:
  """How the scored model was chosen and, where it is not honest, how its test split was normalised."""
  label = 'end of schedule' if results['selection'] == 'end_of_schedule' else results['selection']
  if results.get('test_normalization', {}).get('transductive'):
    label += ', test split normalised by its own statistics, as released'
  return label


def write_report(workdir: str, results: dict) -> str:
  """Writes report.md of a recognition run and its figures into `workdir`; returns the report's path."""
  a = results['aggregate']
  names = results['dataset']['class_names']
  if not a['num_folds']:   # every fold failed: nothing to score or draw
    path = rundir.path(workdir, rundir.REPORT)
    with open(path, 'w') as f:
      f.write(f"# LOSO on {results['dataset']['name']}/{results['dataset']['config']}\n\n"
              + markdown_table(results) + '\n')
    return path
  figures.confusion_figure(a['confusion_matrix'], names,
                           f"LOSO, {a['num_folds']} folds: UF1 {a['uf1']:.3f}, UAR {a['uar']:.3f}",
                           rundir.path(workdir, rundir.CONFUSION_PNG))
  normalization = results.get('test_normalization', {})
  column = (selection_label(results) if normalization.get('transductive')
            else f'honest ({selection_label(results)})')
  lines = [f"# LOSO on {results['dataset']['name']}/{results['dataset']['config']}", '',
           f"{a['num_folds']} folds, {a['num_samples']} clips, seed {results['seed']}, selection "
           f"`{results['selection']}` (each fold scored with the model at the end of its schedule).", '',
           f"- Settings chosen on: {results.get('settings_chosen_on', NOT_STATED)}.",
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
  lines += ['', '## Per fold', '', markdown_table(results), '',
            '## Per class', '', '| class | precision | recall | F1 | support |', '|---|---:|---:|---:|---:|']
  fmt = lambda v: '—' if v is None else f'{v:.3f}'   # undefined: no such labels or predictions
  for name, c in a['per_class'].items():
    lines.append(f"| {name} | {fmt(c['precision'])} | {fmt(c['recall'])} | {fmt(c['f1'])} | {c['support']} |")
  lines += _mol_section(results)
  lines += ['', f'![confusion matrix]({rundir.CONFUSION_PNG})']
  history_path = rundir.path(workdir, rundir.HISTORY)
  if os.path.exists(history_path):
    with open(history_path) as f:
      figures.curves_figure(json.load(f), rundir.path(workdir, rundir.CURVES_PNG))
    lines += ['', f'![training curves]({rundir.CURVES_PNG})']
  lines += ['', f'TensorBoard: `tensorboard --logdir {rundir.tensorboard_dir(workdir)}`', '']
  path = rundir.path(workdir, rundir.REPORT)
  with open(path, 'w') as f:
    f.write('\n'.join(lines))
  return path


def mol_comparison_rows(runs: Sequence[tuple[str, dict]], refs: dict | None) -> list[str]:
  """A Markdown table: each (name, results.json aggregate) run's UF1, UAR, flow EPE and landmark NME, then the
  references' errors (`mol_evidence.references(...)['aggregate']`)."""
  rows = ['| | UF1 | UAR | flow EPE (px) | on moving pixels | landmark NME |', '|---|---:|---:|---:|---:|---:|']
  value = lambda d, key: f'{d[key]:.4f}' if key in d else '—'  # noqa: E731
  for name, a in runs:
    rows.append(f"| {name} | {a['uf1']:.3f} | {a['uar']:.3f} | {value(a, 'flow_epe')} | "
                f"{value(a, 'flow_epe_moving')} | {value(a, 'landmark_nme')} |")
  if refs:
    dlib = '—' if refs['dlib'] is None else f"{refs['dlib']:.4f} (face found in {refs['dlib_face_found']:.0%})"
    rows += [f"| reference: {title} | | | {value(refs, key)} | {value(refs, key + '_moving')} | |"
             for key, title in (('zero_flow', 'zero flow'), ('tvl1', 'TV-L1 (OpenCV)'),
                                ('farneback', 'Farnebäck (OpenCV)'))]
    rows += [f"| reference: training subjects' mean landmarks | | | | | {refs['training_mean']:.4f} |",
             f'| reference: dlib 68-point detector | | | | | {dlib} |',
             f"| oracle: each clip's own mean true landmarks | | | | | {refs['clip_mean_oracle']:.4f} |"]
  return rows


def mol_comparison_table(results: dict) -> list[str]:
  """`mol_comparison_rows` of a MOL run's results.json: the run, its ablation when trained, the references."""
  runs = [('MOL (this run)', results['aggregate'])]
  if 'ablation' in results:
    runs.append(('MER-only ablation (same data, steps, seed)', results['ablation']['aggregate']))
  return mol_comparison_rows(runs, results.get('mol_references', {}).get('aggregate'))


def _mol_section(results: dict) -> list[str]:
  """report.md's MOL section: the comparison table (with the ablation's scores when the run trained it)
  and the example pictures."""
  if 'mol_references' not in results:
    return []
  lines = ['', '## Flow and landmarks against references', '',
           'Means over every held-out clip (each fold\'s model on its own test subject; references on the same '
           'clips, frames and targets — `fdp_jax/mol_evidence.py`).', '', *mol_comparison_table(results)]
  if results.get('mol_examples'):
    lines += ['', 'Held-out clips, one column per frame pair: the frame with true (green) and predicted (red) '
              'landmarks; the true flow; the predicted flow (Middlebury colours, one scale per clip: the true '
              'flow\'s largest magnitude is full saturation).', '']
    lines += [f'![{os.path.basename(p)}]({p})' for p in results['mol_examples']]
  return lines


def spotting_table(results: dict) -> str:
  """The console table of a spotting run: the spotter beside the naive baseline."""
  s, b, a = results['spotting'], results['baseline']['spotting'], results['analysis']
  lines = ['| spotting (IoU ≥ 0.5, pooled) | F1 overall | F1 micro | F1 macro | precision | recall | TP/FP/FN |',
           '|---|---:|---:|---:|---:|---:|---|']
  for name, x in (('spotter (LOSO)', s), ('baseline: frame-difference energy', b)):
    o = x['overall']
    lines.append(f"| {name} | {o['f1']:.3f} | {x['micro']['f1']:.3f} | {x['macro']['f1']:.3f} | "
                 f"{o['precision']:.3f} | {o['recall']:.3f} | {o['tp']}/{o['fp']}/{o['fn']} |")
  analysis = (f"analysis of {a['num_intervals']} true positives: UF1 {a['uf1']:.3f}, UAR {a['uar']:.3f}"
              if a.get('num_intervals') else 'analysis: no true positive with a coded emotion')
  lines += ['', f"{analysis}; STRS {results['strs']:.3f}"]
  if results['failed_folds']:
    lines.append(f"INCOMPLETE: fold(s) {', '.join(results['failed_folds'])} failed")
  return '\n'.join(lines)


def write_spotting_report(workdir: str, results: dict) -> str:
  """Writes report.md of a spotting run and its timelines into `workdir`; returns the report's path."""
  curves_path = rundir.path(workdir, rundir.SCORE_CURVES)
  curves = dict(np.load(curves_path)) if os.path.exists(curves_path) else {}
  os.makedirs(rundir.path(workdir, rundir.TIMELINES_DIR), exist_ok=True)
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
           spotting_table(results), '',
           'A spotted interval is a true positive when its IoU with an annotated interval of the same type is ≥ 0.5, '
           'matched one-to-one; counts are pooled over every video of every fold. STRS = F1(spotting) × UF1 of the '
           "recogniser's classes on the true positives.", '', '## Timelines', '',
           'Curves: the spotter\'s P(micro) and P(macro); bars: annotated (top), spotted (middle: filled = true '
           'positive, hatched = false positive) and the baseline\'s (bottom); grey: frames without a face. '
           f'To watch each video with them, open [{rundir.REVIEW_PAGE}]({rundir.REVIEW_PAGE}).', '']
  for entry in results['videos']:
    figure = rundir.timeline(entry['video_id'])
    figures.timeline_figure(entry, curves.get(entry['video_id']), rundir.path(workdir, figure))
    lines += [f"### {entry['video_id']}", '', f'![{entry["video_id"]}]({figure})', '']
  path = rundir.path(workdir, rundir.REPORT)
  with open(path, 'w') as f:
    f.write('\n'.join(lines))
  return path
