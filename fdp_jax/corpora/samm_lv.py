"""SAMM Long Videos (SAMM-LV, the MEGC spotting release of SAMM): whole videos of 200 fps grey frames
`SAMM_longvideos/<subj3>_<n>/<subj3>_<n>_<frame>.jpg` and the workbook `SAMM_LongVideos_V<k>_Release.xlsx`,
one row per micro- or macro-expression.

Layout and annotation, as public spotting code reads them ([V] verified there, [U] unconfirmed — handled
defensively). Sources: genbing99/SoftNet-SpotME `load_label.py`, `load_images.py`, README;
genbing99/MEAN_Spot-then-recognize `load_excel.py`, `face_crop.py`; and, found by text search of public code
(repository names not shown by the index), a SAMM-LV PyTorch dataset (`SAMMDataset._process_label_file`),
a MEGC 2021 SAMM evaluation script (`get_ground_truth`), an xlrd reader of `SAMM_LongVideos_V1_Release.xlsx`
(`get_GT_intervals_for_video`), an annotation-length script (`pd.read_excel(path, header=9)`) and a MEGC 2025
data script (`get_image_paths`).
  - Frame folders `SAMM_longvideos/<video>/`, no subject level: `006_1`, `009_4`, `020_6`, `036_7`. [V]
  - Frame files `<video>_<number>.jpg`, e.g. `009_4_0007.jpg`, `020_6_5001.jpg`; frames numbered from 1; the
    padding is 4 digits in some videos and 5 in others ('04d', '05d'): the trailing integer is the frame
    number, sorted numerically. [V] The annotation's frame numbers are these file numbers. [V]
  - Workbook `SAMM_LongVideos_V1_Release.xlsx`, later `_V2_`, `_V3_` (one script names a `_V3_Release.xls`);
    the newest .xlsx found here is read. Sheet `FACS_Movement_Only` [V] (SoftNet reads the first sheet; read
    here by name, else the first). The header is sheet row 10, under 9 title rows (found here as the row
    whose first cell is `Subject`). [V]
  - Columns `Subject, Filename, Inducement Code, Onset, Apex, Offset, Duration, Type, Action Units, Notes`.
    [V] `Subject` is a number (zero-padded to 3 digits); `Filename` is `<video>_<k>` (`006_1_2`, also
    two-digit k) and names the video folder by its first two parts. [V] `Inducement Code` equals the video
    number (a script finds the folder as `<subject:03d>_<code>`) [V in that script, U in general]: used here
    only when `Filename` does not name a video. Onset/Apex/Offset are stored as floats (123.0). [V]
  - `Type` is `Micro - 1/2` or `Macro`. [V] No emotion column: the emotion of a micro-expression is in the
    SAMM clip workbook (MEAN merges on Filename + Type); here it is '' unless the sheet has one. [V]
  - Quirks: offset 0 = unknown (spotting code takes the apex as the end; here R1 mirrors the apex). [V]
    Some macro rows have onset 0 ("extremely long" samples that MEAN and SoftNet drop, and one MEGC script
    starts at the apex instead); here they are skipped and reported (R2 would clamp them into intervals of
    thousands of frames). [V] Offsets past
    the last frame (`020_6_5` ends at 5476, frames stop at 5001; `036_7_4` at 8298 vs 8201): R2. [V]
    Apex outside onset..offset (R3), duplicated rows, rows naming a missing folder, and video folders no
    row names (videos without an expression, kept for spotting): [U] for SAMM-LV, handled as the rules say.
  - 200 fps (a SAMM-LV script: FPS = 200, FRAME_SKIP = 7) [V]; 30 subjects (006–026, 028, 030–037) [V];
    147 videos, 159 micro and 343 macro rows [U].
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

from fdp_jax.corpora import layout
from fdp_jax.corpora import long_videos
from fdp_jax.corpora import phases
from fdp_jax.corpora import workbooks

CORPUS = 'samm_lv'
FPS = 200.0
FRAME_DIRS = ('SAMM_longvideos', 'SAMM_long_videos', 'SAMM-LV', 'SAMMLV/SAMM_longvideos')
# Newest release first: a copy holding several keeps reading the corrected one.
ANNOTATIONS = (r'SAMM_LongVideos_V3.*\.xlsx', r'SAMM_LongVideos_V2.*\.xlsx', r'SAMM_LongVideos.*\.xlsx')
SHEET = 'FACS_Movement_Only'
FOLDER = re.compile(r'(\d+)_(\d+)')                   # '006_1'
FILENAME = re.compile(r'\s*(\d+)_(\d+)(?:_\d+)?\s*')  # '006_1_2': video 006_1, its expression 2

INSTRUCTIONS = """\
SAMM Long Videos (SAMM-LV) is licensed by Manchester Metropolitan University: request the SAMM long videos
at http://www2.docm.mmu.ac.uk/STAFF/m.yap/dataset.php (signed licence agreement). Place in the manual folder:
  SAMM_LongVideos_V3_Release.xlsx   (or _V2_ / _V1_: the annotation workbook; save an .xls copy as .xlsx)
  SAMM_longvideos/006_1/006_1_0001.jpg …   (one folder per long video, <subject>_<video>, with its frames)
