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
from typing import Sequence

import numpy as np

from fdp_jax import input_pipeline, metrics
from fdp_jax.preprocess import face_alignment, optical_flow

EXAMPLES_DIR = 'mol_examples'
ABLATION_DIR = 'ablation'

FLOW_REFERENCES = ('zero_flow', 'tvl1', 'farneback')
LANDMARK_REFERENCES = ('training_mean', 'dlib', 'clip_mean_oracle')


def _ipd(landmarks: np.ndarray) -> np.ndarray:
  return np.linalg.norm(landmarks[..., 36:42, :].mean(-2) - landmarks[..., 42:48, :].mean(-2), axis=-1)


def flow_epe(predicted: np.ndarray, target: np.ndarray) -> float:
  """Mean end-point error (px) of (T−1, S, S, 2) flows."""
  return float(np.linalg.norm(predicted - target, axis=-1).mean())


def flow_epe_moving(predicted: np.ndarray, target: np.ndarray) -> float:
  """Mean end-point error (px) of (T−1, S, S, 2) flows over the pixels whose true flow moves
  (`metrics.moving_flow_threshold`); NaN when none does."""
  moving = np.linalg.norm(target, axis=-1) > metrics.moving_flow_threshold(target.shape[-2])
  return float(np.linalg.norm(predicted - target, axis=-1)[moving].mean()) if moving.any() else float('nan')


def landmark_nme(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
  """(T−1,) per-pair NME of (T−1, 68, 2) landmarks: mean point error / the target's inter-pupil distance."""
  return np.linalg.norm(predicted - target, axis=-1).mean(-1) / np.maximum(_ipd(target), 1e-3)


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
         'training_mean': float(landmark_nme(np.broadcast_to(training_mean, landmarks.shape), landmarks).mean()),
         'clip_mean_oracle': float(landmark_nme(np.broadcast_to(landmarks.mean(0), landmarks.shape),
                                                landmarks).mean())}
  found = _dlib_landmarks(landmarker, frames[1:])      # the landmark targets are those of frames 1 … T−1
  errors = [landmark_nme(p[None], t[None])[0] for p, t in zip(found, landmarks) if p is not None]
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


def comparison_rows(runs: Sequence[tuple[str, dict]], refs: dict | None) -> list[str]:
  """A Markdown table: each (name, results.json aggregate) run's UF1, UAR, flow EPE and landmark NME, then the
  references' errors (`references(...)['aggregate']`)."""
  rows = ['| | UF1 | UAR | flow EPE (px) | on moving pixels | landmark NME |', '|---|---:|---:|---:|---:|---:|']
  value = lambda d, key: f'{d[key]:.4f}' if key in d else '—'  # noqa: E731
  for name, a in runs:
    rows.append(f"| {name} | {a['uf1']:.3f} | {a['uar']:.3f} | {value(a, 'flow_epe')} | "
                f"{value(a, 'flow_epe_moving')} | {value(a, 'landmark_nme')} |")
  if refs:
    dlib = '—' if refs['dlib'] is None else f"{refs['dlib']:.4f} (face found in {refs['dlib_face_found']:.0%})"
    rows += [f"| reference: {title} | | | {value(refs, key)} | {value(refs, key + '_moving')} | |"
             for key, title in (('zero_flow', 'zero flow'), ('tvl1', 'TV-L1 (OpenCV)'),
                                ('farneback', 'Farnebäck (OpenCV)'))]
    rows += [f"| reference: training subjects' mean landmarks | | | | | {refs['training_mean']:.4f} |",
             f'| reference: dlib 68-point detector | | | | | {dlib} |',
             f"| oracle: each clip's own mean true landmarks | | | | | {refs['clip_mean_oracle']:.4f} |"]
  return rows


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


