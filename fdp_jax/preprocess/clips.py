"""Turning one annotated clip (a list of frame files) into a schema record, and doing it for many clips
in parallel worker processes. Shared by the corpus builders and by prediction on new clips. No JAX.

Per clip (the released preprocessing, with one choice stated here):
  1. every frame is read (a missing, empty, cut-short or undecodable file fails the clip, naming the file);
  2. the face is detected once, on the reference frame (the onset), with dlib's HOG detector — a clip
     whose reference frame has no face fails; the 68 landmarks are then predicted on *every* frame inside
     that box (a micro-expression clip barely moves, and detection is ~100× slower than prediction);
  3. `alignment='clip'` (default) warps every frame with the one matrix computed from the reference
     frame's landmarks, so the alignment adds no frame-to-frame jitter that would drown 1–2 px of facial
     motion; `alignment='frame'` aligns each frame by its own landmarks, as a per-image pipeline would;
  4. frames become grey (ITU-R 601 luma, OpenCV's BGR2GRAY) and each frame's landmarks go through the
     matrix it was warped with;
  5. optionally TV-L1 flow between consecutive aligned frames.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from typing import Iterable, Iterator, Sequence

import numpy as np

from fdp_jax.preprocess import face_alignment
from fdp_jax.preprocess import optical_flow


class ClipError(Exception):
  """A clip that cannot be preprocessed (unreadable frame, no face); the message names the cause."""


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """One annotated sample: its frame files in chronological order and its phases as indices into them."""
  sample_id: str
  subject: str
  clip: str
  emotion: str                     # the corpus's emotion name, normalised to lower case
  frame_paths: tuple[str, ...]
  frame_numbers: tuple[int, ...]   # the number in each file name (the annotation's frame numbers)
  onset: int
  apex: int
  offset: int
  corpus: str = ''


@dataclasses.dataclass(frozen=True)
class AlignmentOptions:
  image_size: int = 64
  box_enlarge: float = 2.5
  alignment: str = 'clip'          # or 'frame'
  with_flow: bool = False


# What to do about a bad frame file. The build report says how to rebuild; prediction reads frames too.
FIX_FRAME = 'restore the file from your copy of the corpus, or delete it to use the clip without that frame'


def read_frame(path: str) -> np.ndarray:
  """(H, W, 3) uint8 BGR; raises ClipError naming the file, what is wrong and what to do when the file is
  missing, empty, cut short or not an image."""
  import cv2
  try:
    with open(path, 'rb') as f:
      data = f.read()
  except OSError as e:
    raise ClipError(f'unreadable frame {path}: {e.strerror}; {FIX_FRAME}') from e
  problem = _damage(data)
  image = None if problem else cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
  if image is None or image.size == 0:
    raise ClipError(f'unreadable frame {path}: {problem or "not an image OpenCV can decode"}; {FIX_FRAME}')
  return image


def _damage(data: bytes) -> str | None:
  """What is wrong with an image file that a decoder might not say, or None.

  libjpeg decodes a JPEG cut short with only a warning ('Premature end of JPEG file') and OpenCV returns
  the picture with the missing part filled grey, which would be built as a real frame. A complete JPEG
  has its end-of-image marker (FF D9) after its last start-of-scan (FF DA); neither can occur inside the
  entropy-coded data, where a data byte FF is always followed by 00. Bytes after the marker (some cameras
  append data) are allowed. OpenCV already fails on PNG, BMP and TIFF files cut short.
  """
  if not data:
    return 'the file is empty (0 bytes)'
  if data[:3] == b'\xff\xd8\xff' and data.rfind(b'\xff\xd9') < data.rfind(b'\xff\xda'):
    return 'the JPEG is cut short (no end-of-image marker after its image data)'
  return None


def preprocess_clip(spec: ClipSpec, options: AlignmentOptions,
                    landmarker: face_alignment.FaceLandmarker) -> dict:
  """The schema fields of one clip except `label`: frames (T, S, S, 1) uint8, landmarks (T, 68, 2), ...

  Raises ClipError (unreadable frame, no face on the reference frame, degenerate landmarks).
  """
  import cv2
  if options.alignment not in ('clip', 'frame'):
    raise ValueError(f"unknown alignment {options.alignment!r}: use 'clip' or 'frame'")
  images = [read_frame(p) for p in spec.frame_paths]
  for path, image in zip(spec.frame_paths, images):
    if image.shape != images[0].shape:
      raise ClipError(f'frame {path} is {image.shape[1]}×{image.shape[0]} px but {spec.frame_paths[0]} is '
                      f'{images[0].shape[1]}×{images[0].shape[0]}; {FIX_FRAME}')
  grey = [cv2.cvtColor(im, cv2.COLOR_BGR2GRAY) for im in images]
  reference = spec.onset
  face = landmarker.detect(grey[reference])
  if face is None:
    raise ClipError(f'no face found in {spec.frame_paths[reference]} (the onset frame, where the face is '
                    'located); check that it shows a frontal face')
  raw_landmarks = np.stack([landmarker.landmarks(g, face) for g in grey])         # (T, 68, 2)
  s = options.image_size
  try:
    if options.alignment == 'clip':
      matrices = [face_alignment.alignment_matrix(raw_landmarks[reference], s, options.box_enlarge)] * len(grey)
    else:
      matrices = [face_alignment.alignment_matrix(l, s, options.box_enlarge) for l in raw_landmarks]
  except ValueError as e:
    raise ClipError(str(e)) from e
  frames = np.stack([face_alignment.warp_face(g, m, s) for g, m in zip(grey, matrices)])
  landmarks = np.stack([face_alignment.transform_points(l, m) for l, m in zip(raw_landmarks, matrices)])
  record = {
      'sample_id': spec.sample_id,
      'corpus': spec.corpus,
      'subject': spec.subject,
      'clip': spec.clip,
      'frames': frames[..., None],
      'frame_numbers': np.asarray(spec.frame_numbers, np.int32),
      'landmarks': landmarks.astype(np.float32),
      'onset': np.int32(spec.onset),
      'apex': np.int32(spec.apex),
      'offset': np.int32(spec.offset),
  }
  if options.with_flow:
    record['flow'] = optical_flow.tvl1_flow(frames)
  return record


# One landmarker per worker process, created by the pool initializer (the model file is ~100 MB).
_worker: dict = {}


def _init_worker(options: AlignmentOptions, upsample: int) -> None:
  import cv2
  cv2.setNumThreads(1)  # parallelism comes from the processes; threads inside each would fight them
  _worker['options'] = options
  _worker['landmarker'] = face_alignment.FaceLandmarker(upsample)
  _worker['landmarker'].detect(np.zeros((8, 8), np.uint8))  # load the models (~1.5 s) before the first clip


def _work(spec: ClipSpec) -> tuple[ClipSpec, dict | None, str | None]:
  try:
    return spec, preprocess_clip(spec, _worker['options'], _worker['landmarker']), None
  except ClipError as e:
    return spec, None, str(e)


def preprocess_clips(specs: Sequence[ClipSpec], options: AlignmentOptions, workers: int = 1,
                     upsample: int = 1, progress: bool = True, description: str = 'preprocessing'
                     ) -> Iterator[tuple[ClipSpec, dict | None, str | None]]:
  """Yields (spec, record, None) or (spec, None, error message) for every spec, in the order given.

  `workers` > 1 runs clips in that many spawned processes (fork is unsafe once threaded libraries are
  loaded); a failing clip is reported, never raised, so one bad clip cannot stop a build.
  """
  bar = _progress(len(specs), description) if progress else None
  workers = min(workers, len(specs))
  try:
    if workers <= 1:
      import cv2
      threads = cv2.getNumThreads()
      _init_worker(options, upsample)
      try:
        yield from _counted(map(_work, specs), bar)
      finally:
        cv2.setNumThreads(threads)
    else:
      context = multiprocessing.get_context('spawn')
      with context.Pool(workers, initializer=_init_worker, initargs=(options, upsample)) as pool:
        yield from _counted(pool.imap(_work, specs, chunksize=1), bar)
  finally:
    if bar is not None:
      bar.close()


def _counted(results: Iterable, bar) -> Iterator:
  for item in results:
    if bar is not None:
      bar.update(1)
    yield item


def _progress(total: int, description: str):
  import tqdm
  return tqdm.tqdm(total=total, desc=description, unit='clip', disable=None)


def default_workers() -> int:
  return int(os.environ.get('FDP_JAX_BUILD_WORKERS', 0)) or (os.cpu_count() or 1)
