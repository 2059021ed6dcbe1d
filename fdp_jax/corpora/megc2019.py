"""The MEGC 2019 composite: CASME II, SAMM and SMIC-HS read side by side from
`<manual>/{casme2,samm,smic}/`, each by its own reader and relabelled by its own 3-class class set
(negative/positive/surprise). Subjects and sample ids carry the corpus ('casme2:sub01', 'samm:006/006_1_2'),
so LOSO runs over the 68 subjects and scores can be sliced per corpus. `megc2019_exclusions.txt` beside
this file lists samples left out."""

from __future__ import annotations

import dataclasses
import os

from fdp_jax.corpora import builder
from fdp_jax.corpora import casme2
from fdp_jax.corpora import layout
from fdp_jax.corpora import phases
from fdp_jax.corpora import class_sets
from fdp_jax.corpora import samm
from fdp_jax.corpora import smic

CORPUS = 'megc2019'
EXCLUSIONS = os.path.join(os.path.dirname(__file__), 'megc2019_exclusions.txt')
READERS = {'casme2': casme2, 'samm': samm, 'smic': smic}

INSTRUCTIONS = (
    'The composite reads the three licensed corpora from sub-folders of the manual folder:\n'
    '  casme2/ as for the casme2 builder:\n' + casme2.INSTRUCTIONS +
    '  samm/ as for the samm builder:\n' + samm.INSTRUCTIONS +
    '  smic/ as for the smic builder (the HS recordings are used):\n' + smic.INSTRUCTIONS)


def read_exclusions(path: str) -> set[str]:
  """The sample ids listed in an exclusions file, as the composite spells them; '#' lines are comments."""
  with open(path) as f:
    return {line.strip() for line in f if line.strip() and not line.lstrip().startswith('#')}


def labelled_samples(root: str, frames: str) -> tuple[list, phases.BuildReport]:
  """([(ClipSpec, 3-class index)] of the three corpora, report). `frames` ('raw' | 'cropped') applies to
  CASME II and SMIC; SAMM has only raw frames."""
  report = phases.BuildReport()
  excluded = read_exclusions(EXCLUSIONS)
  labelled = []
  for corpus, reader in READERS.items():
    part_root = layout.find_path(root, [corpus], f'the {corpus} part of the composite', INSTRUCTIONS)
    part_frames = 'raw' if corpus == 'samm' else frames
    kwargs = {'modality': 'HS'} if corpus == 'smic' else {}
    specs, part_report = reader.find_samples(part_root, part_frames, **kwargs)
    part = builder.label_samples(specs, corpus, class_sets.get(corpus, '3class'), part_report)
    report.extend(_prefixed(part_report, corpus))
    for spec, label in part:
      sample_id = f'{corpus}:{spec.sample_id}'
      if sample_id in excluded:
        report.dropped_by_class_set.append((sample_id, f'listed in {os.path.basename(EXCLUSIONS)}'))
        continue
      labelled.append((_tagged(spec, corpus, sample_id), label))
  return labelled, report


def _prefixed(report: phases.BuildReport, corpus: str) -> phases.BuildReport:
  """The part's report with every name spelled as the composite spells it ('samm:006/006_1_2')."""
  return phases.BuildReport(
      repairs=[(f'{corpus}:{n}', w) for n, w in report.repairs],
      skipped=[(f'{corpus}:{n}', w) for n, w in report.skipped],
      unlabelled=[f'{corpus}:{n}' for n in report.unlabelled],
      dropped_by_class_set=[(f'{corpus}:{n}', w) for n, w in report.dropped_by_class_set])


def _tagged(spec, corpus: str, sample_id: str):
  """`spec` with the composite's sample id and subject, and its corpus tag."""
  return dataclasses.replace(spec, sample_id=sample_id, subject=f'{corpus}:{spec.subject}', corpus=corpus)