def write_examples(config, workdir: str, source: Sequence[dict], folds, clips_per_fold: int = 1,
                   max_folds: int = 3) -> list[str]:
  """Predicts the first `clips_per_fold` test clips of the first `max_folds` finished folds with each fold's
  final checkpoint and draws them (`draw_example`) into `workdir/mol_examples/`; returns the image paths
  relative to `workdir`."""
  import jax

  from fdp_jax import families, inference, train
  from fdp_jax.cv import checkpoints, loso

  model = families.build_model(config.model, config.data.num_classes, config.data.image_size)
  template = loso.fold_template(config, model)
  predict = inference.inference_step(train.options_for(config), 'outputs')
  transform = input_pipeline.ClipTransform(config.data, train=False)
  os.makedirs(os.path.join(workdir, EXAMPLES_DIR), exist_ok=True)
  paths = []
  for fold in list(folds)[:max_folds]:
    try:
      state = checkpoints.restore_fold(workdir, fold.subject, template)
    except FileNotFoundError:
      continue
    for i in fold.test_indices[:clips_per_fold]:
      record = dict(source[int(i)], _index=int(i))
      example = transform(record)
      batch = {'frames': example['frames'][None], 'frame_mask': example['frame_mask'][None]}
      outputs = jax.device_get(predict(state, batch))
      relative = os.path.join(EXAMPLES_DIR, f'{fold.subject}_{int(i)}.png')
      draw_example(evaluation_view(config.data, record), np.asarray(outputs['flow'][0], np.float32),
                   np.asarray(outputs['landmarks'][0], np.float32), os.path.join(workdir, relative))
      paths.append(relative)
  return paths


# The keys a MOL run adds to results.json (kept when `fdp_jax.tools.rescore` re-scores the run).
RESULT_KEYS = ('mol_references', 'mol_examples', 'ablation')


def applies(config) -> bool:
  """Whether a run has MOL's flow and landmark outputs to check (a MOL config with its targets)."""
  return config.model.name == 'mol' and config.data.get('targets', 'mer') == 'mol'


def add_to_run(config, workdir: str, results: dict) -> dict:
  """results.json of a finished MOL run with the references on its test clips ('mol_references') and its
  pictures ('mol_examples'), rewritten in `workdir`; returns the updated results."""
  from fdp_jax import data_sources, rundir
  from fdp_jax.cv.folds import loso_folds

  source, index, _ = data_sources.load_corpus(config.data)
  done = {f['subject'] for f in results['folds'] if f.get('status') == 'done'}
  folds = [f for f in loso_folds(index.subjects) if f.subject in done]
  results = dict(results, mol_references=references(config.data, source, folds),
                 mol_examples=write_examples(config, workdir, source, folds))
  rundir.write_json(rundir.path(workdir, rundir.RESULTS), results)
  return results


def without_auxiliary_tasks(config):
  """The flow/landmark-free ablation of a MOL config: the same network, data, folds, steps and seed,
  trained on the MER loss alone (a copy; `compare_ablation` off)."""
  ablation = config.copy_and_resolve_references()
  with ablation.unlocked():
    ablation.loss.flow = 0.0
    ablation.loss.landmarks = 0.0
    ablation.compare_ablation = False
  return ablation


def comparison_table(results: dict) -> list[str]:
  """`comparison_rows` of a MOL run's results.json: the run, its ablation when trained, the references."""
  runs = [('MOL (this run)', results['aggregate'])]
  if 'ablation' in results:
    runs.append(('MER-only ablation (same data, steps, seed)', results['ablation']['aggregate']))
  return comparison_rows(runs, results.get('mol_references', {}).get('aggregate'))


def report_lines(results: dict) -> list[str]:
  """report.md's MOL section: the comparison table (with the ablation's scores when the run trained it)
  and the example pictures."""
  if 'mol_references' not in results:
    return []
  lines = ['', '## Flow and landmarks against references', '',
           'Means over every held-out clip (each fold\'s model on its own test subject; references on the same '
           'clips, frames and targets — `fdp_jax/mol_evidence.py`).', '', *comparison_table(results)]
  if results.get('mol_examples'):
    lines += ['', 'Held-out clips, one column per frame pair: the frame with true (green) and predicted (red) '
              'landmarks; the true flow; the predicted flow (Middlebury colours, one scale per clip: the true '
              'flow\'s largest magnitude is full saturation).', '']
    lines += [f'![{os.path.basename(p)}]({p})' for p in results['mol_examples']]
  return lines
