"""Placing an annotation row on a folder's frames: the one set of repair rules for onset/apex/offset every
corpus reader applies, the skip of a row no rule can save, and the build report of both.

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
import os
from typing import Any, Sequence

from fdp_jax.corpora import layout
from fdp_jax.corpora import workbooks
from fdp_jax.preprocess import frame_folders
from fdp_jax.preprocess.clips import ClipSpec


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
  dropped_by_class_set: list[tuple[str, str]] = dataclasses.field(default_factory=list)

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
        'num_dropped_by_class_set': len(self.dropped_by_class_set),
        'dropped_by_class_set': [list(d) for d in self.dropped_by_class_set],
    }

  def summary(self, limit: int = 20) -> str:
    lines = [f'{len(self.repairs)} repaired, {len(self.skipped)} skipped, {len(self.unlabelled)} frame '
             f'folders without annotation, {len(self.dropped_by_class_set)} outside the class set.']
    for title, items in (('Skipped', self.skipped), ('Repaired', self.repairs)):
      for name, why in items[:limit]:
        lines.append(f'  {title}: {name}: {why}')
      if len(items) > limit:
        lines.append(f'  … and {len(items) - limit} more {title.lower()} (see metadata.json)')
    return '\n'.join(lines)


def clip_frames(folder: str, prefix: str | None = None) -> list[tuple[int, str]]:
  """[(frame number, path)] of a sample's frame folder, as `frame_folders.list_frames` lists them; two files
  with one number skip the sample (which of them is the frame is for the user to say)."""
  try:
    return frame_folders.list_frames(folder, prefix)
  except frame_folders.DuplicateFrameNumber as e:
    raise SkipSample(str(e)) from None


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
  on, ap, off = (workbooks.frame_number(v) for v in (onset, apex, offset))
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
  return workbooks.is_blank(value) or (isinstance(value, str) and value.strip() == '/')


def make_spec(sample_id: str, subject: str, clip: str, emotion: str, frames: Sequence[tuple[int, str]],
              phases: tuple[int, int, int, int, int], corpus: str):
  """The ClipSpec of a placed row: frames[lo..hi] and the phase indices from `locate_phases`."""
  lo, hi, on, ap, off = phases
  kept = frames[lo:hi + 1]
  return ClipSpec(sample_id=sample_id, subject=subject, clip=clip, emotion=emotion,
                  frame_paths=tuple(p for _, p in kept), frame_numbers=tuple(n for n, _ in kept),
                  onset=on, apex=ap, offset=off, corpus=corpus)


def clip_folder_samples(rows: Sequence[tuple[str, tuple]], columns: dict[str, int], frames_root: str,
                        subject_dirs: dict[int, str], subject_id, phase_columns: tuple[str, str, str],
                        emotion_column: str, prefix: str | None, corpus: str, report: BuildReport) -> list:
  """ClipSpecs of annotation rows (from `workbooks.table`) naming `<subject folder>/<Filename>/` clip
  folders (CASME II, SAMM).

  `subject_id(number)` spells a subject ('sub01', '006'); `subject_dirs` maps numbers to folders (from
  `layout.numbered_dirs`, so padding variants read alike). Each clip folder holds just the clip: every
  frame is stored. The first row naming a folder is the one used, whatever becomes of it: a later row
  naming the same folder is skipped (which of two labels is right cannot be told, so neither row is merged
  or guessed). Folders no row names are listed as unlabelled.
  """
  specs, claimed = [], {}
  for where, row in rows:
    subject_cell = workbooks.cell(row, columns, 'Subject')
    filename = str(workbooks.cell(row, columns, 'Filename') or '').strip()
    number = workbooks.subject_number(subject_cell)
    sample_id = f'{subject_id(number) if number is not None else "?"}/{filename or "?"}'
    try:
      if number is None:
        raise SkipSample(f'Subject cell {subject_cell!r} is not a subject number; {FIX_ROW}')
      if not filename:
        raise SkipSample(f'the Filename cell is blank; {FIX_ROW}')
      subject_dir = subject_dirs.get(number)
      folder = layout.child_dir(subject_dir, filename) if subject_dir else None
      if folder is None:
        looked_for = os.path.join(frames_root, subject_id(number), filename)
        raise SkipSample(f"no frame folder {looked_for}; put the clip's frames there or delete the row")
      if folder in claimed:
        raise SkipSample(f'{claimed[folder]} names the same frame folder {folder} and is the one used; '
                         'delete whichever of the two rows is wrong')
      claimed[folder] = where
      listed = clip_frames(folder, prefix)
      onset, apex, offset = (workbooks.cell(row, columns, c) for c in phase_columns)
      phases = locate_phases(sample_id, [n for n, _ in listed], onset, apex, offset, report, whole_video=False)
    except SkipSample as e:
      report.skip(sample_id, f'{where}: {e}')
      continue
    emotion = workbooks.emotion_name(workbooks.cell(row, columns, emotion_column))
    specs.append(make_spec(sample_id, subject_id(number), filename, emotion, listed, phases, corpus))
  for number, subject_dir in subject_dirs.items():
    for clip in sorted(os.listdir(subject_dir)):
      path = os.path.join(subject_dir, clip)
      if os.path.isdir(path) and path not in claimed:
        report.unlabelled.append(f'{subject_id(number)}/{clip}')
  return specs
