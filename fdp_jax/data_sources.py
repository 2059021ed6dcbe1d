"""Finding a corpus's TFDS builder, making sure the dataset is built, and reading its index.

Builders live in `datasets/<name>/<name>_dataset_builder.py` (the TFDS convention). Corpora that need no
download (the synthetic one) are built on first use; licensed corpora are never built implicitly: a run
stops before any work and says where the data goes and how to build it.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from typing import Any, Sequence

import numpy as np
import tensorflow_datasets as tfds
from absl import logging


class DatasetNotBuiltError(RuntimeError):
  """The configured corpus has not been built into the data directory."""


def default_data_dir() -> str:
  return os.environ.get('TFDS_DATA_DIR', os.path.expanduser('~/tensorflow_datasets'))


def builder_class(name: str) -> type[tfds.core.DatasetBuilder]:
  try:
    module = importlib.import_module(f'datasets.{name}.{name}_dataset_builder')
  except ModuleNotFoundError as e:
    if e.name and e.name.startswith(f'datasets.{name}'):
      raise ValueError(f'unknown corpus {name!r}: no datasets/{name}/{name}_dataset_builder.py') from e
    raise
  return module.Builder


def get_builder(name: str, config: str | None, data_dir: str | None, **kwargs) -> tfds.core.DatasetBuilder:
  cls = builder_class(name)
  return cls(config=config or None, data_dir=data_dir or default_data_dir(), file_format='array_record',
             **kwargs)


# An `incomplete.*` folder untouched this long is taken to be left by a build that was killed, not one that
# another process is writing right now.
LEFTOVER_AGE_S = 600


def remove_interrupted_builds(builder: tfds.core.DatasetBuilder, min_age_s: float = LEFTOVER_AGE_S
                              ) -> list[str]:
  """Deletes the `incomplete.*` folders a killed build of this dataset left beside it (TFDS starts every
  build in a fresh one and never removes an old one; at 144 px with flow they hold gigabytes). Folders
  modified in the last `min_age_s` seconds may belong to a build running now and are kept. Returns the
  paths removed."""
  import shutil
  import time
  parent = os.path.dirname(builder.data_dir)
  if not os.path.isdir(parent):
    return []
  removed = []
  for name in sorted(os.listdir(parent)):
    path = os.path.join(parent, name)
    if not (name.startswith('incomplete.') and os.path.isdir(path)):
      continue
    newest = max([os.path.getmtime(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files]
                 + [os.path.getmtime(path)])
    if time.time() - newest >= min_age_s:
      shutil.rmtree(path, ignore_errors=True)
      logging.warning('removed %s, left by an interrupted build of %s', path, builder.info.full_name)
      removed.append(path)
    else:
      logging.warning('%s may be a build of %s running now (modified %.0f s ago); it is left in place — '
                      'delete it if no build is running', path, builder.info.full_name, time.time() - newest)
  return removed


def ensure_built(builder: tfds.core.DatasetBuilder) -> None:
  """Builds a download-free corpus if needed; for a licensed one raises `DatasetNotBuiltError`."""
  if builder.is_prepared():
    return
  instructions = getattr(builder, 'MANUAL_DOWNLOAD_INSTRUCTIONS', None)
  if instructions:
    config = f' --config={builder.builder_config.name}' if builder.builder_config else ''
    raise DatasetNotBuiltError(
        f'The {builder.name} dataset is not built: expected it at {builder.data_dir}.\n'
        f'Build it from your licensed copy with\n'
        f'  python -m fdp_jax.tools.build_dataset --dataset={builder.name}{config} --manual_dir=DIR '
        f'--data_dir={os.path.dirname(os.path.dirname(os.path.dirname(builder.data_dir)))}\n'
        f'What to request and where to put it:\n{instructions}')
  remove_interrupted_builds(builder)
  builder.download_and_prepare()


@dataclasses.dataclass(frozen=True)
class CorpusIndex:
  """What cross-validation needs to know of every record, in record order."""
  sample_ids: tuple[str, ...]
  subjects: tuple[str, ...]
  labels: np.ndarray          # (N,) int64
  num_frames: np.ndarray      # (N,) int64 frames stored per record
  window_lengths: np.ndarray  # (N,) int64 offset - onset + 1
  class_names: tuple[str, ...]
  frame_shape: tuple[int, int] = (0, 0)   # (S, S) of the stored frames

  def __len__(self) -> int:
    return len(self.sample_ids)


def _text(v: Any) -> str:
  return v.decode('utf-8') if isinstance(v, bytes) else str(v)


def read_index(source: Sequence[dict], class_names: Sequence[str]) -> CorpusIndex:
  """Reads subject, label, id and lengths of every record; duplicate sample ids are an error."""
  ids, subjects, labels, lengths, windows = [], [], [], [], []
  frame_shape = (0, 0)
  for i in range(len(source)):
    ex = source[i]
    frame_shape = tuple(int(v) for v in np.shape(ex['frames'])[1:3])
    ids.append(_text(ex['sample_id']))
    subjects.append(_text(ex['subject']))
    labels.append(int(ex['label']))
    lengths.append(int(np.shape(ex['frames'])[0]))
    windows.append(int(ex['offset']) - int(ex['onset']) + 1)
  seen: dict[str, int] = {}
  for i, sid in enumerate(ids):
    if sid in seen:
      raise ValueError(f'duplicated sample_id {sid!r} (records {seen[sid]} and {i}): rebuild the dataset')
    seen[sid] = i
  return CorpusIndex(tuple(ids), tuple(subjects), np.asarray(labels, np.int64), np.asarray(lengths, np.int64),
                     np.asarray(windows, np.int64), tuple(class_names), frame_shape)


def load_corpus(data_config) -> tuple[Sequence[dict], CorpusIndex, tfds.core.DatasetInfo]:
  """(random-access source of the 'train' split, its index, dataset info) for `config.data`."""
  builder = get_builder(data_config.builder, data_config.builder_config, data_config.data_dir)
  ensure_built(builder)
  source = builder.as_data_source()[data_config.split]
  class_names = builder.info.features['label'].names
  return source, read_index(source, class_names), builder.info