"""


def find_videos(root: str, frames: str = 'raw') -> tuple[list[long_videos.VideoSpec], phases.BuildReport]:
  """(VideoSpecs of every video folder with frames, in id order, each with its intervals in onset order;
  report). SAMM-LV ships one kind of frame: `frames` must be 'raw'."""
  if frames != 'raw':
    raise ValueError(f"SAMM-LV has only 'raw' frames, not {frames!r}")
  report = phases.BuildReport()
  workbook = _find_workbook(root)
  frames_root = layout.find_path(root, list(FRAME_DIRS), 'SAMM-LV frame folders', INSTRUCTIONS)
  folders = _video_folders(frames_root)
  columns, rows = workbooks.table(workbook, 'Subject', SHEET)
  intervals = {video_id: [] for video_id in folders.videos}
  named, kept = set(), {}
  for where, row in rows:
    video_id = _video_of(row, columns)
    named.add(video_id)
    placed = _place_row(video_id, row, columns, where, folders, kept, report)
    if placed is not None:
      intervals[video_id].append(placed)
  for name, why in folders.broken.items():
    if name not in named:
      report.skip(name, why)
  specs = []
  for video_id, listed in folders.videos.items():
    if video_id not in named:
      report.unlabelled.append(video_id)  # kept: spotting needs the videos where nothing happens too
    specs.append(long_videos.VideoSpec(
        video_id=video_id, subject=video_id.split('_')[0], corpus=CORPUS, fps=FPS,
        frame_paths=tuple(p for _, p in listed), frame_numbers=tuple(n for n, _ in listed),
        intervals=tuple(sorted(intervals[video_id], key=lambda i: (i.onset, i.offset, i.type)))))
  return specs, report


def _place_row(video_id: str | None, row: tuple, columns: dict[str, int], where: str, folders: _Folders,
               kept: dict[tuple, str], report: phases.BuildReport) -> long_videos.IntervalSpec | None:
  """The interval of one workbook row, or None with the skip reported as '<video>@<onset>'."""
  onset = _as_annotated(workbooks.cell(row, columns, 'Onset', 'Onset Frame'))
  apex = workbooks.cell(row, columns, 'Apex', 'Apex Frame')
  offset = workbooks.cell(row, columns, 'Offset', 'Offset Frame')
  name = f'{video_id or "?"}@{onset}'
  if video_id is None:
    report.skip(name, f'{where}: neither Filename nor Subject + Inducement Code name a video; {phases.FIX_ROW}')
    return None
  if video_id not in folders.videos:
    why = folders.broken.get(video_id) or (f'no frame folder {os.path.join(folders.root, video_id)}; put the '
                                           "video's frames there or delete the row")
    report.skip(name, f'{where}: {why}')
    return None
  if workbooks.frame_number(onset) == 0:
    # SAMM-LV's frames are numbered from 1: onset 0 marks a (macro) expression whose start was not coded.
    # Clamping it (R2) would make an interval of thousands of frames; public spotting code drops these rows.
    report.skip(name, f'{where}: onset 0 (frames start at 1): the start of this expression was not coded; '
                      'give its onset frame in the workbook to keep it')
    return None
  key = (video_id, onset, _as_annotated(offset))
  if key in kept:
    # Which of two rows for one interval is right cannot be told: the first is used, the other reported.
    report.skip(name, f'{where}: {kept[key]} names the same interval (video, onset, offset) and is the one '
                      'kept; delete whichever of the two rows is wrong')
    return None
  kept[key] = where
  numbers = [n for n, _ in folders.videos[video_id]]
  return long_videos.place_interval(video_id, numbers, onset, apex, offset, _type_cell(row, columns),
                                    _emotion(row, columns), report, where)


def _find_workbook(root: str) -> str:
  for pattern in ANNOTATIONS[:-1]:
    try:
      return layout.find_file(root, pattern, 'the SAMM-LV annotation workbook', INSTRUCTIONS)
    except layout.CorpusLayoutError:
      pass
  return layout.find_file(root, ANNOTATIONS[-1], 'the SAMM-LV annotation workbook', INSTRUCTIONS)


def _video_id(subject: int, number: int) -> str:
  """'006_1': the spelling of the real folders, whatever padding a copy or a cell uses."""
  return f'{subject:03d}_{number}'


@dataclasses.dataclass
class _Folders:
  root: str
  videos: dict[str, list[tuple[int, str]]]  # video id → [(frame number, path)], folders with frames
  broken: dict[str, str]                    # video id (or id/folder) → why its folder cannot be used


def _video_folders(frames_root: str) -> _Folders:
  """The video folders of `frames_root`, read once (minutes of 200-fps frames each)."""
  folders = _Folders(frames_root, {}, {})
  for entry in sorted(os.listdir(frames_root)):
    path = os.path.join(frames_root, entry)
    m = FOLDER.fullmatch(entry)
    if not m or not os.path.isdir(path):
      continue  # notes, archives, a copy's crop folders
    video_id = _video_id(int(m.group(1)), int(m.group(2)))
    if video_id in folders.videos or video_id in folders.broken:
      # '6_1' beside '006_1': one video twice; which copy is right is for the user to say.
      folders.broken[f'{video_id}/{entry}'] = (f'{path} is a second folder of video {video_id}, left out; '
                                               'delete or merge one of the two')
      continue
    try:
      listed = phases.clip_frames(path)
    except phases.SkipSample as e:
      folders.broken[video_id] = f'{e}; the video is left out'
      continue
    if listed:
      folders.videos[video_id] = listed
    else:
      folders.broken[video_id] = (f'the frame folder {path} holds no frames; restore them from your copy of '
                                  'the corpus')
  return folders


def _video_of(row: tuple, columns: dict[str, int]) -> str | None:
  """The video a row names: the first two parts of Filename (what spotting code reads), else Subject and
  Inducement Code (the video number)."""
  m = FILENAME.fullmatch(str(_optional(row, columns, 'Filename') or ''))
  if m:
    return _video_id(int(m.group(1)), int(m.group(2)))
  subject = workbooks.subject_number(workbooks.cell(row, columns, 'Subject'))
  number = workbooks.frame_number(_optional(row, columns, 'Inducement Code'))
  return _video_id(subject, number) if subject is not None and number is not None else None


def _as_annotated(cell: Any) -> Any:
  """A frame cell as reports quote it: 1234.0 reads 1234; anything else as it is."""
  number = workbooks.frame_number(cell)
  return number if number is not None else cell


def _optional(row: tuple, columns: dict[str, int], *names: str) -> Any:
  return next((workbooks.cell(row, columns, n) for n in names if workbooks.normalise_key(n) in columns), None)


def _type_cell(row: tuple, columns: dict[str, int]) -> Any:
  return workbooks.cell(row, columns, 'Type', 'Expression Type', 'Micro')


def _emotion(row: tuple, columns: dict[str, int]) -> str:
  return workbooks.emotion_name(_optional(row, columns, 'Estimated Emotion', 'Emotion'))
