"""CAS(ME)² as long videos for spotting: every whole-video frame folder `rawpic/s15/15_0101disgustingteeth/`
with every annotated interval of it, micro and macro, placed on its frames by `long_videos.place_interval`
(repair rules R1–R4 of `phases`). The workbook is the one the clip reader `casme_sq` reads, with its sheets
read by the same helpers.

What the layout is and where that is known from ([V] read in the source named; [U] not verified).
Sources: genbing99/SoftNet-SpotME README, load_label.py, load_images.py; garlic0000/ME-GCN-Project
feature_extraction/cas(me)^2/csv/cas(me)^2_original.csv (the rows of the `(Updated)` workbook, subjects
and videos renamed, type 1 = macro, 2 = micro) and crop scripts; and, found by text search of public code
(repository not shown by the index), that project's notes, a MATLAB label reader, an xlrd spotting script
and a script reading CSV exports of sheets 2 and 3.
  [V] Workbook `CAS(ME)^2code_final.xlsx` (SoftNet README; the MATLAB reader), in later copies
      `CAS(ME)^2code_final(Updated).xlsx` (the notes, the xlrd script), renamed `code_final.xlsx` by
      SoftNet's load_label.py. The corpus also ships `CAS(ME)^2blink-code.xlsx` (the MATLAB reader), which
      sorts first and is not read (`casme_sq.ANNOTATION`).
  [V] Sheet 1 has no header: subject number 1–22, clip name `<stem>_<k>` ('anger1_1'), onset, apex,
      offset, AUs, emotion (positive / negative / surprise / others), expression type ('micro-expression' /
      'macro-expression'), self-reported emotion (load_label.py; the MATLAB reader).
  [V] Sheet 2 maps subject number → folder: its first column is the folder id (15) and its third the
      subject number (1) (the notes); its second is compared with folder names 's15' (load_label.py).
      Sheet 3 maps clip stem → video code, `0101 | disgust1` (load_label.py; the notes). Subjects 1..22
      are s15, s16, s19–s27, s29–s38, s40; codes 0101, 0102, 0401, 0402, 0502, 0503, 0505, 0507, 0508 (the
      notes; the xlrd script hard-codes both). Read by `casme_sq._subject_folders` / `_video_codes`, which
      also read the two-column spellings `1 | 15` and `anger1 | 0401`.
  [V] Frames `rawpic/s<id>/<id>_<code><title>/img<N>.jpg`, e.g. `s15/15_0101disgustingteeth`; the video's
      code is the 4 digits after the underscore (load_images.py). Annotation frame N is the file numbered N,
      from 1 (load_label.py takes index N − 1). Numbers are read from the names, so zero padding does not
      matter. [U] whether the distributed names are padded (SoftNet's comments suggest `img001.jpg`).
  [V] Offset 0 means unknown (load_label.py ends such an interval at the apex; the CSV-export script
      mirrors the apex, min(2·apex − onset, last frame)): here R1 mirrors the apex and R2 clamps, both
      reported. In the rows seen it occurs on macro rows; micro rows are treated alike [U]. Apex 0 and
      offsets before the apex occur (the CSV: R3, midpoint). Videos without any row exist (15_0508: the
      CSV, the xlrd script): kept, unlabelled.
  [V] `rawpic/s19/23_0502funnyerrors` is subject 23's video filed in s19 (the notes; a version of the crop
      script special-cases it; the CSV has 0502 rows for subject 23 and none for 19). So a video is filed
      under the subject its folder name starts with, wherever it sits, and a misfiled one is reported as a
      repair under its video id (`s23/23_0502funnyerrors`). [U] whether s23 also holds a copy (if it does,
      that one is read and the other reported).
  [U] `cropped/` mirrors `rawpic/`'s folder names and lacks a few videos (the notes).
  [V] 30 fps (the xlrd script; the MATLAB code of another spotting study).
"""

from __future__ import annotations

import os
import re
from typing import Any, NamedTuple

from fdp_jax.corpora import casme_sq
from fdp_jax.corpora import layout
from fdp_jax.corpora import long_videos
from fdp_jax.corpora import phases
from fdp_jax.corpora import workbooks

