"""results.json, the record of a run: built, extended and written here only.

The parts of a run report and this module writes. The LOSO protocol gives its folds (`recognition`), a spotting
run its spotter's and baseline's scores (`spotting`); what a run learns after its folds are scored joins as a
section of its own (`extend`): a MOL run's references and pictures (`fdp_jax.mol_evidence`), its MER-only
ablation (`fdp_jax.experiment`), a linear probe's model (`fdp_jax.tools.probes`). Re-scoring a run
(`fdp_jax.tools.rescore`) rebuilds its folds and keeps those sections (`added_sections`). The text made of
results.json, the console table and report.md, is `fdp_jax.report`'s.
"""

from __future__ import annotations

import os

from fdp_jax import data_sources, rundir, scoring
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


def added_sections(previous: dict) -> dict:
  """The `ADDED_SECTIONS` of an earlier results.json: what re-scoring the run keeps."""
  return {key: previous[key] for key in ADDED_SECTIONS if key in previous}
