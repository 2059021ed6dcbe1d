"""CAS(ME)²: whole-video frame folders `rawpic/s15/15_0101disgustingteeth/img<N>.jpg` and
`CAS(ME)^2code_final.xlsx` (or `…code_final(Updated).xlsx`), whose first sheet has no header (subject
number, clip name, onset, apex, offset (0 = unknown), AUs, emotion, expression type, self-report); sheet 2
maps subject number → folder id and sheet 3 maps clip stem ('anger1') → video code ('0401').

The distributed sheets 2 and 3 read `15 | s15 | 1` (folder id, folder name, subject number) and
`0101 | disgust1` (video code, clip stem): genbing99/SoftNet-SpotME load_label.py reads sheet 2's third
column as the subject and its second as the folder, and sheet 3's second column as the stem and its first
as the code. The two-column spellings `1 | 15` and `anger1 | 0401` are read as well."""

from __future__ import annotations

import os
import re

from fdp_jax.corpora import layout
from fdp_jax.corpora import phases
from fdp_jax.corpora import workbooks

CORPUS = 'casme_sq'
FRAME_DIRS = {'raw': ('rawpic',), 'cropped': ('cropped',)}
# `CAS(ME)^2code_final.xlsx`, `…code_final(Updated).xlsx` (sorted first, so the corrected one is read when
# both are there), `code_final.xlsx` (as SoftNet-SpotME renames it); not the corpus's
# `CAS(ME)^2blink-code.xlsx`, which sorts before them and is no code workbook.
ANNOTATION = r'(?!~\$)(CAS\(ME\)\^?2)?[\s_-]*code[\s_-]*final.*\.xlsx'
EXPRESSION_TYPES = {'micro': 'micro-expression', 'macro': 'macro-expression'}
_PLAIN_NUMBER = re.compile(r'\s*\d+(\.0)?\s*')

INSTRUCTIONS = """\
CAS(ME)² is licensed by the Institute of Psychology, Chinese Academy of Sciences: request it at
http://casme.psych.ac.cn/casme/e3 (signed licence agreement). Place in the manual folder:
  CAS(ME)^2code_final.xlsx
  rawpic/s15/15_0101disgustingteeth/img1.jpg …   (raw frames of the whole videos)
  cropped/s15/15_0101disgustingteeth/img1.jpg …  (cropped frames, for the `cropped` configs)
"""


def _subject_folders(rows) -> dict[int, int]:
  """{subject number (sheet 1's first column): frame-folder id} from sheet 2's rows."""
  mapping = {}
  for row in rows:
    cells = [c for c in row if c is not None and str(c).strip()]
    if (len(cells) >= 3 and re.fullmatch(r'\s*[sS]\d+\s*', str(cells[1]))
        and _PLAIN_NUMBER.fullmatch(str(cells[-1]))):
      # `15 | s15 | 1`: the folder is the one named, the subject number the last column.
      mapping[workbooks.subject_number(cells[-1])] = workbooks.subject_number(cells[1])
    elif len(cells) >= 2:
      number, folder = workbooks.subject_number(cells[0]), workbooks.subject_number(cells[1])
      if number is not None and folder is not None and re.fullmatch(r'\s*[sS]?\d+(\.0)?\s*', str(cells[0])):
        mapping[number] = folder
  return mapping


def _video_codes(rows) -> dict[str, str]:
  """{clip stem, lower case: four-digit video code} from sheet 3's rows; a code typed as a number (101)
  reads '0101'."""
  codes = {}
  for row in rows:
    cells = [c for c in row if c is not None and str(c).strip()]
    if len(cells) >= 2 and re.fullmatch(r'[A-Za-z]+\d*', str(cells[0]).strip()):
      code = workbooks.subject_number(cells[1])
      if code is not None:
        codes[str(cells[0]).strip().lower()] = f'{code:04d}'
    elif (len(cells) >= 2 and re.fullmatch(r'[A-Za-z]+\d*', str(cells[1]).strip())
          and _PLAIN_NUMBER.fullmatch(str(cells[0]))):
      codes[str(cells[1]).strip().lower()] = f'{workbooks.subject_number(cells[0]):04d}'  # `0101 | disgust1`
  return codes


