"""What shows MOL's flow and landmark heads working: references computed on the same held-out clips, and
pictures of predicted beside true flow and landmarks.

References, per test clip, in the same evaluation view as the model's own errors (`families._mol_eval_metrics`:
flow EPE in pixels, mean over pixels and pairs, and over the moving pixels only; landmark NME = mean point
error / inter-pupil distance, mean over pairs):
- flow: zero flow (no motion anywhere), OpenCV's TV-L1 (the estimator the release's flow targets come from)
  and Farnebäck on the same aligned frames;
- landmarks: the training subjects' mean landmarks (the trivial answer a head that ignores its input
  converges to), dlib's HOG detector and 68-point predictor on the same frames (frames where dlib finds no
  face are counted and left out of its NME), and each clip's own mean true landmarks — an oracle, not a
  trivial reference: it knows the held-out clip's true points and errs only by the clip's motion.
Host-side numpy/OpenCV/dlib; nothing here is jitted.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np

from fdp_jax import data_sources, input_pipeline, metrics, rundir
from fdp_jax.cv.folds import loso_folds
from fdp_jax.preprocess import face_alignment, optical_flow

FLOW_REFERENCES = ('zero_flow', 'tvl1', 'farneback')
LANDMARK_REFERENCES = ('training_mean', 'dlib', 'clip_mean_oracle')


def flow_epe(predicted: np.ndarray, target: np.ndarray) -> float:
  """Mean end-point error (px) of (T−1, S, S, 2) flows."""
  return float(np.linalg.norm(predicted - target, axis=-1).mean())


def flow_epe_moving(predicted: np.ndarray, target: np.ndarray) -> float:
  """Mean end-point error (px) of (T−1, S, S, 2) flows over the pixels whose true flow moves
  (`metrics.moving_flow_threshold`); NaN when none does."""
  moving = np.linalg.norm(target, axis=-1) > metrics.moving_flow_threshold(target.shape[-2])
  return float(np.linalg.norm(predicted - target, axis=-1)[moving].mean()) if moving.any() else float('nan')


def evaluation_view(data_config, record: dict) -> dict:
  """A record as the evaluation sees it: 'frames' (T, S, S) uint8 of the sampled, cropped, resized frames,
  'flow' (T−1, S, S, 2) and 'landmarks' (T−1, 68, 2) targets in pixels of the S-px crop."""
  config = data_config.copy_and_resolve_references()
  config.frame_reference = 'none'
  example = input_pipeline.ClipTransform(config, train=False)(dict(record, _index=0))   # standard normalisation
  frames = np.clip(np.round((example['frames'][..., 0] * 0.5 + 0.5) * 255), 0, 255).astype(np.uint8)
  return {'frames': frames, 'flow': example['flow'], 'landmarks': example['landmarks']}


def _dlib_landmarks(landmarker: face_alignment.FaceLandmarker, frames: np.ndarray) -> list:
  """dlib's 68 points on each frame, None where it finds no face."""
  out = []
  for frame in frames:
    face = landmarker.detect(frame)
    out.append(None if face is None else landmarker.landmarks(frame, face))
  return out


def clip_references(view: dict, training_mean: np.ndarray, landmarker: face_alignment.FaceLandmarker) -> dict:
  """Every reference's error on one clip's evaluation view; dlib's NME over the frames it found a face on
  ('dlib' None when none) and the count of those frames ('dlib_frames')."""
  frames, flow, landmarks = view['frames'], view['flow'], view['landmarks']
  estimates = {'zero_flow': np.zeros_like(flow), 'tvl1': optical_flow.tvl1_flow(frames),
               'farneback': optical_flow.farneback_flow(frames)}
  out = {**{name: flow_epe(f, flow) for name, f in estimates.items()},
         **{f'{name}_moving': flow_epe_moving(f, flow) for name, f in estimates.items()},
         'training_mean': float(metrics.landmark_nme(np.broadcast_to(training_mean, landmarks.shape),
                                                     landmarks).mean()),
         'clip_mean_oracle': float(metrics.landmark_nme(np.broadcast_to(landmarks.mean(0), landmarks.shape),
                                                landmarks).mean())}
  found = _dlib_landmarks(landmarker, frames[1:])      # the landmark targets are those of frames 1 … T−1
  errors = [metrics.landmark_nme(p[None], t[None])[0] for p, t in zip(found, landmarks) if p is not None]
  out['dlib'] = float(np.mean(errors)) if errors else None
  out['dlib_frames'] = len(errors)
  out['frames'] = len(landmarks)
  return out


def references(data_config, source: Sequence[dict], folds) -> dict:
  """{'folds': {subject: {reference: mean over its test clips}}, 'aggregate': {reference: mean over all test
  clips}} for `folds` (`cv.folds.Fold`), plus dlib's face-found rate. The training mean is each fold's
  own (its training clips' mean landmarks)."""
  needed = sorted({int(i) for fold in folds for i in (*fold.train_indices, *fold.test_indices)})
  views = {i: evaluation_view(data_config, source[i]) for i in needed}
  landmarker = face_alignment.FaceLandmarker()
  per_fold, pooled = {}, []
  for fold in folds:
    training_mean = np.mean([views[int(i)]['landmarks'].mean(0) for i in fold.train_indices], axis=0)
    clips = [clip_references(views[int(i)], training_mean, landmarker) for i in fold.test_indices]
    per_fold[fold.subject] = _summary(clips)
    pooled += clips
  return {'folds': per_fold, 'aggregate': _summary(pooled)}


