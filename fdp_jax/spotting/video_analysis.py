"""Spotting and recognising micro- and macro-expressions in a user's own video with a finished spotting run:
what `python -m fdp_jax.tools.analyze` does.

The video goes through the long-video preprocessing of the corpus builders (`preprocess.long_video`: the face
detected and its landmarks tracked on every frame, aligned by temporally smoothed landmarks); frames where no
face is found are reported and never scored. The spotter of one fold of the run (default its first) scores a
snippet around every `spot.stride`-th frame, peaks over the video's own threshold become intervals (the
run's rule and that fold's interval lengths), and the recogniser's fold classifies each. A video whose frame
rate is a multiple of the corpus's is read at every k-th frame, so that a snippet spans the same time.

`analyze` finds all that (a `VideoAnalysis`); `write_outputs` writes it, one writer per output (`WRITERS`):

  intervals.json       every spotted interval: type, frames and seconds, score, class and probabilities;
                       the segments without a face; what was used
  timeline.png         the score curves, the spotted intervals and the frames without a face
  interval_<k>.png     a contact sheet of each spotted interval's aligned frames
  index.html, video.mp4   the review page (`spotting.review_page`): the video (the frames read, or on request
                       the aligned face crops) under which the curves and intervals follow playback

A run trained on synthetic faces says so in every output, and a class near uniform is "undecided"
(`fdp_jax.caveats`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable

import jax
import numpy as np

from fdp_jax import caveats, figures, inference, input_pipeline, rundir, train
from fdp_jax.preprocess import face_alignment, frame_folders, long_video
from fdp_jax.spotting import loso as spot_loso
from fdp_jax.spotting import peaks, recognise, review_page, snippets
from fdp_jax.spotting.videos import Video

INTERVALS_JSON = 'intervals.json'
TIMELINE = 'timeline.png'
PAGE = 'index.html'
PAGE_VIDEO = 'video.mp4'
PAGE_VIDEOS = ('input', 'aligned')   # what the page plays: the frames read, or the aligned face crops


class AnalyzeError(Exception):
  """An input or run that cannot be analysed; the message says why and what to do."""


def video_reader(path: str, step: int) -> long_video.FrameReader:
  """Every `step`-th frame of a video file, decoded again on every pass."""
  import cv2

  def read():
    capture = cv2.VideoCapture(path)
    try:
      i = 0
      while True:
        ok, image = capture.read()
        if not ok:
          break
        if i % step == 0:
          yield f'{path}#frame{i}', image, ''
        i += 1
    finally:
      capture.release()
  return read


def open_input(path: str, corpus_fps: float, fps: float = 0.0) -> tuple[long_video.FrameReader, float, int]:
  """(frame reader, frame rate of the frames it yields, step: source frames per yielded frame)."""
  import cv2
  if os.path.isdir(path):
    listed = frame_folders.list_frames(path)
    if not listed:
      raise AnalyzeError(f'{path} holds no numbered frames (image files whose names end in the frame number)')
    rate = fps or corpus_fps
    step = max(1, round(rate / corpus_fps))
    return long_video.path_reader([p for _, p in listed][::step]), rate / step, step
  if not os.path.isfile(path):
    raise AnalyzeError(f'--input {path} does not exist: pass a video file or a folder of frames')
  capture = cv2.VideoCapture(path)
  ok, _ = capture.read()
  rate = capture.get(cv2.CAP_PROP_FPS) or corpus_fps
  capture.release()
  if not ok:
    raise AnalyzeError(f'cannot read any frame from {path}: not a video OpenCV can decode, or empty. Convert it '
                       '(e.g. ffmpeg -i IN -c:v mjpeg OUT.avi) or pass a folder of frames')
  rate = fps or rate
  step = max(1, round(rate / corpus_fps))
  return video_reader(path, step), rate / step, step


def score_video(config, state, video: Video) -> np.ndarray:
  """(N, 3) none/micro/macro probabilities of every frame (NaN where no snippet was scored)."""
  source = snippets.SnippetSource([video], int(config.spot.half_window), int(config.spot.stride))
  if not len(source):
    return np.full((len(video), 3), np.nan)
  step = inference.inference_step(train.options_for(config), 'eval')
  probs = []
  for batch in input_pipeline.eval_batches(source, np.arange(len(source)), config.data, config.eval.batch_size):
    out = jax.device_get(step(state, batch))
    probs.append(np.asarray(out['probabilities'])[batch['mask']])
  probs = np.concatenate(probs)
  centres = source.refs[:, 1]
  return np.stack([peaks.fill_curve(len(video), centres, probs[:, c]) for c in range(probs.shape[1])], -1)


def contact_sheet(frames: np.ndarray, path: str, columns: int = 8, limit: int = 32) -> None:
  """At most `limit` of an interval's aligned frames (N, S, S, 1) uint8, evenly spaced, `columns` to a row,
  drawn twice their size."""
  import cv2
  frames = frames[np.linspace(0, len(frames) - 1, min(limit, len(frames))).round().astype(int)]
  rows = -(-len(frames) // columns)
  s = frames.shape[1]
  sheet = np.zeros((rows * s, min(columns, len(frames)) * s), np.uint8)
  for i, f in enumerate(frames):
    r, c = divmod(i, columns)
    sheet[r * s:(r + 1) * s, c * s:(c + 1) * s] = f[..., 0]
  cv2.imwrite(path, cv2.resize(sheet, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST))


@dataclasses.dataclass(frozen=True)
class VideoAnalysis:
  """What `analyze` found in one video, from which every output is written (frame indices are into the
  frames read, every `frame_step`-th of the input's)."""
  input_path: str
  workdir: str                 # the spotting run
  fold: str                    # its fold whose spotter scored the video
  fps: float                   # frame rate of the frames read
  frame_step: int
  video: Video                 # the aligned frames (N, S, S, 1) uint8 and where a face was found (N,)
  curve: np.ndarray            # (N, 3) none/micro/macro probabilities, NaN where no snippet was scored
  spotted: list                # [(spotting.metrics.Interval, peak score)]
  probabilities: np.ndarray    # (len(spotted), C): the recogniser's class probabilities of each interval
  recognizer: recognise.Recognizer
  unreadable: list             # [(frame name, why)]: frames the preprocessing could not read
  reader: long_video.FrameReader   # the frames read, in colour, again (for the page's video)
  warning: str                 # `caveats.training_warning` of the spotting and recogniser runs, or ''

  @property
  def no_face(self) -> list[list[int]]:
    """[first, last] of every run of frames without a face."""
    return [[int(a), int(b)] for a, b in long_video.face_segments(~self.video.face_present)]

  @property
  def video_id(self) -> str:
    return os.path.basename(os.path.normpath(self.input_path))


def analyze(workdir: str, input_path: str, fold: str = '', fps: float = 0.0) -> VideoAnalysis:
  """Spots and recognises the expressions of the video (or folder of frames) at `input_path` with the fold
  `fold` (default the first finished) of the spotting run in `workdir`; `fps`: a folder's frame rate
  (default the corpus's). Raises AnalyzeError for a run or input it cannot use."""
  if not os.path.exists(rundir.path(workdir, rundir.RESULTS)):
    raise AnalyzeError(f'{workdir} holds no finished run (no {rundir.RESULTS}): run a spotting config first, '
                       'e.g. python launch.py --config=configs/spot_synthetic.py')
  config = rundir.load_config(workdir)
  results = rundir.read_json(workdir, rundir.RESULTS)
  if results.get('task') != 'spotting':
    raise AnalyzeError(f'{workdir} is a recognition run: analyze needs a spotting run (configs/spot_*.py); for '
                       'one clip with a known window use python -m fdp_jax.tools.predict')
  done = [f for f in results['folds'] if f['status'] == 'done']
  fold = fold or (done[0]['subject'] if done else '')
  entry = next((f for f in done if f['subject'] == fold), None)
  if entry is None:
    raise AnalyzeError(f"--fold={fold} is not a finished fold of {workdir}; its folds are "
                       f"{[f['subject'] for f in done]}")
  corpus_fps = float(config.spot.fps)
  reader, rate, step = open_input(input_path, corpus_fps, fps)
  size = int(round(config.data.image_size / config.data.crop_scale))
  try:
    arrays, unreadable = long_video.preprocess_frames(reader, long_video.TrackingOptions(image_size=size),
                                                      face_alignment.FaceLandmarker())
  except long_video.VideoError as e:
    raise AnalyzeError(f'{input_path}: {e}') from e
  n, window = len(arrays['frames']), 2 * int(config.spot.half_window) + 1
  if n < window:
    raise AnalyzeError(f'{input_path} has {n} frames (at {rate:.1f} fps) but a spotting snippet spans {window}: '
                       'the video is too short to spot in')
  video = Video('input', fold, rate, arrays['frames'], arrays['face_present'], (), (), ())
  state = inference.restore_fold(workdir, fold, config)
  curve = score_video(config, state, video)
  lengths = {k: int(v) for k, v in entry['lengths'].items()}
  spotted = spot_loso.spot_video(curve, spot_loso.rule_of(config), lengths)
  recognizer = recognise.Recognizer(results['recognizer']['workdir'])
  probabilities = recognizer.classify(fold, [video.frames[i.onset:i.offset + 1] for i, _ in spotted])
  warning = caveats.training_warning(results, recognizer.results)
  return VideoAnalysis(input_path, workdir, fold, rate, step, video, curve, spotted, probabilities, recognizer,
                       unreadable, reader, warning)


def interval_sheet(k: int) -> str:
  """The file name of the contact sheet of the k-th spotted interval."""
  return f'interval_{k:02d}.png'


def summary(analysis: VideoAnalysis) -> dict:
  """intervals.json's dict: every spotted interval (frames of the input, seconds, score, class and
  probabilities, its contact sheet), the frames without a face and those unreadable, the runs used."""
  a, step, rate = analysis, analysis.frame_step, analysis.fps
  names = a.recognizer.class_names
  intervals = []
  for k, ((interval, score), p) in enumerate(zip(a.spotted, a.probabilities)):
    intervals.append({
        'type': interval.type, 'onset_frame': interval.onset * step, 'offset_frame': interval.offset * step,
        'onset_s': round(interval.onset / rate, 3), 'offset_s': round((interval.offset + 1) / rate, 3),
        'score': round(score, 4), 'class': caveats.decided_class(p, names),
        'most_probable_class': names[int(np.argmax(p))],
        'probabilities': {c: round(float(q), 4) for c, q in zip(names, p)},
        'contact_sheet': interval_sheet(k)})
  return {
      'input': os.path.abspath(a.input_path), 'warning': a.warning, 'undecided_rule': caveats.UNDECIDED_RULE,
      'fps': rate, 'frame_step': step, 'num_frames': len(a.video.frames),
      'frames_without_face': [{'first_frame': first * step, 'last_frame': last * step} for first, last in a.no_face],
      'unreadable_frames': [{'frame': name, 'why': why} for name, why in a.unreadable],
      'intervals': intervals,
      'spotting_run': {'workdir': os.path.abspath(a.workdir), 'fold': a.fold},
      'recognizer_run': {'workdir': a.recognizer.workdir, 'fold': a.recognizer.fold_for(a.fold)},
  }


@dataclasses.dataclass(frozen=True)
class OutputOptions:
  page_video: str = 'input'    # one of PAGE_VIDEOS


def write_contact_sheets(analysis: VideoAnalysis, result: dict, output: str, options: OutputOptions) -> None:
  for k, (interval, _) in enumerate(analysis.spotted):
    contact_sheet(analysis.video.frames[interval.onset:interval.offset + 1],
                  os.path.join(output, interval_sheet(k)))


def write_timeline(analysis: VideoAnalysis, result: dict, output: str, options: OutputOptions) -> None:
  spotted = analysis.spotted
  entry = {'video_id': analysis.video_id, 'num_frames': len(analysis.video.frames), 'no_face': analysis.no_face,
           'spotted': [{'onset': i.onset, 'offset': i.offset, 'type': i.type} for i, _ in spotted]}
  figures.timeline_figure(entry, analysis.curve, os.path.join(output, TIMELINE),
                          title=f'{analysis.video_id}: {len(spotted)} spotted')


def write_intervals_json(analysis: VideoAnalysis, result: dict, output: str, options: OutputOptions) -> None:
  with open(os.path.join(output, INTERVALS_JSON), 'w') as f:
    json.dump(result, f, indent=1)


def write_review_page(analysis: VideoAnalysis, result: dict, output: str, options: OutputOptions) -> None:
  n, names = len(analysis.video.frames), analysis.recognizer.class_names
  if options.page_video == 'aligned':
    frames = iter(analysis.video.frames)
    shown = 'the aligned face crops the spotter saw'
  else:
    frames = (image for _, image, _ in analysis.reader())
    shown = 'the input' + (f', every {analysis.frame_step}th frame' if analysis.frame_step > 1 else '')
  written = review_page.encode_video(frames, os.path.join(output, PAGE_VIDEO), analysis.fps)
  if written != n:
    raise AnalyzeError(f'{analysis.input_path} gave {written} frames when read again for the page, {n} the '
                       'first time: use --page_video=aligned')
  spotted = [review_page.spotted_view({'onset': i.onset, 'offset': i.offset, 'type': i.type, 'score': r['score'],
                                       'probabilities': r['probabilities'], 'sheet': r['contact_sheet']},
                                      names, decided=r['class'])
             for (i, _), r in zip(analysis.spotted, result['intervals'])]
  about = [f'{n} frames at {analysis.fps:.2f} fps; video: {shown}',
           f'spotter: {os.path.abspath(analysis.workdir)} (fold {analysis.fold})',
           f'recogniser: {analysis.recognizer.workdir} (fold {analysis.recognizer.fold_for(analysis.fold)})']
  view = review_page.video_view(analysis.video_id, PAGE_VIDEO, analysis.fps, analysis.curve, analysis.no_face,
                                spotted, about, frame_step=analysis.frame_step)
  review_page.write_page(os.path.join(output, PAGE), f'{analysis.video_id}: spotted expressions', [view],
                         warning=analysis.warning)


# The outputs of an analysis, each written by `writer(analysis, summary(analysis), output folder, options)`.
WRITERS: tuple[Callable[[VideoAnalysis, dict, str, OutputOptions], None], ...] = (
    write_contact_sheets, write_timeline, write_intervals_json, write_review_page)


def write_outputs(analysis: VideoAnalysis, output: str, options: OutputOptions = OutputOptions()) -> dict:
  """Writes every output of `WRITERS` into `output`; returns intervals.json's dict."""
  os.makedirs(output, exist_ok=True)
  result = summary(analysis)
  for writer in WRITERS:
    writer(analysis, result, output, options)
  return result


def analyze_video(workdir: str, input_path: str, output: str, fold: str = '', fps: float = 0.0,
                  page_video: str = 'input') -> dict:
  """`analyze`, then `write_outputs` into `output`: everything `python -m fdp_jax.tools.analyze` does;
  returns intervals.json's dict. `page_video`: what the review page plays (`PAGE_VIDEOS`)."""
  if page_video not in PAGE_VIDEOS:
    raise AnalyzeError(f'--page_video={page_video}: choose one of {", ".join(PAGE_VIDEOS)}')
  return write_outputs(analyze(workdir, input_path, fold, fps), output, OutputOptions(page_video))
