"""SAMM: `SAMM/<subj3>/<Filename>/<subj3>_<frame>.jpg` (4- or 5-digit frame numbers) and
`SAMM_Micro_FACS_Codes_v2.xlsx`, whose header sits under 13 title rows."""

from __future__ import annotations

from fdp_jax.corpora import layout
from fdp_jax.corpora import phases
from fdp_jax.corpora import workbooks

CORPUS = 'samm'
ANNOTATION = r'SAMM_Micro_FACS_Codes.*\.xlsx'

INSTRUCTIONS = """\
SAMM is licensed by Manchester Metropolitan University: request it at
http://www2.docm.mmu.ac.uk/STAFF/m.yap/dataset.php (signed licence agreement). Place in the manual folder:
  SAMM_Micro_FACS_Codes_v2.xlsx
  SAMM/006/006_1_2/006_05562.jpg …   (one folder per subject, one per clip)
"""


def find_samples(root: str, frames: str = 'raw') -> tuple[list, phases.BuildReport]:
  """(ClipSpecs, report). SAMM ships one kind of frame (grey, uncropped): `frames` must be 'raw'."""
  if frames != 'raw':
    raise ValueError(f"SAMM has only 'raw' frames, not {frames!r}")
  report = phases.BuildReport()
  workbook = layout.find_file(root, ANNOTATION, 'the SAMM FACS-code workbook', INSTRUCTIONS)
  try:
    frames_root = layout.find_path(root, ['SAMM'], 'SAMM frame folders', INSTRUCTIONS)
  except layout.CorpusLayoutError:
    if not layout.numbered_dirs(root, r'(\d{3})'):
      raise
    frames_root = root  # the subject folders directly in the manual folder
  columns, rows = workbooks.table(workbook, 'Subject')
  subjects = layout.numbered_dirs(frames_root, r'(\d+)')
  specs = phases.clip_folder_samples(
      rows, columns, frames_root, subjects, lambda n: f'{n:03d}', ('Onset Frame', 'Apex Frame', 'Offset Frame'),
      'Estimated Emotion', None, CORPUS, report)
  return specs, report
