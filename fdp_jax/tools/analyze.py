"""Spots and recognises micro- and macro-expressions in a user's own video with a finished spotting run.

  python -m fdp_jax.tools.analyze --workdir=SPOT_RUN --input=VIDEO_OR_FRAMES_DIR --output=DIR [--fold=SUBJECT]

The video goes through the long-video preprocessing of the corpus builders (`preprocess.long_video`: the face
detected and its landmarks tracked on every frame, aligned by temporally smoothed landmarks); frames where no
face is found are reported and never scored. The spotter of one fold of the run (default its first) scores a
snippet around every `spot.stride`-th frame, peaks over the video's own threshold become intervals (the
run's rule and that fold's interval lengths), and the recogniser's fold classifies each. A video whose frame
rate is a multiple of the corpus's is read at every k-th frame, so that a snippet spans the same time.
Written to DIR:

  intervals.json       every spotted interval: type, frames and seconds, score, class and probabilities;
                       the segments without a face; what was used
  timeline.png         the score curves, the spotted intervals and the frames without a face
  interval_<k>.png     a contact sheet of each spotted interval's aligned frames

Exit status 1, with a message, for an unreadable file, a video without a face anywhere, or one shorter than a
snippet.
"""

from __future__ import annotations

import json
import os
import sys

import jax
import numpy as np
from absl import app, flags, logging

from fdp_jax import families, figures, input_pipeline, rundir, train
from fdp_jax.cv import checkpoints
from fdp_jax.cv import loso as cv_loso
from fdp_jax.preprocess import face_alignment, frame_folders, long_video
from fdp_jax.spotting import peaks, loso as spot_loso, recognise, snippets
from fdp_jax.spotting.videos import Video

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string('workdir', None, 'A finished spotting run (launch.py with configs/spot_*.py).', required=True)
  flags.DEFINE_string('input', None, 'A video file or a folder of frames.', required=True)
  flags.DEFINE_string('output', None, 'Folder for intervals.json and the figures.', required=True)
  flags.DEFINE_string('fold', '', "Held-out subject whose spotter to use (default: the run's first fold).")
  flags.DEFINE_float('fps', 0.0, 'Frame rate of a folder of frames (default: the corpus\'s).')


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
  options = train.options_for(config)
  step = jax.jit(lambda s, b: train.eval_step(s, b, options))
  probs = []
  for batch in input_pipeline.eval_batches(source, np.arange(len(source)), config.data, config.eval.batch_size):
    out = jax.device_get(step(state, batch))
    probs.append(np.asarray(out['probabilities'])[batch['mask']])
  probs = np.concatenate(probs)
  centres = source.refs[:, 1]
  return np.stack([peaks.fill_curve(len(video), centres, probs[:, c]) for c in range(probs.shape[1])], -1)


def contact_sheet(frames: np.ndarray, path: str, columns: int = 8, limit: int = 32) -> None:
  import cv2
  frames = frames[np.linspace(0, len(frames) - 1, min(limit, len(frames))).round().astype(int)]
  rows = -(-len(frames) // columns)
  s = frames.shape[1]
  sheet = np.zeros((rows * s, min(columns, len(frames)) * s), np.uint8)
  for i, f in enumerate(frames):
    r, c = divmod(i, columns)
    sheet[r * s:(r + 1) * s, c * s:(c + 1) * s] = f[..., 0]
  cv2.imwrite(path, cv2.resize(sheet, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST))


def analyze_video(workdir: str, input_path: str, output: str, fold: str = '', fps: float = 0.0) -> dict:
  """Everything `python -m fdp_jax.tools.analyze` does; returns intervals.json's dict."""
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
  model = families.build_model(config.model, config.data.num_classes, config.data.image_size)
  state = checkpoints.restore_fold(workdir, fold, cv_loso.fold_template(config, model))
  curve = score_video(config, state, video)
  lengths = {k: int(v) for k, v in entry['lengths'].items()}
  spotted = spot_loso.spot_video(curve, spot_loso.rule_of(config), lengths)
  recognizer = recognise.Recognizer(results['recognizer']['workdir'])
  probabilities = recognizer.classify(fold, [video.frames[i.onset:i.offset + 1] for i, _ in spotted])

  os.makedirs(output, exist_ok=True)
  no_face = [[int(a), int(b)] for a, b in long_video.face_segments(~video.face_present)]
  intervals = []
  for k, ((interval, score), p) in enumerate(zip(spotted, probabilities)):
    sheet = f'interval_{k:02d}.png'
    contact_sheet(video.frames[interval.onset:interval.offset + 1], os.path.join(output, sheet))
    intervals.append({
        'type': interval.type, 'onset_frame': interval.onset * step, 'offset_frame': interval.offset * step,
        'onset_s': round(interval.onset / rate, 3), 'offset_s': round((interval.offset + 1) / rate, 3),
        'score': round(score, 4), 'class': recognizer.class_names[int(np.argmax(p))],
        'probabilities': {c: round(float(q), 4) for c, q in zip(recognizer.class_names, p)},
        'contact_sheet': sheet})
  timeline_entry = {'video_id': os.path.basename(os.path.normpath(input_path)), 'num_frames': n, 'truth': [],
                    'baseline': [], 'no_face': no_face, 'true_positives': [[i, i] for i in range(len(spotted))],
                    'spotted': [{'onset': i.onset, 'offset': i.offset, 'type': i.type} for i, _ in spotted]}
  figures.timeline_figure(timeline_entry, curve, os.path.join(output, 'timeline.png'),
                          title=f'{timeline_entry["video_id"]}: {len(spotted)} spotted')
  analysis = {
      'input': os.path.abspath(input_path), 'fps': rate, 'frame_step': step, 'num_frames': n,
      'frames_without_face': [{'first_frame': a * step, 'last_frame': b * step} for a, b in no_face],
      'unreadable_frames': [{'frame': name, 'why': why} for name, why in unreadable],
      'intervals': intervals,
      'spotting_run': {'workdir': os.path.abspath(workdir), 'fold': fold},
      'recognizer_run': {'workdir': recognizer.workdir, 'fold': recognizer.fold_for(fold)},
  }
  with open(os.path.join(output, 'intervals.json'), 'w') as f:
    json.dump(analysis, f, indent=1)
  return analysis


def main(argv):
  del argv
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  try:
    result = analyze_video(FLAGS.workdir, FLAGS.input, FLAGS.output, FLAGS.fold, FLAGS.fps)
  except (AnalyzeError, recognise.RecognizerError, frame_folders.DuplicateFrameNumber, FileNotFoundError) as e:
    sys.exit(f'analyze: {e}')
  for seg in result['frames_without_face']:
    print(f"no face in frames {seg['first_frame']}–{seg['last_frame']}: skipped, never scored")
  for i in result['intervals']:
    print(f"{i['type']:5s} {i['onset_s']:7.2f}–{i['offset_s']:7.2f} s  score {i['score']:.2f}  {i['class']}")
  print(f"{len(result['intervals'])} interval(s); written to {FLAGS.output}")


if __name__ == '__main__':
  define_flags()
  app.run(main)
