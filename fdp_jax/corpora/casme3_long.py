"""CAS(ME)³ Part A as long videos for spotting: every whole-video colour folder with its micro-expression
intervals (the ME workbook) and its macro-expression intervals (a macro workbook), placed on the video's
frames by `long_videos.place_interval` (repair rules R1–R4 of `phases`).

What the layout is and where that is known from ([V] read in the source named; [U] not verified):
  [V] Frames: `…/spNO.<n>/<letter>/color/<N>.jpg`, numbered from 0, a `depth/` folder beside `color/`,
      13 videos a–m per subject (zizheng-guo/ME-TST load_images.py; jingtingEmmaLi/CAS-ME-3
      exception/image_with_bad_quality_partA.txt lists `RGB/spNO.138/a/color/1294.jpg`). One video letter
      is upper case on disk and in the workbooks, `spNO.3 J` (CAS-ME-3 exception/
      error_info_damaged_image_partA.txt); the licensed copy keeps the subjects under
      `part_A/data/Compressed_version1_seperate_compress/` (third-party training code), so the folders are
      searched for anywhere under the manual folder, as the clip reader `casme3` does.
  [V] ME workbook `cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`, sheet `label`: Subject, Filename, Onset,
      Apex, Offset, AU, Objective class, emotion; the frame cells are text ('355'); 860 rows, some with
      apex = onset, 'Others' beside 'others', and one 'J' (CAS-ME-3 annotation/partA/).
  [V] The official combined annotation `CAS(ME)3_part_A_v2.xls`, sheet `AU+Emotion`: Subject, Filename,
      Onset, Apex, Offset, AU, Expression type ('Macro-expression' ×3346, 'Micro-expression' ×860, the
      latter the ME workbook's rows), Objective class — no emotion (CAS-ME-3 annotation/partA/). It is a
      legacy .xls that openpyxl cannot read: saved as .xlsx under the same name it is used for its macro
      rows when no macro workbook is there.
  [U] The macro workbook of the licensed package: `cas(me)3_part_A_MaE_label_JpgIndex_v2_emotion.xlsx`
      (in `part_A/annotation/` beside the ME workbook), first sheet `Sheet1`, columns sub, seq, onset, apex,
      offset, (AU?), emotion ('happiness', 'sadness', … 'others') — known only from third-party code that
      reads it, never seen. So any .xlsx whose name holds `part_A` and the word `MaE` or `macro` is taken,
      its header may spell the ME workbook's names (Subject, Filename, Onset, …) or the short ones (sub,
      seq, onset, …), and its emotion column is optional.
  [U] 30 fps (the project's figure; not found in a source read here).
A row of the ME workbook is a micro-expression; a row of a macro workbook a macro-expression, unless it
has an expression-type column (then micro rows there are ignored: the ME workbook is the micro annotation).
"""

from __future__ import annotations

import os
import re
from typing import Any, NamedTuple

from fdp_jax.corpora import casme3
from fdp_jax.corpora import layout
from fdp_jax.corpora import long_videos
from fdp_jax.corpora import phases
from fdp_jax.corpora import workbooks

CORPUS = 'casme3_long'
FPS = 30.0
ME_ANNOTATION = casme3.ANNOTATION
# The name is not verified (see the module docstring): part_A and MaE / macro as a word; no Excel lock file.
MACRO_ANNOTATION = r'(?!~\$).*part_?a.*(?<![a-z])(mae|macro)(?![a-z]).*\.xlsx'
COMBINED_ANNOTATION = r'(?!~\$)cas\(me\)\^?3_part_?a_v\d+\.xlsx'
LEGACY_MACRO = r'(?!~\$).*part_?a(_v\d+|.*(?<![a-z])(mae|macro)(?![a-z]).*)\.xls'
WORKBOOK_DEPTH = 3  # root/part_A/annotation/<workbook>
VIDEO_LETTER = re.compile(r'[a-z]', re.IGNORECASE)

INSTRUCTIONS = """\
CAS(ME)³ is licensed by the Institute of Psychology, Chinese Academy of Sciences: request it at
http://casme.psych.ac.cn/casme/e4 (signed licence agreement). Spotting needs Part A's whole videos, not the
ME-clip packages (Part_A_ME_clip/ holds only each micro-expression's own frames). Place in the manual
folder (any sub-folders, e.g. part_A/annotation/ and part_A/data/…/):
  cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx        (micro-expressions; required)
  cas(me)3_part_A_MaE_label_JpgIndex_v2_emotion.xlsx  (macro-expressions; or CAS(ME)3_part_A_v2.xls from
                                                   github.com/jingtingEmmaLi/CAS-ME-3 saved as .xlsx)
  …/spNO.1/a/color/0.jpg …                         (whole-video colour frames; depth/ is not read)
"""


