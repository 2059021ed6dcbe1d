"""megc2019: the MEGC 2019 composite — CASME II + SAMM + SMIC-HS in 3 classes, with a corpus tag per sample.

  python -m fdp_jax.build_dataset --dataset=megc2019 --config=3class_raw_64 --manual_dir=DIR

DIR holds the three licensed corpora side by side, each laid out as its own builder expects:
  DIR/casme2/…   DIR/samm/…   DIR/smic/…
Subjects and sample ids are prefixed with the corpus ('casme2:sub01', 'samm:006/006_1_2'), so LOSO runs over
the 68 subjects and scores can be sliced per corpus. `exclusions.txt` beside this file lists samples left out.
"""

import os

from fdp_jax.corpora import builder
from fdp_jax.corpora import casme2
from fdp_jax.corpora import common
from fdp_jax.corpora import protocols
from fdp_jax.corpora import samm
from fdp_jax.corpora import smic

EXCLUSIONS = os.path.join(os.path.dirname(__file__), 'exclusions.txt')
READERS = {'casme2': casme2, 'samm': samm, 'smic': smic}


def read_exclusions(path: str = EXCLUSIONS) -> set[str]:
  with open(path) as f:
    return {line.strip() for line in f if line.strip() and not line.lstrip().startswith('#')}


class Builder(builder.MECorpusBuilder):
  """MEGC 2019 composite: 442 samples of 68 subjects (SMIC 164, CASME II 145, SAMM 133)."""

  CORPUS = 'megc2019'
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'The composite reads the three licensed corpora from sub-folders of the manual folder:\n'
      '  casme2/ as for the casme2 builder:\n' + casme2.INSTRUCTIONS +
      '  samm/ as for the samm builder:\n' + samm.INSTRUCTIONS +
      '  smic/ as for the smic builder (the HS recordings are used):\n' + smic.INSTRUCTIONS)
  DESCRIPTION = ('MEGC 2019 composite micro-expression set: CASME II, SAMM and SMIC-HS relabelled '
                 'negative/positive/surprise (CORPORA.md mapping), aligned grey faces with landmarks.')
  BUILDER_CONFIGS = builder.corpus_configs('megc2019', frames=('raw', 'cropped'))

  def labelled_samples(self, root: str):
    report = common.BuildReport()
    excluded = read_exclusions()
    labelled = []
    for corpus, reader in READERS.items():
      part_root = common.find_path(root, [corpus], f'the {corpus} part of the composite',
                                   self.MANUAL_DOWNLOAD_INSTRUCTIONS)
      frames = 'raw' if corpus == 'samm' else self.builder_config.frames
      kwargs = {'modality': 'HS'} if corpus == 'smic' else {}
      specs, part_report = reader.find_samples(part_root, frames, **kwargs)
      part = builder.label_samples(specs, corpus, protocols.get(corpus, '3class'), part_report)
      report.extend(_prefixed(part_report, corpus))
      for spec, label in part:
        sample_id = f'{corpus}:{spec.sample_id}'
        if sample_id in excluded:
          report.dropped_by_protocol.append((sample_id, 'listed in exclusions.txt'))
          continue
        labelled.append((_tagged(spec, corpus, sample_id), label))
    return labelled, report


def _prefixed(report: common.BuildReport, corpus: str) -> common.BuildReport:
  """The part's report with every name spelled as the composite spells it ('samm:006/006_1_2')."""
  return common.BuildReport(
      repairs=[(f'{corpus}:{n}', w) for n, w in report.repairs],
      skipped=[(f'{corpus}:{n}', w) for n, w in report.skipped],
      unlabelled=[f'{corpus}:{n}' for n in report.unlabelled],
      dropped_by_protocol=[(f'{corpus}:{n}', w) for n, w in report.dropped_by_protocol])


def _tagged(spec, corpus: str, sample_id: str):
  import dataclasses
  return dataclasses.replace(spec, sample_id=sample_id, subject=f'{corpus}:{spec.subject}', corpus=corpus)
