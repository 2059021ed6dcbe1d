"""Turning a long video (minutes of frames) into aligned grey faces with per-frame landmarks and a
face-present flag: shared by the long-video corpus builders and by `fdp_jax.tools.analyze`. No JAX.

Unlike a cut clip (`clips.py`: one detection, one alignment matrix), a long video has head drift, the face
may leave the picture and come back, and frames may be damaged:
  1. the face is detected on every frame (dlib HOG, on a copy scaled down to `detect_width` for speed) and
     its 68 landmarks predicted in that box; a run of at most `max_gap` frames without a detection between
     two detections is bridged with the last box (a blink or motion blur must not cut a segment in two);
     any other frame without a detection has no face;
  2. each frame is aligned (the released similarity, `face_alignment.alignment_matrix`) by its landmarks
     smoothed with a moving median of `smooth_frames` frames inside its face segment: the alignment
     follows slow head motion but adds no frame-to-frame jitter that would drown 1–2 px of facial motion;
  3. a frame without a face, and a frame that cannot be read (named in the notes), is stored mid-grey with
     zero landmarks and face_present False — such frames are never scored as expressions.
Frames are read three times (detection, landmarks, warping) so that memory stays at one frame, not a whole
video; decoding costs little beside detection.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from typing import Callable, Iterator, Sequence

import numpy as np

from fdp_jax.preprocess import clips
from fdp_jax.preprocess import face_alignment


class VideoError(Exception):
  """A video that cannot be used at all (no readable frame, no face anywhere); the message says why."""


@dataclasses.dataclass(frozen=True)
class TrackingOptions:
  image_size: int = 64
  box_enlarge: float = 2.5
  smooth_frames: int = 9      # odd; ~0.3 s at 30 fps
  max_gap: int = 3            # frames a lost detection is bridged with the last box
  detect_width: int = 320


# A frame reader yields (name, BGR image or None when it cannot be read, why) in chronological order.
FrameReader = Callable[[], Iterator[tuple[str, np.ndarray | None, str]]]


def path_reader(paths: Sequence[str]) -> FrameReader:
  def read():
    for path in paths:
      try:
        yield path, clips.read_frame(path), ''
      except clips.ClipError as e:
        yield path, None, str(e)
  return read


def _grey(image: np.ndarray) -> np.ndarray:
  import cv2
  return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _detect(landmarker: face_alignment.FaceLandmarker, grey: np.ndarray, width: int):
  """The largest face box in full-resolution coordinates, detected on a copy at most `width` wide."""
  import cv2
  import dlib
  scale = min(1.0, width / grey.shape[1])
  small = grey if scale == 1.0 else cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
  box = landmarker.detect(small)
  if box is None or scale == 1.0:
    return box
  return dlib.rectangle(int(box.left() / scale), int(box.top() / scale), int(box.right() / scale),
                        int(box.bottom() / scale))


def _bridged(detected: np.ndarray, max_gap: int) -> np.ndarray:
  """Frames with a face: detected, or inside a run of at most `max_gap` undetected frames that has a
  detection on both sides (a blink or motion blur; a face that leaves for longer is gone from its first
  undetected frame)."""
  present = detected.copy()
  hits = np.flatnonzero(detected)
  for a, b in zip(hits[:-1], hits[1:]):
    if 1 < b - a <= max_gap + 1:
      present[a + 1:b] = True
  return present


def track_faces(read: FrameReader, landmarker: face_alignment.FaceLandmarker, options: TrackingOptions
                ) -> tuple[np.ndarray, np.ndarray, list[str], list[tuple[str, str]]]:
  """(landmarks (N, 68, 2) float64 in source pixels, NaN where no face; present (N,) bool; frame names;
  [(name, why)] of unreadable frames). Two passes: detection on every frame, then landmarks in each
  present frame's box (a bridged frame uses the box of the last detection before it)."""
  boxes, names, unreadable = [], [], []
  for name, image, why in read():
    names.append(name)
    if image is None:
      unreadable.append((name, why))
      boxes.append(None)
      continue
    boxes.append(_detect(landmarker, _grey(image), options.detect_width))
  if not names:
    raise VideoError('the video has no frames')
  present = _bridged(np.array([b is not None for b in boxes]), options.max_gap)
  landmarks = np.full((len(names), 68, 2), np.nan)
  box = None
  for t, (_, image, _) in enumerate(read()):
    box = boxes[t] or box
    if present[t] and image is not None:
      landmarks[t] = landmarker.landmarks(_grey(image), box)
    elif present[t]:   # an unreadable frame inside a bridged gap
      present[t] = False
  return landmarks, present, names, unreadable