def find_samples(root: str, frames: str = 'raw', expression: str = 'micro') -> tuple[list, phases.BuildReport]:
  """(ClipSpecs of the `expression` ('micro' | 'macro') samples, report). Subjects read 's<folder id>'."""
  report = phases.BuildReport()
  frames_root = layout.find_path(root, [*FRAME_DIRS[frames]], f'CAS(ME)² {frames} frames', INSTRUCTIONS)
  workbook = layout.find_file(root, ANNOTATION, 'the CAS(ME)² code workbook', INSTRUCTIONS)
  if workbooks.sheet_count(workbook) < 3:
    raise layout.CorpusLayoutError(f'{workbook}: expected 3 sheets (samples, subject → folder, clip → video)')
  rows = workbooks.read_sheet(workbook, 0)
  subject_folders = _subject_folders(workbooks.read_sheet(workbook, 1))
  video_codes = _video_codes(workbooks.read_sheet(workbook, 2))
  subjects = layout.numbered_dirs(frames_root, r's(\d+)')
  wanted = EXPRESSION_TYPES[expression]
  specs, used, listings = [], set(), {}
  for number_in_sheet, row in enumerate(rows, 1):
    row = tuple(row) + (None,) * (9 - len(row))
    if str(row[7] or '').strip().lower() != wanted:
      continue  # the other expression type, or not a sample row (a stray title or a blank)
    number, clip_name = workbooks.subject_number(row[0]), str(row[1] or '').strip()
    if not re.fullmatch(r'\s*\d+(\.0)?\s*', str(row[0])):
      number = None  # the first column holds plain subject numbers 1–22
    folder_id = subject_folders.get(number)
    subject = f's{folder_id}' if folder_id is not None else f'subject{number if number is not None else "?"}'
    sample_id = f'{subject}/{clip_name}'
    where = workbooks.row_name(workbook, number_in_sheet)
    try:
      if number is None:
        raise phases.SkipSample(f'subject cell {row[0]!r} is not a subject number; {phases.FIX_ROW}')
      if folder_id is None:
        raise phases.SkipSample(f'subject number {number} is not in the subject → folder sheet (sheet 2); '
                                'add it there or delete the row')
      stem = clip_name.rsplit('_', 1)[0].lower()
      code = video_codes.get(stem)
      if code is None:
        raise phases.SkipSample(f'clip stem {stem!r} is not in the clip → video sheet (sheet 3); add it '
                                'there or delete the row')
      subject_dir = subjects.get(folder_id)
      videos = [d for d in sorted(os.listdir(subject_dir)) if d.lower().startswith(f'{folder_id}_{code}')
                ] if subject_dir else []
      if not videos:
        looked_in = os.path.join(frames_root, subject)
        raise phases.SkipSample(f'no video folder {folder_id}_{code}* in {looked_in}; put the frames there or '
                                'delete the row')
      folder = os.path.join(subject_dir, videos[0])
      if folder not in listings:
        listings[folder] = phases.clip_frames(folder)
      listed = listings[folder]
      placed = phases.locate_phases(sample_id, [n for n, _ in listed], row[2], row[3], row[4], report,
                                    whole_video=True)
    except phases.SkipSample as e:
      report.skip(sample_id, f'{where}: {e}')
      continue
    if sample_id in used:
      sample_id = f'{sample_id}/{workbooks.frame_number(row[2])}'
    used.add(sample_id)
    emotion = workbooks.emotion_name(row[6])
    specs.append(phases.make_spec(sample_id, subject, videos[0], emotion, listed, placed, CORPUS))
  return specs, report
