"""CASME II: `sub01…sub26/<Filename>/` frame folders, raw `img<N>.jpg` or cropped
`reg_img<N>.jpg`, and the coding workbook (one header row, blank columns, `/` apex)."""

from __future__ import annotations

from fdp_jax.corpora import layout
from fdp_jax.corpora import phases
from fdp_jax.corpora import workbooks

CORPUS = 'casme2'
FRAME_DIRS = {
    'raw': ('CASME2_RAW_selected', 'CASME2_RAW', 'CASME2-RAW'),
    'cropped': ('Cropped', 'Cropped-updated/Cropped', 'Cropped_original'),
}
FRAME_PREFIX = {'raw': 'img', 'cropped': 'reg_img'}
ANNOTATION = r'CASME2-coding.*\.xlsx'

INSTRUCTIONS = """\
CASME II is licensed by the Institute of Psychology, Chinese Academy of Sciences: request it at
http://casme.psych.ac.cn/casme/e2 (signed licence agreement). Place in the manual folder:
  CASME2-coding-20140508.xlsx       (or CASME2-coding-20190701.xlsx / CASME2-coding-updated.xlsx)
  CASME2_RAW_selected/sub01/EP02_01f/img46.jpg …   (raw frames; also CASME2_RAW or CASME2-RAW)
  Cropped/sub01/EP02_01f/reg_img46.jpg …           (cropped frames; also Cropped-updated/Cropped)
"""


def find_samples(root: str, frames: str = 'raw') -> tuple[list, phases.BuildReport]:
  """(ClipSpecs of every annotated sample with frames, report). Emotions are lower-case as coded."""
  report = phases.BuildReport()
  frames_root = layout.find_path(root, [*FRAME_DIRS[frames]], f'CASME II {frames} frames', INSTRUCTIONS)
  workbook = layout.find_file(root, ANNOTATION, 'the CASME II coding workbook', INSTRUCTIONS)
  columns, rows = workbooks.table(workbook, 'Subject')
  subjects = layout.numbered_dirs(frames_root, r'sub(\d+)')
  specs = phases.clip_folder_samples(
      rows, columns, frames_root, subjects, lambda n: f'sub{n:02d}', ('OnsetFrame', 'ApexFrame', 'OffsetFrame'),
      'Estimated Emotion', FRAME_PREFIX[frames], CORPUS, report)
  return specs, report
