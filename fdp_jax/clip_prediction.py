"""A trained fold's model on a new clip: what `python -m fdp_jax.tools.predict` does.

The clip goes through the builders' preprocessing (`fdp_jax.preprocess.clips`: dlib face on the onset frame,
68 landmarks on every frame, one alignment matrix per clip), then the run's frame sampling and
normalisation (`input_pipeline.ClipTransform` in evaluation mode; under `released_per_split`, the fold's
training-split statistics recorded in results.json), then the model of one fold (by default
the run's first; any fold's model never saw its own subject). Written to the output folder:

  prediction.json     class probabilities, the predicted class ("undecided" near uniform), the window and
                      frames used, the checkpoint, and a warning for a run trained on synthetic faces
                      (`fdp_jax.caveats`)
  contact_sheet.png   the aligned frames of the window (the sampled ones framed in white)
  dynamic_image.png   FDP: the dynamic image of the sampled frames beside the one the model decodes
  flow_landmarks.png  MOL: per frame pair, the predicted landmarks on the frame and the predicted flow
  frames/             for a video input, its frames as PNG files (what the preprocessing read)

The input is a folder of frames (image files read as the corpus builders read them,
`preprocess.frame_folders`: in numeric order of the number ending their names, hidden files ignored) or a
video file OpenCV can decode. Onset/offset are indices into those frames (default: the whole clip).
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np

from fdp_jax import caveats, inference, input_pipeline, rundir, train
from fdp_jax.preprocess import clips, face_alignment, frame_folders, optical_flow


class PredictError(Exception):
  """An input the predictor cannot use; the message names the file and what to do."""


def frame_files(folder: str) -> list[str]:
  """The frames of `folder` in numeric order (img2 before img10), as `frame_folders.list_frames` lists them."""
  try:
    listed = frame_folders.list_frames(folder)
  except frame_folders.DuplicateFrameNumber as e:
    raise PredictError(str(e)) from None
  if not listed:
    suffixes = ', '.join(f'.{s}' for s in frame_folders.IMAGE_SUFFIXES)
    raise PredictError(f'{folder} holds no numbered frames: image files ({suffixes}) whose names end in the '
                       'frame number, e.g. img12.jpg or 00012.png')
  return [path for _, path in listed]


def video_frames(path: str, folder: str) -> list[str]:
  """Decodes a video into PNG files under `folder`; returns their paths."""
  import cv2
  capture = cv2.VideoCapture(path)
  paths = []
  try:
    while True:
      ok, image = capture.read()
      if not ok:
        break
      os.makedirs(folder, exist_ok=True)
      paths.append(os.path.join(folder, f'{len(paths):05d}.png'))
      cv2.imwrite(paths[-1], image)
  finally:
    capture.release()
  if not paths:
    raise PredictError(f'cannot read any frame from the video {path}: not a video OpenCV can decode, or '
                       'empty. Convert it (e.g. ffmpeg -i IN -c:v mjpeg OUT.avi) or pass a folder of frames')
  return paths


def input_frames(path: str, output: str) -> list[str]:
  if os.path.isdir(path):
    return frame_files(path)
  if os.path.isfile(path):
    return video_frames(path, os.path.join(output, 'frames'))
  raise PredictError(f'--input {path} does not exist: pass a folder of frames or a video file')


def window(num_frames: int, onset: int | None, offset: int | None) -> tuple[int, int]:
  onset = 0 if onset is None else onset
  offset = num_frames - 1 if offset is None else offset
  if not 0 <= onset <= offset < num_frames:
    raise PredictError(f'window onset={onset}, offset={offset} is not inside the clip\'s {num_frames} '
                       f'frames (indices 0..{num_frames - 1})')
  return onset, offset


def _grid(images: list[np.ndarray], columns: int) -> np.ndarray:
  rows = -(-len(images) // columns)
  h, w = images[0].shape[:2]
  sheet = np.zeros((rows * h, columns * w) + images[0].shape[2:], np.uint8)
  for i, image in enumerate(images):
    r, c = divmod(i, columns)
    sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = image
  return sheet


def _display(image: np.ndarray, size: int = 128) -> np.ndarray:
  """A float or uint8 map stretched to 0..255 and resized to `size` (nearest) for a figure."""
  import cv2
  image = np.asarray(image, np.float32)
  lo, hi = float(image.min()), float(image.max())
  image = (image - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(image)
  return cv2.resize(image.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)


def contact_sheet(frames: np.ndarray, sampled: np.ndarray, path: str) -> None:
  """frames (N, S, S) uint8 of the window; the `sampled` indices (into frames) get a white frame."""
  import cv2
  tiles = []
  for i, frame in enumerate(frames):
    tile = cv2.resize(frame, (96, 96), interpolation=cv2.INTER_LINEAR)
    tile = cv2.copyMakeBorder(tile, 3, 3, 3, 3, cv2.BORDER_CONSTANT, value=255 if i in sampled else 0)
    tiles.append(tile)
  cv2.imwrite(path, _grid(tiles, min(8, len(tiles))))


def flow_landmarks_sheet(frames: np.ndarray, flow: np.ndarray, landmarks: np.ndarray, path: str) -> None:
  """frames (T, S, S) uint8 sampled; flow (T−1, S, S, 2) and landmarks (T−1, 68, 2) predicted for pairs.
  Every pair's flow on one scale: the largest predicted magnitude is full saturation."""
  import cv2
  scale = max(float(np.linalg.norm(flow, axis=-1).max()), 1e-6)
  columns = []
  for t in range(flow.shape[0]):
    face = cv2.cvtColor(frames[t + 1], cv2.COLOR_GRAY2BGR)
    for x, y in landmarks[t]:
      cv2.circle(face, (int(round(float(x))), int(round(float(y)))), 1, (0, 255, 0), -1)
    colour = cv2.cvtColor(optical_flow.flow_colour(flow[t], scale), cv2.COLOR_RGB2BGR)   # Middlebury coding
    columns.append(np.concatenate([face, colour], axis=0))
  cv2.imwrite(path, np.concatenate(columns, axis=1))


