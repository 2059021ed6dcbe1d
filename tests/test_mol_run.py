"""A MOL run end to end (`run.main` with `configs/mol_synthetic.py:small` shrunk to the tiny corpus): the
MER-only ablation trained after it, the flow and landmark references on the same held-out clips, the
pictures, the report and the printed comparison; and the references and flow colours on their own."""

import json
import os

import cv2
import numpy as np
import pytest

from configs import mol_synthetic
from fdp_jax import experiment, metrics, mol_evidence, run_results
from fdp_jax.tools import rescore
from fdp_jax.corpora import face_drawing, face_motion, synthetic_faces
from fdp_jax.preprocess import face_alignment, optical_flow


def tiny_mol_config(data_dir: str):
  config = mol_synthetic.get_config('small')
  config.progress_bar = False
  config.data.builder_config = 'tiny'      # 32-px faces, resized to the small MOL's 64 px
  config.data.data_dir = data_dir
  config.data.num_frames = 4
  config.data.num_threads = 1
  config.model.width = 0.125
  config.train.batch_size = 2
  config.train.num_steps = 2
  config.train.warmup_steps = 1
  config.train.log_every_steps = 1
  config.cv.checkpoint_every_steps = 2
  config.cv.subjects = 's00,s01'
  config.eval.batch_size = 4
  return config


def test_a_small_mol_run_trains_its_ablation_and_scores_the_references(tiny_data_dir, tmp_path, capsys):
  config = tiny_mol_config(tiny_data_dir)
  workdir = str(tmp_path / 'run')
  results = experiment.main(config, workdir)
  printed = capsys.readouterr().out

  # the ablation: its own run directory, the same folds and steps, no auxiliary losses
  ablation = json.load(open(os.path.join(workdir, 'ablation', 'results.json')))
  assert [f['subject'] for f in ablation['folds']] == ['s00', 's01']
  assert all(f['steps'] == 2 for f in ablation['folds'])
  assert results['ablation']['loss']['flow'] == 0 and results['ablation']['loss']['landmarks'] == 0
  assert results['ablation']['aggregate']['uf1'] == ablation['aggregate']['uf1']
  saved_ablation_config = json.load(open(os.path.join(workdir, 'ablation', 'config.json')))
  assert saved_ablation_config['loss']['flow'] == 0 and saved_ablation_config['compare_ablation'] is False

  # references: per fold over its test clips, pooled over all of them
  refs = results['mol_references']
  assert set(refs['folds']) == {'s00', 's01'}
  pooled = refs['aggregate']
  assert pooled['num_clips'] == 20 == sum(f['num_test'] for f in results['folds'])
  for key in ('zero_flow', 'tvl1', 'farneback', 'training_mean', 'clip_mean_oracle'):
    assert np.isfinite(pooled[key]) and pooled[key] > 0, key
  assert pooled['clip_mean_oracle'] < pooled['training_mean']   # it knows each clip's true points
  assert 0.0 <= pooled['dlib_face_found'] <= 1.0
  # MOL's own errors are on the same clips as the references: the held-out clip count matches
  assert np.isfinite(results['aggregate']['flow_epe']) and np.isfinite(results['aggregate']['landmark_nme'])
  assert np.isfinite(results['aggregate']['flow_epe_moving']) and np.isfinite(pooled['zero_flow_moving'])

  # pictures of held-out clips: 3 rows (frame + landmarks, true flow, predicted flow), a column per pair
  assert results['mol_examples'] and all(p.startswith('mol_examples/') for p in results['mol_examples'])
  image = cv2.imread(os.path.join(workdir, results['mol_examples'][0]))
  assert image.shape == (3 * 128, 3 * 128, 3)

  saved = json.load(open(os.path.join(workdir, 'results.json')))
  assert saved['mol_references'] == refs and saved['ablation']['workdir'] == 'ablation'
  report = open(os.path.join(workdir, 'report.md')).read()
  assert 'MER-only ablation' in report and 'reference: zero flow' in report
  assert f"]({results['mol_examples'][0]})" in report
  assert '| MOL (this run) |' in printed and '| MER-only ablation' in printed and 'dlib' in printed

  # rerunning the same command continues both runs: nothing is trained again, the same scores come out
  again = experiment.main(tiny_mol_config(tiny_data_dir), workdir)
  assert again['aggregate']['uf1'] == results['aggregate']['uf1']
  assert again['ablation']['aggregate'] == results['ablation']['aggregate']

  # re-scoring the run from its checkpoints keeps what only a MOL run has
  rescored = rescore.evaluate_run(workdir)
  assert rescored['aggregate']['flow_epe'] == pytest.approx(results['aggregate']['flow_epe'], rel=1e-5)
  for key in run_results.ADDED_SECTIONS:
    assert rescored[key] == again[key], key
  assert 'reference: zero flow' in open(os.path.join(workdir, 'report.md')).read()


def _clip(index: int, size: int = 128) -> dict:
  record = synthetic_faces.make_clip(face_drawing.make_subject(0, index, size), 0, index % 5, 0, 20, 24,
                                     with_flow=True, alignment=face_motion.MOL_ALIGNMENT)
  return dict(record, label=index % 5)


def test_references_of_one_clip_are_what_they_say():
  config = mol_synthetic.get_config('small')
  config.data.stabilise = 'none'     # the corpus's whole motion, each frame's alignment error included
  view = mol_evidence.evaluation_view(config.data, _clip(0))
  assert view['frames'].shape == (8, 64, 64) and view['frames'].dtype == np.uint8
  assert view['flow'].shape == (7, 64, 64, 2) and view['landmarks'].shape == (7, 68, 2)
  other = mol_evidence.evaluation_view(config.data, _clip(1))
  training_mean = other['landmarks'].mean(0)
  refs = mol_evidence.clip_references(view, training_mean, face_alignment.FaceLandmarker())
  magnitude = np.linalg.norm(view['flow'], axis=-1)
  assert refs['zero_flow'] == pytest.approx(float(magnitude.mean()))
  # on the moving pixels (|flow| > 0.5 px at 64 px) zero flow errs by their mean motion, above the threshold
  moving = magnitude > metrics.moving_flow_threshold(64)
  assert 0 < moving.mean() < 0.5
  assert refs['zero_flow_moving'] == pytest.approx(float(magnitude[moving].mean())) and refs['zero_flow_moving'] > 0.5
  assert refs['farneback_moving'] < refs['zero_flow_moving']
  # the clip's own mean points err only by its motion; another face's points by far more
  assert refs['clip_mean_oracle'] < 0.02 < refs['training_mean']
  exact = mol_evidence.flow_epe(view['flow'], view['flow'])
  assert exact == 0.0
  assert refs['frames'] == 7 and 0 <= refs['dlib_frames'] <= 7


def test_middlebury_colours():
  flow = np.array([[[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.5, 0.0], [2.0, 0.0]]])
  rgb = optical_flow.flow_colour(flow, max_magnitude=1.0)[0]
  np.testing.assert_array_equal(rgb[0], [255, 255, 255])          # no motion: white
  np.testing.assert_array_equal(rgb[1], [255, 0, 0])              # rightwards, full: red
  assert rgb[2][0] == 0 and rgb[2][2] == 255                      # leftwards: cyan to blue
  np.testing.assert_array_equal(rgb[3], [255, 128, 128])          # half the magnitude: half saturated
  np.testing.assert_array_equal(rgb[4], [191, 0, 0])              # beyond the maximum: darkened by 0.75
  # the default scale is the field's own largest magnitude
  np.testing.assert_array_equal(optical_flow.flow_colour(flow)[0][4], [255, 0, 0])
