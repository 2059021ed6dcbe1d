"""Long videos read from a long-video corpus (`schema.long_video_features`), with their annotated intervals
as `metrics.Interval`s."""

from __future__ import annotations

import dataclasses

import numpy as np

from fdp_jax import data_sources, schema
from fdp_jax.spotting.metrics import Interval


@dataclasses.dataclass(frozen=True)
class Video:
  video_id: str
  subject: str
  fps: float
  frames: np.ndarray          # (N, S, S, 1) uint8 aligned grey faces
  face_present: np.ndarray    # (N,) bool
  intervals: tuple[Interval, ...]
  emotions: tuple[str, ...]   # the corpus's emotion word of each interval ('' where not coded)
  apexes: tuple[int, ...]

  def __len__(self) -> int:
    return len(self.frames)


def _text(v) -> str:
  return v.decode('utf-8') if isinstance(v, bytes) else str(v)


def from_record(record: dict) -> Video:
  iv = record['intervals']
  types = [schema.INTERVAL_TYPES[int(t)] if not isinstance(t, (str, bytes)) else _text(t) for t in iv['type']]
  intervals = tuple(Interval(int(on), int(off), kind) for on, off, kind in zip(iv['onset'], iv['offset'], types))
  return Video(_text(record['video_id']), _text(record['subject']), float(record['fps']),
               np.asarray(record['frames']), np.asarray(record['face_present'], bool), intervals,
               tuple(_text(e) for e in iv['emotion']), tuple(int(a) for a in iv['apex']))


def load_videos(data_config) -> tuple[list[Video], object]:
  """(every video of the configured long-video corpus, in record order; its DatasetInfo). The synthetic
  corpus is built on first use; a licensed one not built stops with what to do (`data_sources`)."""
  builder = data_sources.get_builder(data_config.builder, data_config.builder_config,
                                     data_config.data_dir)
  data_sources.ensure_built(builder)
  if 'intervals' not in builder.info.features:
    raise ValueError(f'{data_config.builder} is a clip corpus, not a long-video corpus: spotting reads '
                     'synthetic_long, casme_sq_long, samm_lv or casme3_long')
  source = builder.as_data_source()[data_config.split]
  return [from_record(source[i]) for i in range(len(source))], builder.info
