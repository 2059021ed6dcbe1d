"""The feature schema shared by every micro-expression corpus builder.

One record is one coded micro-expression sample (a clip). Every builder — the synthetic corpus and the
licensed corpora alike — declares its features with `me_features`, so the input pipeline, the trainer and
prediction read all corpora the same way.

Fields (T = number of frames stored for the clip, S = aligned face size):
  sample_id      str   stable and unique within the corpus, e.g. 'sub01/EP02_01f' or 'spNO.1/a/153'.
  corpus         str   short corpus tag ('synthetic_me', 'casme2', ...); the composite corpus (megc2019) mixes them.
  subject        str   subject id as the corpus spells it, zero-padded ('sub01', '006', 's1', 'spNO.1').
  clip           str   the source folder / video the frames come from.
  label          ClassLabel over the class set's classes (index order is part of the contract).
  frames         uint8 (T, S, S, 1) aligned grey faces, chronological.
  frame_numbers  int32 (T,) the frame number each stored frame had in the source (file name number).
  landmarks      float32 (T, 68, 2) (x, y) in pixels of `frames`.
  onset, apex, offset   int32 indices into `frames` (0-based), onset <= apex <= offset < T.
  flow           float32 (T-1, S, S, 2) optional: (dx, dy) motion of each pixel of frame t to frame t+1.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow_datasets as tfds

NUM_LANDMARKS = 68


def me_features(image_size: int, class_names: Sequence[str], with_flow: bool = False
                ) -> tfds.features.FeaturesDict:
  """The FeaturesDict every builder uses; `with_flow` adds the dense flow between consecutive frames."""
  s = image_size
  features = {
      'sample_id': tfds.features.Text(),
      'corpus': tfds.features.Text(),
      'subject': tfds.features.Text(),
      'clip': tfds.features.Text(),
      'label': tfds.features.ClassLabel(names=list(class_names)),
      'frames': tfds.features.Tensor(shape=(None, s, s, 1), dtype=np.uint8, encoding='zlib'),
      'frame_numbers': tfds.features.Tensor(shape=(None,), dtype=np.int32),
      'landmarks': tfds.features.Tensor(shape=(None, NUM_LANDMARKS, 2), dtype=np.float32),
      'onset': tfds.features.Scalar(dtype=np.int32),
      'apex': tfds.features.Scalar(dtype=np.int32),
      'offset': tfds.features.Scalar(dtype=np.int32),
  }
  if with_flow:
    features['flow'] = tfds.features.Tensor(shape=(None, s, s, 2), dtype=np.float32, encoding='zlib')
  return tfds.features.FeaturesDict(features)


def check_example(example: dict, image_size: int, with_flow: bool = False) -> None:
  """Raises ValueError naming the sample when an example breaks the schema's invariants.

  Builders call this before yielding, so a contradiction between annotation and files is caught at
  build time and never becomes a silently wrong record.
  """
  sid = example.get('sample_id', '<no sample_id>')
  frames = np.asarray(example['frames'])
  t = frames.shape[0]
  if frames.ndim != 4 or frames.shape[1:] != (image_size, image_size, 1) or frames.dtype != np.uint8:
    raise ValueError(f'{sid}: frames must be uint8 (T, {image_size}, {image_size}, 1), got '
                     f'{frames.dtype} {frames.shape}')
  if np.asarray(example['landmarks']).shape != (t, NUM_LANDMARKS, 2):
    raise ValueError(f'{sid}: landmarks must be ({t}, 68, 2), got {np.asarray(example["landmarks"]).shape}')
  if np.asarray(example['frame_numbers']).shape != (t,):
    raise ValueError(f'{sid}: frame_numbers must have {t} entries')
  on, ap, off = (int(example[k]) for k in ('onset', 'apex', 'offset'))
  if not 0 <= on <= ap <= off < t:
    raise ValueError(f'{sid}: need 0 <= onset <= apex <= offset < {t}, got {on}, {ap}, {off}')
  if with_flow and np.asarray(example['flow']).shape != (t - 1, image_size, image_size, 2):
    raise ValueError(f'{sid}: flow must be ({t - 1}, {image_size}, {image_size}, 2)')


# Long videos (spotting): one record is one whole video with every annotated interval in it.
#   video_id, corpus, subject   str
#   fps            float32 frames per second of the stored frames (after any frame step)
#   frames         uint8 (N, S, S, 1) grey faces aligned by their temporally smoothed landmarks; a frame
#                  without a face is mid-grey
#   frame_numbers  int32 (N,) source frame number of each stored frame
#   landmarks      float32 (N, 68, 2) in pixels of `frames` (zeros where no face)
#   face_present   bool (N,) a face was detected on the frame
#   intervals      sequence of {onset, apex, offset: int32 indices into frames, type: micro | macro,
#                  emotion: str ('' when the corpus codes none)}
INTERVAL_TYPES = ('micro', 'macro')


def long_video_features(image_size: int) -> tfds.features.FeaturesDict:
  s = image_size
  return tfds.features.FeaturesDict({
      'video_id': tfds.features.Text(),
      'corpus': tfds.features.Text(),
      'subject': tfds.features.Text(),
      'fps': tfds.features.Scalar(dtype=np.float32),
      'frames': tfds.features.Tensor(shape=(None, s, s, 1), dtype=np.uint8, encoding='zlib'),
      'frame_numbers': tfds.features.Tensor(shape=(None,), dtype=np.int32),
      'landmarks': tfds.features.Tensor(shape=(None, NUM_LANDMARKS, 2), dtype=np.float32, encoding='zlib'),
      'face_present': tfds.features.Tensor(shape=(None,), dtype=np.bool_),
      'intervals': tfds.features.Sequence({
          'onset': tfds.features.Scalar(dtype=np.int32),
          'apex': tfds.features.Scalar(dtype=np.int32),
          'offset': tfds.features.Scalar(dtype=np.int32),
          'type': tfds.features.ClassLabel(names=list(INTERVAL_TYPES)),
          'emotion': tfds.features.Text(),
      }),
  })


def check_long_video(example: dict, image_size: int) -> None:
  """Raises ValueError naming the video when a record breaks the long-video schema's invariants."""
  vid = example.get('video_id', '<no video_id>')
  frames = np.asarray(example['frames'])
  n = frames.shape[0]
  if frames.ndim != 4 or frames.shape[1:] != (image_size, image_size, 1) or frames.dtype != np.uint8:
    raise ValueError(f'{vid}: frames must be uint8 (N, {image_size}, {image_size}, 1), got {frames.dtype} '
                     f'{frames.shape}')
  for key, shape in (('landmarks', (n, NUM_LANDMARKS, 2)), ('frame_numbers', (n,)), ('face_present', (n,))):
    if np.shape(example[key]) != shape:
      raise ValueError(f'{vid}: {key} must be {shape}, got {np.shape(example[key])}')
  intervals = example['intervals']
  for on, ap, off in zip(intervals['onset'], intervals['apex'], intervals['offset']):
    if not 0 <= on <= ap <= off < n:
      raise ValueError(f'{vid}: need 0 <= onset <= apex <= offset < {n}, got {on}, {ap}, {off}')
