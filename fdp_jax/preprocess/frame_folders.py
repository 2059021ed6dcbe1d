"""Which files of a folder are a clip's frames, and in what order: the one rule the corpus readers and
prediction share, so a folder reads the same whether it is built into a dataset or predicted on. No JAX."""

from __future__ import annotations

import os
import re

IMAGE_SUFFIXES = ('jpg', 'jpeg', 'png', 'bmp', 'tif', 'tiff')
FRAME_FILE = re.compile(rf'^(?P<prefix>.*?)(?P<number>\d+)\.(?:{"|".join(IMAGE_SUFFIXES)})$', re.IGNORECASE)


class DuplicateFrameNumber(ValueError):
  """Two image files of one folder carry the same frame number; the message names both and what to do."""


def list_frames(folder: str, prefix: str | None = None) -> list[tuple[int, str]]:
  """[(frame number, path)] of the image files in `folder`, sorted numerically (img2 before img10).

  The frame number is the one right before the extension. `prefix` keeps only files whose name before the
  number is exactly it (case-insensitive), so 'img' does not match 'reg_img'. Anything else is ignored:
  `Thumbs.db`, `notes.txt`, `img3.jpg.txt`, folders, and hidden files — macOS copies leave `._img3.jpg`
  resource forks beside the frames, which would otherwise read as a second frame 3. Two files with the
  same number (`img3.jpg`, `img03.jpg`) raise DuplicateFrameNumber: which one is the frame cannot be told.
  An empty list means the folder holds no numbered frames.
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
        raise DuplicateFrameNumber(f'two frame files numbered {number} in {folder}: '
                                   f'{os.path.basename(frames[number])}, {entry.name}; delete or rename one '
                                   'of them')
      frames[number] = entry.path
  return sorted(frames.items())