def _summary(clips: list[dict]) -> dict:
  out = {key: float(np.nanmean([c[key] for c in clips]))
         for key in FLOW_REFERENCES + tuple(f'{k}_moving' for k in FLOW_REFERENCES) + LANDMARK_REFERENCES
         if key != 'dlib'}
  found = [c for c in clips if c['dlib'] is not None]
  weights = [c['dlib_frames'] for c in found]
  out['dlib'] = float(np.average([c['dlib'] for c in found], weights=weights)) if found else None
  out['dlib_face_found'] = float(sum(c['dlib_frames'] for c in clips) / max(sum(c['frames'] for c in clips), 1))
  out['num_clips'] = len(clips)
  return out


def draw_example(view: dict, flow: np.ndarray, landmarks: np.ndarray, path: str, upscale: int = 2) -> None:
  """One held-out clip, a column per frame pair: the frame with true (green) and predicted (red) landmarks,
  the true flow and the predicted flow in Middlebury colours on one scale (the true flow's largest
  magnitude). Frames are drawn `upscale` times larger."""
  import cv2
  scale = max(float(np.linalg.norm(view['flow'], axis=-1).max()), 1e-6)
  true_colour = optical_flow.flow_colour(view['flow'], scale)
  predicted_colour = optical_flow.flow_colour(flow, scale)
  size = view['frames'].shape[1] * upscale
  columns = []
  for t in range(len(view['flow'])):
    face = cv2.cvtColor(cv2.resize(view['frames'][t + 1], (size, size), interpolation=cv2.INTER_LINEAR),
                        cv2.COLOR_GRAY2RGB)
    for points, colour in ((view['landmarks'][t], (0, 200, 0)), (landmarks[t], (230, 0, 0))):
      for x, y in points:
        cv2.circle(face, (int(round((x + 0.5) * upscale - 0.5)), int(round((y + 0.5) * upscale - 0.5))), 1,
                   colour, -1)
    big = lambda image: cv2.resize(image, (size, size), interpolation=cv2.INTER_NEAREST)  # noqa: E731
    columns.append(np.concatenate([face, big(true_colour[t]), big(predicted_colour[t])], axis=0))
  sheet = np.concatenate(columns, axis=1)
  cv2.imwrite(path, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def write_examples(config, workdir: str, source: Sequence[dict], folds, fold_model: Callable,
                   clips_per_fold: int = 1, max_folds: int = 3) -> list[str]:
  """Predicts the first `clips_per_fold` test clips of the first `max_folds` finished folds with each fold's
  final model (`fold_model(subject)`: batch → outputs, None without a checkpoint; `inference.fold_predictor`)
  and draws them (`draw_example`) into the run's `rundir.MOL_EXAMPLES_DIR`; returns the image paths relative
  to `workdir`."""
  transform = input_pipeline.ClipTransform(config.data, train=False)
  os.makedirs(rundir.path(workdir, rundir.MOL_EXAMPLES_DIR), exist_ok=True)
  paths = []
  for fold in list(folds)[:max_folds]:
    predict = fold_model(fold.subject)
    if predict is None:
      continue
    for i in fold.test_indices[:clips_per_fold]:
      record = dict(source[int(i)], _index=int(i))
      example = transform(record)
      outputs = predict({'frames': example['frames'][None], 'frame_mask': example['frame_mask'][None]})
      relative = rundir.mol_example(fold.subject, int(i))
      draw_example(evaluation_view(config.data, record), np.asarray(outputs['flow'][0], np.float32),
                   np.asarray(outputs['landmarks'][0], np.float32), rundir.path(workdir, relative))
      paths.append(relative)
  return paths


def evidence(config, workdir: str, results: dict, fold_model: Callable) -> dict:
  """The sections a finished MOL run adds to results.json: the references on its test clips
  ('mol_references') and its pictures ('mol_examples', drawn into `workdir`)."""
  source, index, _ = data_sources.load_corpus(config.data)
  done = {f['subject'] for f in results['folds'] if f.get('status') == 'done'}
  folds = [f for f in loso_folds(index.subjects) if f.subject in done]
  return {'mol_references': references(config.data, source, folds),
          'mol_examples': write_examples(config, workdir, source, folds, fold_model)}


def without_auxiliary_tasks(config):
  """The flow/landmark-free ablation of a MOL config: the same network, data, folds, steps and seed,
  trained on the MER loss alone (a copy; `compare_ablation` off)."""
  ablation = config.copy_and_resolve_references()
  with ablation.unlocked():
    ablation.loss.flow = 0.0
    ablation.loss.landmarks = 0.0
    ablation.compare_ablation = False
  return ablation
