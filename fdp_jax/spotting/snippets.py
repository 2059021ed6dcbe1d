"""Long videos seen as many short clips: the snippet centred on frame t is frames t−K … t+K, a record of the
clip schema (onset 0, apex K, offset 2K) whose label says what frame t is part of — none, a
micro-expression or a macro-expression. The recognition machinery then trains and scores the spotter
unchanged: LOSO folds by subject, the fold-parallel trainer, checkpoints, resume, the non-finite guard.

Snippets are centred every `stride` frames, only where all 2K+1 frames show a face: a frame without a face
is never scored, so nothing is ever spotted there. Frames are views into the videos, never copied.
"""

from __future__ import annotations

import numpy as np

from fdp_jax import data_sources
from fdp_jax.spotting.videos import Video

CLASS_NAMES = ('none', 'micro', 'macro')


def frame_labels(video: Video) -> np.ndarray:
  """(N,) int class of every frame: 1 inside a micro interval, 2 inside a macro one (micro wins where a
  corpus nests one in the other: it is the rarer and shorter), else 0."""
  labels = np.zeros(len(video), np.int64)
  for kind in ('macro', 'micro'):
    for interval in video.intervals:
      if interval.type == kind:
        labels[interval.onset:interval.offset + 1] = CLASS_NAMES.index(kind)
  return labels


def snippet_centres(video: Video, half_window: int, stride: int) -> np.ndarray:
  """Centres t (every `stride` frames) whose window t−K … t+K lies in the video and shows a face throughout."""
  n, k = len(video), half_window
  if n < 2 * k + 1:
    return np.zeros(0, np.int64)
  absent = np.concatenate([[0], np.cumsum(~video.face_present)])
  centres = np.arange(k, n - k, stride)
  return centres[(absent[centres + k + 1] - absent[centres - k]) == 0]


class SnippetSource:
  """A random-access source of snippet records over `videos` (record i → a dict of the clip schema)."""

  def __init__(self, videos: list[Video], half_window: int, stride: int):
    if half_window < 1 or stride < 1:
      raise ValueError(f'spot.half_window and spot.stride must be ≥ 1, got {half_window}, {stride}')
    self.videos, self.half_window = videos, half_window
    refs, labels = [], []
    for v, video in enumerate(videos):
      centres = snippet_centres(video, half_window, stride)
      refs.append(np.stack([np.full(len(centres), v), centres], 1))
      labels.append(frame_labels(video)[centres])
    self.refs = np.concatenate(refs) if refs else np.zeros((0, 2), np.int64)
    self.labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)

  def __len__(self) -> int:
    return len(self.refs)

  def __getitem__(self, i: int) -> dict:
    v, t = (int(x) for x in self.refs[i])
    video, k = self.videos[v], self.half_window
    return {'sample_id': f'{video.video_id}@{t}', 'subject': video.subject,
            'frames': video.frames[t - k:t + k + 1], 'onset': np.int32(0), 'apex': np.int32(k),
            'offset': np.int32(2 * k), 'label': np.int32(self.labels[i])}

  def index(self) -> data_sources.CorpusIndex:
    k = self.half_window
    side = self.videos[0].frames.shape[1:3] if self.videos else (0, 0)
    return data_sources.CorpusIndex(
        sample_ids=tuple(f'{self.videos[v].video_id}@{t}' for v, t in self.refs),
        subjects=tuple(self.videos[v].subject for v, _ in self.refs), labels=self.labels.copy(),
        num_frames=np.full(len(self), 2 * k + 1), window_lengths=np.full(len(self), 2 * k + 1),
        class_names=CLASS_NAMES, frame_shape=tuple(int(s) for s in side))


def parse_sample_id(sample_id: str) -> tuple[str, int]:
  """('s03/v1', 417) of a snippet id 's03/v1@417'."""
  video_id, t = sample_id.rsplit('@', 1)
  return video_id, int(t)