CORPUS = 'casme_sq_long'
FPS = 30.0
VIDEO_FOLDER = re.compile(r'(\d+)_(\d{4})(.*)')   # '15_0101disgustingteeth': subject 15, video 0101
SUBJECT_CELL = re.compile(r'\s*\d+(\.0)?\s*')     # sheet 1's first column holds plain subject numbers
ROW_CELLS = 9

INSTRUCTIONS = """\
CAS(ME)² is licensed by the Institute of Psychology, Chinese Academy of Sciences: request it at
http://casme.psych.ac.cn/casme/e3 (signed licence agreement). Spotting reads the whole videos' frames and
every interval of the code workbook. Place in the manual folder:
  CAS(ME)^2code_final(Updated).xlsx   (or CAS(ME)^2code_final.xlsx: the code workbook, all three sheets)
  rawpic/s15/15_0101disgustingteeth/img1.jpg …   (raw frames of the whole videos)
  cropped/s15/15_0101disgustingteeth/img1.jpg …  (cropped frames, for the `cropped` configs)
"""


class _Video(NamedTuple):
  video_id: str                      # 's15/15_0101disgustingteeth'
  subject: str                       # 's15'
  frames: list[tuple[int, str]]      # [(frame number, path)]


def find_videos(root: str, frames: str = 'raw') -> tuple[list[long_videos.VideoSpec], phases.BuildReport]:
  """(VideoSpecs of every video folder with frames, in id order, each with its intervals in onset order;
  report). `frames`: 'raw' (rawpic/) or 'cropped' (cropped/)."""
  if frames not in casme_sq.FRAME_DIRS:
    raise ValueError(f'frames must be one of {sorted(casme_sq.FRAME_DIRS)}, not {frames!r}')
  report = phases.BuildReport()
  frames_root = layout.find_path(root, list(casme_sq.FRAME_DIRS[frames]), f'CAS(ME)² {frames} frames',
                                 INSTRUCTIONS)
  workbook = layout.find_file(root, casme_sq.ANNOTATION, 'the CAS(ME)² code workbook', INSTRUCTIONS)
  if workbooks.sheet_count(workbook) < 3:
    raise layout.CorpusLayoutError(f'{workbook}: expected 3 sheets (samples, subject → folder, clip → video); '
                                   f'restore it from your copy of the corpus.\n{INSTRUCTIONS}')
  subject_folders = casme_sq._subject_folders(workbooks.read_sheet(workbook, 1))
  video_codes = casme_sq._video_codes(workbooks.read_sheet(workbook, 2))
  videos, broken = _video_folders(frames_root, report)
  intervals = {key: [] for key in videos}
  named, kept = set(), {}
  for number_in_sheet, row in enumerate(workbooks.read_sheet(workbook, 0), 1):
    row = tuple(row) + (None,) * (ROW_CELLS - len(row))
    if all(workbooks.is_blank(c) for c in row):
      continue
    where = workbooks.row_name(workbook, number_in_sheet)
    onset = _as_annotated(row[2])
    label, key, why = _video_of(row, subject_folders, video_codes)
    if key is not None:
      named.add(key)
      if key in broken:
        label, why = broken[key]
      elif key not in videos:
        why = (f'no video folder {key[0]}_{key[1]}* in {os.path.join(frames_root, f"s{key[0]}")}; put the '
               "video's frames there or delete the row")
      else:
        label = videos[key].video_id
    if why is not None:
      report.skip(f'{label}@{onset}', f'{where}: {why}')
      continue
    placed = _place_row(videos[key], key, onset, row, where, kept, report)
    if placed is not None:
      intervals[key].append(placed)
  for key, (video_id, why) in broken.items():
    if key not in named:
      report.skip(video_id, why)
  specs = []
  for key, video in sorted(videos.items(), key=lambda kv: kv[1].video_id):
    if key not in named:
      report.unlabelled.append(video.video_id)  # kept: spotting needs the videos where nothing happens too
    specs.append(long_videos.VideoSpec(
        video_id=video.video_id, subject=video.subject, corpus=CORPUS, fps=FPS,
        frame_paths=tuple(p for _, p in video.frames), frame_numbers=tuple(n for n, _ in video.frames),
        intervals=tuple(sorted(intervals[key], key=lambda i: (i.onset, i.offset, i.type)))))
  return specs, report


