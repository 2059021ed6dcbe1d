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
        f'  python -m fdp_jax.build_dataset --dataset={builder.name}{config} --manual_dir=DIR '
        f'--data_dir={os.path.dirname(os.path.dirname(os.path.dirname(builder.data_dir)))}\n'
        f'What to request and where to put it:\n{instructions}')
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

  def __len__(self) -> int:
    return len(self.sample_ids)


def _text(v: Any) -> str:
  return v.decode('utf-8') if isinstance(v, bytes) else str(v)


def read_index(source: Sequence[dict], class_names: Sequence[str]) -> CorpusIndex:
  """Reads subject, label, id and lengths of every record; duplicate sample ids are an error."""
  ids, subjects, labels, lengths, windows = [], [], [], [], []
  for i in range(len(source)):
    ex = source[i]
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
                     np.asarray(windows, np.int64), tuple(class_names))


def load_corpus(data_config) -> tuple[Sequence[dict], CorpusIndex, tfds.core.DatasetInfo]:
  """(random-access source of the 'train' split, its index, dataset info) for `config.data`."""
  builder = get_builder(data_config.builder, data_config.get('builder_config'), data_config.get('data_dir'))
  ensure_built(builder)
  source = builder.as_data_source()[data_config.get('split', 'train')]
  class_names = builder.info.features['label'].names
  return source, read_index(source, class_names), builder.info