def fold_normalization(data_config, run_results: dict, fold: str, workdir: str):
  """The (shift, scale) the fold's model saw its training frames with (None: 'standard';
  `inference.training_normalization`)."""
  try:
    return inference.training_normalization(data_config, run_results, fold)
  except inference.MissingTrainingStatistics:
    raise PredictError(f'{workdir} does not record fold {fold}\'s training statistics, which '
                       f'data.normalization={data_config.normalization!r} needs: re-score the run with '
                       f'`python -m fdp_jax.tools.rescore --workdir={workdir}` (it records them)') from None


def check_face_throughout(paths: list[str], onset: int, offset: int, landmarker) -> None:
  """Every frame of the window must show a face: the clip is aligned once, from its onset frame, so a frame
  where the face has gone would still be warped and classified. The first frame without a face is named
  (a video's frames are the PNG files written beside the output), with a window that avoids it."""
  import cv2
  for i in range(onset, offset + 1):
    try:
      grey = cv2.cvtColor(clips.read_frame(paths[i]), cv2.COLOR_BGR2GRAY)
    except clips.ClipError as e:
      raise PredictError(str(e)) from e
    if landmarker.detect(grey) is not None:
      continue
    if i == onset:
      raise PredictError(f'no face found in {paths[i]} (frame {i}, the onset of the window {onset}–{offset}); '
                         'the predictor needs a frontal face on every frame of the window')
    raise PredictError(f'the face is lost in frame {i} ({paths[i]}) of the window {onset}–{offset}: a clip is '
                       f'classified only where every frame shows the face. Pass --onset/--offset for a window '
                       f'that avoids it, e.g. --onset={onset} --offset={i - 1}')


