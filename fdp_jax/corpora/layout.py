"""Finding a corpus's folders and files in the manual folder, whatever the copy's spelling: case-insensitive
path components, several candidate names per folder, padded or unpadded subject numbers."""

from __future__ import annotations

import os
import re
from typing import Iterable, Sequence


class CorpusLayoutError(FileNotFoundError):
  """The manual folder does not hold the corpus where the builder looks for it."""


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
