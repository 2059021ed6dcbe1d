"""What every corpus reader shares: finding folders and workbooks, numeric frame order, reading sheets,
and the one set of repair rules for onset/apex/offset, with a report of everything repaired or skipped.

Repair rules (applied in this order, each one counted in the report under the sample's id):
  R1 an offset of 0, blank or '/' means "unknown": in a folder that holds just the clip, the clip's last
     frame; in a whole-video folder, the apex mirrored past itself (2·apex − onset) when apex > onset —
     else the row is skipped;
  R2 an onset before the first available frame or an offset after the last is clamped to the frames there
     are ('absurd' offsets such as 3460 in a 200-frame folder);
  R3 an apex that is blank, '/', or outside [onset, offset] becomes the midpoint ⌊(onset + offset) / 2⌋;
  R4 annotation frame numbers become indices of the stored frames: the onset the first frame numbered
     ≥ onset, the offset the last numbered ≤ offset, the apex the frame numbered nearest to it.
Rows that no rule can save (no frame folder, onset after offset, a window outside the folder's frames,
no frame inside the window, an onset or offset cell that is not a whole frame number) are skipped; a second
row naming a frame folder already named is skipped and the first row kept. Every skip names the sample,
the workbook row (or the file) and what to do about it. Frame folders with no annotation row are listed
as unlabelled. A cell of the wrong type (text, a date, 12.5) is never read as a number: an onset, offset
or subject that is not a whole number skips the row, an apex that is not one falls under R3.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
from typing import Any, Iterable, Sequence

FRAME_FILE = re.compile(r'^(?P<prefix>.*?)(?P<number>\d+)\.(?:jpe?g|bmp|png|tiff?)$', re.IGNORECASE)


class CorpusLayoutError(FileNotFoundError):
  """The manual folder does not hold the corpus where the builder looks for it."""


class SkipSample(Exception):
  """An annotation row that cannot be matched to frames; the message says why and what to do."""


# What the user can do, appended to the skip messages (the build report says how to rebuild).
FIX_ROW = 'correct the row in the workbook or delete it'
FIX_WINDOW = "correct the row's frame numbers or restore the missing frames"


@dataclasses.dataclass
class BuildReport:
  """Everything a build repaired, skipped or left out, by name."""
  repairs: list[tuple[str, str]] = dataclasses.field(default_factory=list)
  skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
  unlabelled: list[str] = dataclasses.field(default_factory=list)
  dropped_by_protocol: list[tuple[str, str]] = dataclasses.field(default_factory=list)

  def repair(self, sample_id: str, what: str) -> None:
    self.repairs.append((sample_id, what))

  def skip(self, name: str, why: str) -> None:
    self.skipped.append((name, why))

  def extend(self, other: 'BuildReport') -> None:
    for f in dataclasses.fields(self):
      getattr(self, f.name).extend(getattr(other, f.name))

  def as_dict(self) -> dict[str, Any]:
    return {
        'num_repairs': len(self.repairs), 'repairs': [list(r) for r in self.repairs],
        'num_skipped': len(self.skipped), 'skipped': [list(s) for s in self.skipped],
        'num_unlabelled': len(self.unlabelled), 'unlabelled': list(self.unlabelled),
        'num_dropped_by_protocol': len(self.dropped_by_protocol),
        'dropped_by_protocol': [list(d) for d in self.dropped_by_protocol],
    }

  def summary(self, limit: int = 20) -> str:
    lines = [f'{len(self.repairs)} repaired, {len(self.skipped)} skipped, {len(self.unlabelled)} frame '
             f'folders without annotation, {len(self.dropped_by_protocol)} outside the class protocol.']
    for title, items in (('Skipped', self.skipped), ('Repaired', self.repairs)):
      for name, why in items[:limit]:
        lines.append(f'  {title}: {name}: {why}')
      if len(items) > limit:
        lines.append(f'  … and {len(items) - limit} more {title.lower()} (see metadata.json)')
    return '\n'.join(lines)


def normalise_key(text: Any) -> str:
  """Column-name key: 'Onset Frame', 'OnsetFrame' and 'onset_frame' all read 'onsetframe'."""
  return re.sub(r'[\s_\-]+', '', str(text or '')).lower()


def find_path(root: str, candidates: Sequence[str], what: str, instructions: str = '') -> str:
  """The first of `candidates` (relative paths; case-insensitive per component) that exists in root."""
  for candidate in candidates:
    path = root
    for part in candidate.split('/'):
      path = _child(path, part)
      if path is None:
        break
    if path is not None:
      return path
  raise CorpusLayoutError(f'{what} not found in {root}: looked for {", ".join(candidates)}.'
                          + (f'\n{instructions}' if instructions else ''))


def find_file(root: str, pattern: str, what: str, instructions: str = '', max_depth: int = 2) -> str:
  """The first file (sorted) matching regex `pattern` (case-insensitive) within `max_depth` levels."""
  regex = re.compile(pattern, re.IGNORECASE)
  for depth_root, dirs, files in sorted(_walk(root, max_depth)):
    for f in sorted(files):
      if regex.fullmatch(f):
        return os.path.join(depth_root, f)
  raise CorpusLayoutError(f'{what} not found in {root} (file name like {pattern!r}).'
                          + (f'\n{instructions}' if instructions else ''))


def _walk(root: str, max_depth: int) -> Iterable[tuple[str, list[str], list[str]]]:
  base = root.rstrip(os.sep).count(os.sep)
  for path, dirs, files in os.walk(root):
    if path.count(os.sep) - base >= max_depth:
      dirs[:] = []
    yield path, dirs, files


def _child(path: str, name: str) -> str | None:
  exact = os.path.join(path, name)
  if os.path.exists(exact):
    return exact
  if not os.path.isdir(path):
    return None
  for entry in sorted(os.listdir(path)):
    if entry.lower() == name.lower():
      return os.path.join(path, entry)
  return None


def child_dir(path: str, name: str) -> str | None:
  """The sub-folder `name` of `path`, matched case-insensitively, or None."""
  found = _child(path, name)
  return found if found is not None and os.path.isdir(found) else None


def numbered_dirs(path: str, pattern: str) -> dict[int, str]:
  """{integer id: folder path} for sub-folders whose whole name matches `pattern` (one int group).

  This is how subject padding variants ('sub1' / 'sub01', 's1' / 's01', 'spNO.1' / 'spNo.1') are read.
  """
  regex = re.compile(pattern, re.IGNORECASE)
  found: dict[int, str] = {}
  for entry in sorted(os.listdir(path)) if os.path.isdir(path) else []:
    m = regex.fullmatch(entry)
    if m and os.path.isdir(os.path.join(path, entry)):
      found.setdefault(int(m.group(1)), os.path.join(path, entry))
  return found


def list_frames(folder: str, prefix: str | None = None) -> list[tuple[int, str]]:
  """[(frame number, path)] of the image files in `folder`, sorted numerically (img2 before img10).

  `prefix` keeps only files whose name before the number is exactly it (case-insensitive), so
  'img' does not match 'reg_img'. Anything else is ignored: `Thumbs.db`, `notes.txt`, `img3.jpg.txt`,
  folders, and hidden files — macOS copies leave `._img3.jpg` resource forks beside the frames, which
  would otherwise read as a second frame 3. Two files with the same number are an error.
  """
  frames: dict[int, str] = {}
  with os.scandir(folder) as entries:
    for entry in entries:
      m = FRAME_FILE.match(entry.name)
      if (not m or entry.name.startswith('.') or not entry.is_file()
          or (prefix is not None and m.group('prefix').lower() != prefix.lower())):
        continue
      number = int(m.group('number'))
      if number in frames:
        raise SkipSample(f'two frame files numbered {number} in {folder}: '
                         f'{os.path.basename(frames[number])}, {entry.name}; delete or rename one of them')
      frames[number] = entry.path
  return sorted(frames.items())


def read_sheet(path: str, sheet: int | str = 0) -> list[tuple]:
  """All rows of one sheet of an .xlsx workbook as tuples of cell values (formulas as their values)."""
  import openpyxl
  book = openpyxl.load_workbook(path, read_only=True, data_only=True)
  try:
    if isinstance(sheet, str):
      names = {n.lower(): n for n in book.sheetnames}
      ws = book[names.get(sheet.lower(), book.sheetnames[0])]
    else:
      ws = book.worksheets[sheet]
    return [tuple(row) for row in ws.iter_rows(values_only=True)]
  finally:
    book.close()


def sheet_count(path: str) -> int:
  import openpyxl
  book = openpyxl.load_workbook(path, read_only=True)
  try:
    return len(book.sheetnames)
  finally:
    book.close()


def row_name(workbook: str, number: int) -> str:
  """How messages name an annotation row: 'CASME2-coding-20140508.xlsx row 9' (the sheet's numbering)."""
  return f'{os.path.basename(workbook)} row {number}'


def table(workbook: str, first_header_cell: str, sheet: int | str = 0
          ) -> tuple[dict[str, int], list[tuple[str, tuple]]]:
  """Reads one sheet, finds the header row (the first whose first non-blank cell is `first_header_cell`,
  after any number of title rows) and returns ({normalised column name: index}, [(row name, cells)] of
  the data rows below it; see `row_name`). Blank columns have no name and are ignored; fully blank rows
  are dropped."""
  rows = read_sheet(workbook, sheet)
  want = normalise_key(first_header_cell)
  for i, row in enumerate(rows):
    cells = [c for c in row if not is_blank(c)]
    if cells and normalise_key(cells[0]) == want:
      columns = {normalise_key(c): j for j, c in enumerate(row) if not is_blank(c)}
      data = [(row_name(workbook, number), r) for number, r in enumerate(rows[i + 1:], i + 2)
              if any(not is_blank(c) for c in r)]
      return columns, data
  raise CorpusLayoutError(f'no header row starting with {first_header_cell!r} in {workbook}: restore the '
                          'workbook from your copy of the corpus')


def cell(row: tuple, columns: dict[str, int], *names: str) -> Any:
  """The value of the first of `names` (normalised) present in `columns`; None if the row is short."""
  for name in names:
    j = columns.get(normalise_key(name))
    if j is not None:
      return row[j] if j < len(row) else None
  raise CorpusLayoutError(f'the annotation sheet has none of the columns {names}')


def is_blank(value: Any) -> bool:
  """An empty cell: None, '' or whitespace."""
  return value is None or (isinstance(value, str) and not value.strip())


def frame_number(value: Any) -> int | None:
  """An annotation frame number: ints, floats such as 123.0, numeric strings. None for anything else:
  blank, '/', text, 12.5, booleans, and date cells (a number formatted as a date must not be read as
  one — its serial number is not what the coder typed)."""
  if isinstance(value, bool) or isinstance(value, (datetime.date, datetime.time, datetime.timedelta)):
    return None
  if isinstance(value, (int, float)):
    return int(value) if float(value).is_integer() else None
  text = str(value if value is not None else '').strip()
  if re.fullmatch(r'\d+(\.0*)?', text):
    return int(float(text))
  return None


def subject_number(value: Any) -> int | None:
  """The integer in a subject cell: 1, 1.0, '01', 'sub01', 's1', 'spNO.1'. None for blank, 1.5, '1.5',
  text without a trailing number, and dates (whose text ends in digits that are not a subject)."""
  if isinstance(value, str) and re.fullmatch(r'\s*\d+\.\d*\s*', value):
    value = float(value)                    # a number typed as text: '1.0' is 1, '1.5' is no subject
  if isinstance(value, (int, float)) and not isinstance(value, bool):
    return int(value) if float(value).is_integer() else None
  if not isinstance(value, str):
    return None
  m = re.search(r'(\d+)\s*$', value.strip())
  return int(m.group(1)) if m else None


def locate_phases(sample_id: str, numbers: Sequence[int], onset: Any, apex: Any, offset: Any,
                  report: BuildReport, whole_video: bool) -> tuple[int, int, int, int, int]:
  """Applies R1–R4 to one row. `numbers`: the folder's frame numbers, ascending.

  Returns (first index, last index) of the frames to store and the onset, apex, offset indices relative
  to the first one. In a clip folder every frame is stored; in a whole-video folder the onset–offset
  window. Raises SkipSample when the row cannot be placed; the repairs of a skipped row are not reported
  (the skip says what is wrong with it).
  """
  if not numbers:
    raise SkipSample('the frame folder holds no frames; restore them from your copy of the corpus or '
                     'delete the row')
  on, ap, off = frame_number(onset), frame_number(apex), frame_number(offset)
  first, last = numbers[0], numbers[-1]
  repairs = []
  if on is None:
    raise SkipSample(f'onset {onset!r} is not a frame number; {FIX_ROW}')
  if off is None and not _unknown(offset):
    raise SkipSample(f'offset {offset!r} is not a frame number; {FIX_ROW}')
  if off is None or off == 0:                                                     # R1
    if not whole_video:
      off = last
      repairs.append(f'R1 offset unknown ({offset!r}): last frame {last}')
    elif ap is not None and ap > on:
      off = 2 * ap - on
      repairs.append(f'R1 offset unknown ({offset!r}): apex mirrored, {off}')
    else:
      raise SkipSample(f'offset unknown ({offset!r}) and apex {apex!r} does not follow onset {on}; {FIX_ROW}')
  # Checked on the numbers as annotated, before R2 clamps them, so the message quotes the workbook.
  if on > off:
    raise SkipSample(f'onset {on} after offset {off}; {FIX_ROW}')
  if on > last or off < first:
    raise SkipSample(f"onset–offset [{on}, {off}] lies outside the folder's frames {first}..{last}; "
                     f'{FIX_WINDOW}')
  if on < first:                                                                  # R2
    repairs.append(f'R2 onset {on} before the first frame: {first}')
    on = first
  if off > last:
    repairs.append(f'R2 offset {off} after the last frame: {last}')
    off = last
  if ap is None or not on <= ap <= off:                                           # R3
    mid = (on + off) // 2
    why = 'is not a frame number' if ap is None else f'outside [{on}, {off}]'
    repairs.append(f'R3 apex {apex!r} {why}: midpoint {mid}')
    ap = mid
  inside = [i for i, n in enumerate(numbers) if on <= n <= off]                  # R4
  if not inside:
    raise SkipSample(f'no frame numbered in [{on}, {off}] (the folder has {first}..{last}); {FIX_WINDOW}')
  for what in repairs:
    report.repair(sample_id, what)
  lo, hi = (inside[0], inside[-1]) if whole_video else (0, len(numbers) - 1)
  apex_index = min(inside, key=lambda i: (abs(numbers[i] - ap), i))
  return lo, hi, inside[0] - lo, apex_index - lo, inside[-1] - lo


def _unknown(value: Any) -> bool:
  """An offset cell that says 'not known' (R1): blank or '/'."""
  return is_blank(value) or (isinstance(value, str) and value.strip() == '/')


def make_spec(sample_id: str, subject: str, clip: str, emotion: str, frames: Sequence[tuple[int, str]],
              phases: tuple[int, int, int, int, int], corpus: str):
  """The ClipSpec of a placed row: frames[lo..hi] and the phase indices from `locate_phases`."""
  from fdp_jax.preprocess.clips import ClipSpec
  lo, hi, on, ap, off = phases
  kept = frames[lo:hi + 1]
  return ClipSpec(sample_id=sample_id, subject=subject, clip=clip, emotion=emotion,
                  frame_paths=tuple(p for _, p in kept), frame_numbers=tuple(n for n, _ in kept),
                  onset=on, apex=ap, offset=off, corpus=corpus)


def emotion_name(value: Any) -> str:
  """Emotion cell → lower-case name with inner whitespace collapsed ('Others ' → 'others')."""
  return re.sub(r'\s+', ' ', str(value or '').strip()).lower()


def clip_folder_samples(rows: Sequence[tuple[str, tuple]], columns: dict[str, int], frames_root: str,
                        subject_dirs: dict[int, str], subject_id, phase_columns: tuple[str, str, str],
                        emotion_column: str, prefix: str | None, corpus: str, report: BuildReport) -> list:
  """ClipSpecs of annotation rows (from `table`) naming `<subject folder>/<Filename>/` clip folders
  (CASME II, SAMM).

  `subject_id(number)` spells a subject ('sub01', '006'); `subject_dirs` maps numbers to folders (from
  `numbered_dirs`, so padding variants read alike). Each clip folder holds just the clip: every frame is
  stored. The first row naming a folder is the one used, whatever becomes of it: a later row naming the
  same folder is skipped (which of two labels is right cannot be told, so neither row is merged or
  guessed). Folders no row names are listed as unlabelled.
  """
  specs, claimed = [], {}
  for where, row in rows:
    subject_cell, filename = cell(row, columns, 'Subject'), str(cell(row, columns, 'Filename') or '').strip()
    number = subject_number(subject_cell)
    sample_id = f'{subject_id(number) if number is not None else "?"}/{filename or "?"}'
    try:
      if number is None:
        raise SkipSample(f'Subject cell {subject_cell!r} is not a subject number; {FIX_ROW}')
      if not filename:
        raise SkipSample(f'the Filename cell is blank; {FIX_ROW}')
      subject_dir = subject_dirs.get(number)
      folder = child_dir(subject_dir, filename) if subject_dir else None
      if folder is None:
        looked_for = os.path.join(frames_root, subject_id(number), filename)
        raise SkipSample(f"no frame folder {looked_for}; put the clip's frames there or delete the row")
      if folder in claimed:
        raise SkipSample(f'{claimed[folder]} names the same frame folder {folder} and is the one used; '
                         'delete whichever of the two rows is wrong')
      claimed[folder] = where
      listed = list_frames(folder, prefix)
      onset, apex, offset = (cell(row, columns, c) for c in phase_columns)
      phases = locate_phases(sample_id, [n for n, _ in listed], onset, apex, offset, report, whole_video=False)
    except SkipSample as e:
      report.skip(sample_id, f'{where}: {e}')
      continue
    emotion = emotion_name(cell(row, columns, emotion_column))
    specs.append(make_spec(sample_id, subject_id(number), filename, emotion, listed, phases, corpus))
  for number, subject_dir in subject_dirs.items():
    for clip in sorted(os.listdir(subject_dir)):
      path = os.path.join(subject_dir, clip)
      if os.path.isdir(path) and path not in claimed:
        report.unlabelled.append(f'{subject_id(number)}/{clip}')
  return specs