def predict_clip(workdir: str, input_path: str, output: str, fold: str = '', onset: int | None = None,
                 offset: int | None = None) -> dict:
  """Predicts the clip at `input_path` (a folder of frames or a video; its frames `onset`..`offset`, default
  all) with the model of `fold` (default the run's first) of the run in `workdir`; writes prediction.json and
  its images into `output` and returns prediction.json's dict."""
  import cv2
  config = rundir.load_config(workdir)
  run_results = rundir.read_json(workdir, rundir.RESULTS)
  class_names = run_results['dataset']['class_names']
  subjects = [f['subject'] for f in run_results['folds']]
  fold = fold or subjects[0]
  if fold not in subjects:
    raise PredictError(f'--fold={fold} is not a fold of {workdir}; its folds are {subjects}')
  os.makedirs(output, exist_ok=True)
  paths = input_frames(input_path, output)
  onset, offset = window(len(paths), onset, offset)
  landmarker = face_alignment.FaceLandmarker()
  check_face_throughout(paths, onset, offset, landmarker)

  stored_size = int(round(config.data.image_size / config.data.crop_scale))
  spec = clips.ClipSpec(sample_id=os.path.basename(os.path.normpath(input_path)), subject='', clip='',
                        emotion='', frame_paths=tuple(paths), frame_numbers=tuple(range(len(paths))),
                        onset=onset, apex=(onset + offset) // 2, offset=offset)
  try:
    record = clips.preprocess_clip(spec, clips.AlignmentOptions(image_size=stored_size),
                                   landmarker)
  except clips.ClipError as e:
    raise PredictError(f'{e}: the predictor needs a frontal face on the onset frame ({paths[onset]})') from e
  # The window alone goes on, so that every config's sampling (onset_offset or whole) sees just it.
  keep = slice(onset, offset + 1)
  record.update(frames=record['frames'][keep], landmarks=record['landmarks'][keep], onset=np.int32(0),
                apex=np.int32((offset - onset) // 2), offset=np.int32(offset - onset), label=np.int32(0),
                _index=np.int32(0))

  data_config = config.data.copy_and_resolve_references()
  data_config.targets = 'mer'      # prediction needs no flow/landmark targets
  normalization = fold_normalization(data_config, run_results, fold, workdir)
  transform = input_pipeline.ClipTransform(data_config, train=False, normalization=normalization)
  example = transform(record)
  start, stop = transform.window(record)
  sampled = start + input_pipeline.sample_frame_indices(stop - start, data_config.num_frames,
                                                        data_config.frame_sampling, None)   # into the window

  state = inference.restore_fold(workdir, fold, config)
  options = train.options_for(config)   # the run's conv routing and compute dtype, for this machine
  batch = {'frames': example['frames'][None], 'frame_mask': example['frame_mask'][None]}
  outputs = jax.device_get(inference.inference_step(options, 'outputs')(state, batch))
  probabilities = np.asarray(jax.nn.softmax(np.asarray(outputs['logits'][0], np.float64)))
  if len(probabilities) != len(class_names):
    raise PredictError(f'the model of {workdir} has {len(probabilities)} outputs but its results.json names '
                       f'{len(class_names)} classes {class_names}')

  aligned = np.asarray(record['frames'])[..., 0]                            # (window, S0, S0) uint8
  images = {'contact_sheet': 'contact_sheet.png'}
  contact_sheet(aligned, sampled, os.path.join(output, images['contact_sheet']))
  picture = options.family.prediction_picture
  if picture == 'flow_landmarks':
    images['flow_landmarks'] = 'flow_landmarks.png'
    size = config.data.image_size
    shown = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_LINEAR) for f in aligned[sampled]])
    flow_landmarks_sheet(shown, outputs['flow'][0], outputs['landmarks'][0],
                         os.path.join(output, images['flow_landmarks']))
  elif picture == 'dynamic_image':   # the analytic dynamic image beside the decoded one
    images['dynamic_image'] = 'dynamic_image.png'
    pair = np.concatenate([_display(example['dynamic_image']), _display(outputs['dynamic_image'][0])], axis=1)
    cv2.imwrite(os.path.join(output, images['dynamic_image']), pair)

  checkpoint_dir = rundir.checkpoint_dir(workdir, fold)
  prediction = {
      'input': os.path.abspath(input_path),
      'warning': caveats.training_warning(run_results),
      'predicted_class': caveats.decided_class(probabilities, class_names),
      'most_probable_class': class_names[int(np.argmax(probabilities))],
      'probabilities': {name: float(p) for name, p in zip(class_names, probabilities)},
      'undecided_rule': caveats.UNDECIDED_RULE,
      'window': {'onset': onset, 'offset': offset, 'num_frames': len(paths),
                 'sampled_frames': [onset + int(i) for i in sampled],
                 'sampled_files': [os.path.basename(paths[onset + i]) for i in sampled]},
      'checkpoint': {'path': os.path.join(checkpoint_dir, str(int(state.step))), 'fold': fold,
                     'step': int(state.step)},
      'model': {'name': config.model.name, 'variant': options.family.variant},
      'images': images,
  }
  with open(os.path.join(output, 'prediction.json'), 'w') as f:
    json.dump(prediction, f, indent=1)
  return prediction
