"""Reading the corpora's annotation workbooks: sheets as rows of cell values, header rows found below any
title rows, and cells read as frame numbers, subject numbers or emotion names. A cell of the wrong type
(text, a date, 12.5) is never read as a number: the readers get None and say why they skip the row."""

from __future__ import annotations

import datetime
import os
import re
from typing import Any

from fdp_jax.corpora.layout import CorpusLayoutError


def normalise_key(text: Any) -> str:
  """Column-name key: 'Onset Frame', 'OnsetFrame' and 'onset_frame' all read 'onsetframe'."""
  return re.sub(r'[\s_\-]+', '', str(text or '')).lower()


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


def emotion_name(value: Any) -> str:
  """Emotion cell → lower-case name with inner whitespace collapsed ('Others ' → 'others')."""
  return re.sub(r'\s+', ' ', str(value or '').strip()).lower()