def _video_folders(frames_root: str, report: phases.BuildReport
                   ) -> tuple[dict[tuple[int, str], _Video], dict[tuple[int, str], tuple[str, str]]]:
  """({(subject id, video code): video} of the folders with frames, {(subject id, video code): (video id,
  why its folder is unusable)}). A video is filed under the subject its folder name starts with, wherever
  the folder sits; a second folder of one video is left out and reported."""
  found = []
  for folder_id, subject_dir in layout.numbered_dirs(frames_root, r's(\d+)').items():
    for entry in sorted(os.listdir(subject_dir)):
      m = VIDEO_FOLDER.fullmatch(entry)
      path = os.path.join(subject_dir, entry)
      if m and os.path.isdir(path):
        found.append((int(m.group(1)) != folder_id, int(m.group(1)), m.group(2), entry, path))
  videos, broken = {}, {}
  for misfiled, subject_id, code, entry, path in sorted(found):  # folders in their own subject's folder first
    key, video_id = (subject_id, code), f's{subject_id}/{entry}'
    if key in videos or key in broken:
      # Two folders of one video ('15_0101x' beside '15_0101y', or a misfiled copy of one in place): which
      # is right is for the user to say.
      where = os.path.relpath(path, frames_root)
      report.skip(where, f'{path} is a second folder of video {subject_id}_{code}, left out; delete or merge '
                         'one of the two')
      continue
    try:
      listed = phases.clip_frames(path)
    except phases.SkipSample as e:
      broken[key] = (video_id, f'{e}; the video is left out')
      continue
    if not listed:
      broken[key] = (video_id, f'the frame folder {path} holds no frames; restore them from your copy of the '
                               'corpus')
      continue
    if misfiled:
      report.repair(video_id, f'{path} sits in another subject\'s folder; its name makes it subject '
                              f'{subject_id}\'s video: read as s{subject_id}')
    videos[key] = _Video(video_id, f's{subject_id}', listed)
  return videos, broken


def _video_of(row: tuple, subject_folders: dict[int, int], video_codes: dict[str, str]
              ) -> tuple[str, tuple[int, str] | None, str | None]:
  """('<subject>/<clip>' as skips name the row, (subject id, video code) of the video the row names or None,
  why the row names no video or None)."""
  number = workbooks.subject_number(row[0]) if SUBJECT_CELL.fullmatch(str(row[0])) else None
  folder_id = subject_folders.get(number)
  subject = f's{folder_id}' if folder_id is not None else f'subject{number if number is not None else "?"}'
  clip = str(row[1] if row[1] is not None else '').strip()
  label = f'{subject}/{clip or "?"}'
  stem = clip.rsplit('_', 1)[0].lower()
  if number is None:
    return label, None, f'subject cell {row[0]!r} is not a subject number; {phases.FIX_ROW}'
  if folder_id is None:
    return label, None, (f'subject number {number} is not in the subject → folder sheet (sheet 2); add it '
                         'there or delete the row')
  if not clip:
    return label, None, f'the clip-name cell is blank; {phases.FIX_ROW}'
  if stem not in video_codes:
    return label, None, (f'clip stem {stem!r} is not in the clip → video sheet (sheet 3); add it there or '
                         'delete the row')
  return label, (folder_id, video_codes[stem]), None


def _place_row(video: _Video, key: tuple[int, str], onset: Any, row: tuple, where: str, kept: dict[tuple, str],
               report: phases.BuildReport) -> long_videos.IntervalSpec | None:
  """The interval of one row on its video, or None with the skip reported as '<video id>@<onset>'."""
  apex, offset, type_cell = row[3], row[4], row[7]
  same = (key, onset, _as_annotated(offset), long_videos.interval_type(type_cell))
  if same in kept:
    # Which of two rows for one interval is right cannot be told: the first is used, the other reported.
    report.skip(f'{video.video_id}@{onset}', f'{where}: {kept[same]} names the same interval (video, onset, '
                                             'offset, type) and is the one kept; delete whichever of the two '
                                             'rows is wrong')
    return None
  placed = long_videos.place_interval(video.video_id, [n for n, _ in video.frames], onset, apex, offset,
                                      type_cell, workbooks.emotion_name(row[6]), report, where)
  if placed is not None:
    kept[same] = where  # only a placed row is 'the one kept'
  return placed


def _as_annotated(cell: Any) -> Any:
  """A frame cell as names and reports quote it: 1234.0 reads 1234; anything else as it is."""
  number = workbooks.frame_number(cell)
  return number if number is not None else cell