class Row(NamedTuple):
  """One annotation row, as the workbook has it."""
  where: str
  subject: Any
  letter: Any
  onset: Any
  apex: Any
  offset: Any
  type_cell: Any
  emotion: str


def find_videos(root: str, frames: str = 'raw') -> tuple[list[long_videos.VideoSpec], phases.BuildReport]:
  """(one VideoSpec per whole-video colour folder, report). Video ids 'spNO.1/a' (letter lower case,
  subject spelled spNO whatever the folder's spelling); intervals sorted by onset; emotions lower case."""
  if frames != 'raw':
    raise ValueError(f"CAS(ME)³ Part A has only 'raw' colour frames, not {frames!r}")
  report = phases.BuildReport()
  me_workbook = layout.find_file(root, ME_ANNOTATION, 'the CAS(ME)³ Part A ME label workbook', INSTRUCTIONS,
                                 max_depth=WORKBOOK_DEPTH)
  rows = _me_rows(me_workbook) + _macro_rows(root, report)
  subjects, clips = casme3._index_folders(root)
  videos, unusable = _video_folders(subjects, report)
  if not videos and not unusable:
    raise layout.CorpusLayoutError(f'no whole-video folders spNO.<n>/<letter>/color under {root} (ME-clip '
                                   f'packages alone are not long videos)\n{INSTRUCTIONS}')
  intervals = _place_rows(rows, videos, unusable, clips, report)
  specs = []
  for video_id, (subject, listed) in sorted(videos.items(), key=lambda kv: _video_order(kv[0])):
    placed = tuple(sorted(intervals.get(video_id, []), key=lambda i: (i.onset, i.offset, i.type)))
    if not placed:
      report.unlabelled.append(video_id)  # kept: spotting needs the videos where nothing happens too
    specs.append(long_videos.VideoSpec(
        video_id=video_id, subject=subject, corpus=CORPUS, fps=FPS, frame_paths=tuple(p for _, p in listed),
        frame_numbers=tuple(n for n, _ in listed), intervals=placed))
  return specs, report


def _video_order(video_id: str) -> tuple[int, str]:
  subject, letter = video_id.split('/')
  return int(subject.split('.')[1]), letter


def _me_rows(workbook: str) -> list[Row]:
  columns, rows = workbooks.table(workbook, 'Subject', 'label')
  names = ('Subject', 'Filename', 'Onset', 'Apex', 'Offset')
  return [Row(where, *(workbooks.cell(row, columns, c) for c in names), 'micro',
              workbooks.emotion_name(workbooks.cell(row, columns, 'emotion')))
          for where, row in rows]


def _macro_rows(root: str, report: phases.BuildReport) -> list[Row]:
  """The macro workbook's rows; none (reported, not fatal) when there is no readable macro workbook."""
  workbook = _find(root, MACRO_ANNOTATION) or _find(root, COMBINED_ANNOTATION)
  if workbook is None:
    legacy = _find(root, LEGACY_MACRO)
    why = (f'{legacy} is a legacy .xls workbook, which cannot be read: save it as .xlsx beside it'
           if legacy else f'no macro-expression workbook (a name like '
           f'cas(me)3_part_A_MaE_label_JpgIndex_v2_emotion.xlsx) found under {root}')
    report.skip('macro-expressions', f'{why}; the videos are built with their micro-expressions only')
    return []
  columns, rows = _macro_table(workbook)
  typed = 'expressiontype' in columns
  has_emotion = 'emotion' in columns
  found = []
  for where, row in rows:
    type_cell = workbooks.cell(row, columns, 'Expression type') if typed else 'macro'
    if long_videos.interval_type(type_cell) == 'micro':
      continue  # the ME workbook is the micro annotation; these rows repeat it
    emotion = workbooks.emotion_name(workbooks.cell(row, columns, 'emotion')) if has_emotion else ''
    found.append(Row(where, *(workbooks.cell(row, columns, *names) for names in (
        ('Subject', 'sub'), ('Filename', 'seq'), ('Onset',), ('Apex',), ('Offset',))), type_cell, emotion))
  return found


def _macro_table(workbook: str) -> tuple[dict[str, int], list[tuple[str, tuple]]]:
  """The first sheet's table, whether its header says 'Subject' (the ME workbook's names) or 'sub'."""
  try:
    return workbooks.table(workbook, 'Subject')
  except layout.CorpusLayoutError:
    return workbooks.table(workbook, 'sub')