def face_segments(present: np.ndarray) -> list[tuple[int, int]]:
  """[(first, last)] inclusive runs of consecutive frames with a face."""
  edges = np.diff(np.concatenate([[0], present.astype(np.int8), [0]]))
  return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def smooth_landmarks(landmarks: np.ndarray, present: np.ndarray, window: int) -> np.ndarray:
  """Moving median of `window` frames over each face segment (the window shrinks at a segment's ends)."""
  smoothed = np.array(landmarks, np.float64)
  half = window // 2
  for first, last in face_segments(present):
    seg = landmarks[first:last + 1]
    for t in range(len(seg)):
      smoothed[first + t] = np.median(seg[max(0, t - half):t + half + 1], axis=0)
  return smoothed


def preprocess_frames(read: FrameReader, options: TrackingOptions, landmarker: face_alignment.FaceLandmarker
                      ) -> tuple[dict, list[tuple[str, str]]]:
  """({'frames' (N, S, S, 1) uint8, 'landmarks' (N, 68, 2) float32, 'face_present' (N,) bool}, unreadable
  frames [(name, why)]). Raises VideoError when no frame shows a face."""
  raw, present, names, unreadable = track_faces(read, landmarker, options)
  if not present.any():
    raise VideoError(f'no face found in any of its {len(names)} frames (dlib frontal face detector); check '
                     'that the video shows a frontal face')
  smoothed = smooth_landmarks(raw, present, options.smooth_frames)
  s = options.image_size
  frames = np.full((len(names), s, s, 1), face_alignment.BORDER_VALUE, np.uint8)
  landmarks = np.zeros((len(names), 68, 2), np.float32)
  for t, (_, image, _) in enumerate(read()):
    if not present[t] or image is None:
      continue
    try:
      matrix = face_alignment.alignment_matrix(smoothed[t], s, options.box_enlarge)
    except ValueError:   # degenerate landmarks: treated as no face
      present[t] = False
      continue
    frames[t, ..., 0] = face_alignment.warp_face(_grey(image), matrix, s)
    landmarks[t] = face_alignment.transform_points(raw[t], matrix)
  return {'frames': frames, 'landmarks': landmarks, 'face_present': present}, unreadable


def preprocess_video(spec, options: TrackingOptions, landmarker: face_alignment.FaceLandmarker
                     ) -> tuple[dict, list[tuple[str, str]]]:
  """The long-video record of a `long_videos.VideoSpec` (every schema field) and its unreadable frames."""
  arrays, unreadable = preprocess_frames(path_reader(spec.frame_paths), options, landmarker)
  intervals = sorted(spec.intervals, key=lambda i: (i.onset, i.offset))
  record = {
      'video_id': spec.video_id, 'corpus': spec.corpus, 'subject': spec.subject, 'fps': np.float32(spec.fps),
      'frame_numbers': np.asarray(spec.frame_numbers, np.int32), **arrays,
      'intervals': {'onset': np.asarray([i.onset for i in intervals], np.int32),
                    'apex': np.asarray([i.apex for i in intervals], np.int32),
                    'offset': np.asarray([i.offset for i in intervals], np.int32),
                    'type': [i.type for i in intervals], 'emotion': [i.emotion for i in intervals]},
  }
  return record, unreadable


_worker: dict = {}


def _init_worker(options: TrackingOptions) -> None:
  import cv2
  cv2.setNumThreads(1)
  _worker['options'] = options
  _worker['landmarker'] = face_alignment.FaceLandmarker(1)
  _worker['landmarker'].detect(np.zeros((8, 8), np.uint8))


def _work(spec):
  try:
    record, unreadable = preprocess_video(spec, _worker['options'], _worker['landmarker'])
    return spec, record, unreadable, None
  except VideoError as e:
    return spec, None, [], str(e)


def preprocess_videos(specs: Sequence, options: TrackingOptions, workers: int = 1, description: str = 'videos'
                      ) -> Iterator[tuple[object, dict | None, list, str | None]]:
  """Yields (spec, record, unreadable frames, None) or (spec, None, [], why) for every spec, in order;
  `workers` > 1 runs videos in spawned processes."""
  import tqdm
  bar = tqdm.tqdm(total=len(specs), desc=description, unit='video', disable=None)
  try:
    if min(workers, len(specs)) <= 1:
      _init_worker(options)
      results = map(_work, specs)
      for item in results:
        bar.update(1)
        yield item
    else:
      context = multiprocessing.get_context('spawn')
      with context.Pool(min(workers, len(specs)), initializer=_init_worker, initargs=(options,)) as pool:
        for item in pool.imap(_work, specs, chunksize=1):
          bar.update(1)
          yield item
  finally:
    bar.close()
