"""Long videos for spotting: what a long-video corpus reader returns, and placing an annotated interval on a
video's frames with the repair rules every clip reader uses (`phases.locate_phases`, R1–R4).

A reader module (`casme_sq_long`, `samm_lv`, `casme3_long`) exports CORPUS, INSTRUCTIONS and
`find_videos(root, frames) -> (list[VideoSpec], phases.BuildReport)`: one VideoSpec per video folder that has
frames, with every annotated interval of it (micro and macro) placed on those frames. An interval row that
cannot be placed is skipped and reported under '<video_id>@<onset as annotated>'; a video with frames and no
interval is kept (spotting needs the videos where nothing happens too) and listed as unlabelled.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from fdp_jax.corpora import phases

INTERVAL_TYPES = ('micro', 'macro')


@dataclasses.dataclass(frozen=True)
class IntervalSpec:
  """One annotated expression as indices into the video's frames: onset <= apex <= offset."""
  onset: int
  apex: int
  offset: int
  type: str            # 'micro' | 'macro'
  emotion: str = ''    # the corpus's emotion word, lower case; '' where the corpus codes none


@dataclasses.dataclass(frozen=True)
class VideoSpec:
  """One long video: its frame files in chronological order and its annotated intervals."""
  video_id: str                      # unique in the corpus, e.g. 's15/15_0101disgustingteeth', '006_1'
  subject: str
  corpus: str
  fps: float
  frame_paths: tuple[str, ...]
  frame_numbers: tuple[int, ...]     # the number in each file name (the annotation's frame numbers)
  intervals: tuple[IntervalSpec, ...] = ()


def interval_type(cell: Any) -> str | None:
  """'micro' | 'macro' from an annotation's type cell ('micro-expression', 'Macro', 'ME', 'MaE'), or None."""
  text = str(cell or '').strip().lower().replace('_', '-')
  if text in ('me', 'micro') or text.startswith('micro'):
    return 'micro'
  if text in ('mae', 'macro') or text.startswith('macro'):
    return 'macro'
  return None


def place_interval(video_id: str, numbers: Sequence[int], onset: Any, apex: Any, offset: Any, type_cell: Any,
                   emotion: str, report: phases.BuildReport, where: str) -> IntervalSpec | None:
  """The interval of one annotation row on a video whose frames are numbered `numbers` (ascending), with
  R1–R4 applied (whole-video rules) and each repair reported; None, with the skip reported (naming the
  workbook row `where`), when the row cannot be placed or its type is neither micro nor macro."""
  name = f'{video_id}@{onset}'
  kind = interval_type(type_cell)
  if kind is None:
    report.skip(name, f'{where}: expression type {type_cell!r} is neither micro nor macro; {phases.FIX_ROW}')
    return None
  try:
    lo, _, on, ap, off = phases.locate_phases(name, numbers, onset, apex, offset, report, whole_video=True)
  except phases.SkipSample as e:
    report.skip(name, f'{where}: {e}')
    return None
  return IntervalSpec(lo + on, lo + ap, lo + off, kind, emotion)