def _find(root: str, pattern: str) -> str | None:
  """The file within WORKBOOK_DEPTH levels whose name matches `pattern` (case-insensitive) and sorts last:
  the newest of several versions (CAS(ME)3_part_A_v2 over _v1, as the release ships both)."""
  regex = re.compile(pattern, re.IGNORECASE)
  base = root.rstrip(os.sep).count(os.sep)
  found = []
  for path, dirs, files in os.walk(root):
    if path.count(os.sep) - base >= WORKBOOK_DEPTH:
      dirs[:] = []
    found += [(f.lower(), os.path.join(path, f)) for f in files if regex.fullmatch(f)]
  return max(found)[1] if found else None


def _video_folders(subjects: dict[int, str], report: phases.BuildReport
                   ) -> tuple[dict[str, tuple[str, list[tuple[int, str]]]], dict[str, str]]:
  """({video id: (subject, [(frame number, path)])}, {video id: why its folder cannot be used}) of every
  `<spNO folder>/<letter>/color` folder. A letter folder without `color/` (depth only) is no video."""
  videos, unusable, folders = {}, {}, {}
  for number, subject_dir in sorted(subjects.items()):
    subject = f'spNO.{number}'
    for entry in sorted(os.listdir(subject_dir)):
      if not VIDEO_LETTER.fullmatch(entry):
        continue
      color = layout.child_dir(os.path.join(subject_dir, entry), 'color')
      if color is None:
        continue
      video_id = f'{subject}/{entry.lower()}'
      if video_id in folders:  # 'J' and 'j' side by side: which one the annotation means cannot be told
        report.skip(color, f'the same video {video_id} as {folders[video_id]}, which is the one used; merge '
                    'the two folders or delete one')
        continue
      folders[video_id] = color
      try:
        listed = phases.clip_frames(color)
      except phases.SkipSample as e:
        unusable[video_id] = str(e)
      else:
        if listed:
          videos[video_id] = (subject, listed)
        else:
          unusable[video_id] = (f'{color} holds no numbered frames; restore them from your copy of the '
                                'corpus')
      if video_id in unusable:
        report.skip(video_id, f'{unusable[video_id]}; the video and its intervals are left out')
  return videos, unusable


def _place_rows(rows: list[Row], videos: dict, unusable: dict[str, str], clips: dict,
                report: phases.BuildReport) -> dict[str, list[long_videos.IntervalSpec]]:
  """{video id: placed intervals}. Each row that cannot be placed is reported under '<video id>@<onset>';
  a row repeating an earlier placed one (same video, onset, offset and type) is skipped, naming it."""
  placed: dict[str, list[long_videos.IntervalSpec]] = {}
  kept: dict[tuple, str] = {}
  for row in rows:
    number = workbooks.subject_number(row.subject)
    letter = str(row.letter if row.letter is not None else '').strip()
    video_id = f'spNO.{number if number is not None else "?"}/{letter.lower() or "?"}'
    name = f'{video_id}@{row.onset}'
    if number is None or not VIDEO_LETTER.fullmatch(letter):
      report.skip(name, f'{row.where}: no subject number or video letter a–m in ({row.subject!r}, '
                  f'{row.letter!r}); {phases.FIX_ROW}')
      continue
    if video_id not in videos:
      report.skip(name, f'{row.where}: {_no_video(video_id, number, letter, row.onset, unusable, clips)}')
      continue
    key = (video_id, workbooks.frame_number(row.onset), _offset_key(row.offset),
           long_videos.interval_type(row.type_cell))
    if key in kept:
      report.skip(name, f'{row.where}: {kept[key]} has the same video, onset, offset and type and is the one '
                  'used; delete whichever of the two rows is wrong')
      continue
    numbers = [n for n, _ in videos[video_id][1]]
    interval = long_videos.place_interval(video_id, numbers, row.onset, row.apex, row.offset, row.type_cell,
                                          row.emotion, report, row.where)
    if interval is not None:
      kept[key] = row.where
      placed.setdefault(video_id, []).append(interval)
  return placed


def _offset_key(offset: Any) -> Any:
  """An offset as duplicates compare it: the frame number, else the cell's text (0, blank and '/' differ)."""
  number = workbooks.frame_number(offset)
  return number if number is not None else str(offset if offset is not None else '').strip()


def _no_video(video_id: str, number: int, letter: str, onset: Any, unusable: dict[str, str],
              clips: dict) -> str:
  """Why a row's video is not there, and what to do."""
  if video_id in unusable:
    return f'its video cannot be used: {unusable[video_id]}'
  onset_number = workbooks.frame_number(onset)
  package = clips.get((number, letter.lower(), onset_number)) if onset_number is not None else None
  clip_note = (f'the ME-clip package {package} holds only the expression\'s own frames and is not a long '
               'video' if package else 'ME-clip packages (Part_A_ME_clip/) are not long videos either')
  return (f'no whole-video folder {video_id}/color (…/spNO.{number}/{letter.lower()}/color/<N>.jpg) in the '
          f'manual folder; {clip_note}; put the video\'s frames there or delete the row')
