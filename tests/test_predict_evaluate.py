"""After training: the run report, re-evaluation from checkpoints, and prediction on a new clip (a real
face, scikit-image's astronaut, as a folder of frames and as a video)."""

import glob
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import corpus_fixtures
from conftest import REPO, assert_predictions_are_argmax, tiny_config
from fdp_jax import caveats, clip_prediction, experiment, rundir


@pytest.fixture(scope='module')
def tiny_run(tiny_data_dir, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('run'))
  config = tiny_config(tiny_data_dir, log_every_steps=1)
  config.cv.subjects = 's00,s01,s02'          # 2 fake devices: a group of 2 and one with an idle slot
  config.cv.best_test_every_steps = 2
  experiment.main(config, workdir)
  return workdir


@pytest.fixture(scope='module')
def astronaut_frames(tmp_path_factory):
  folder = tmp_path_factory.mktemp('clip')
  for i, frame in enumerate(corpus_fixtures.face_frames(12, seed=0)):
    cv2.imwrite(str(folder / f'img{i + 1}.jpg'), frame)
  return str(folder)


def _png(path):
  image = cv2.imread(path)
  assert image is not None and image.size > 0, path
  return image


def test_report_and_figures_after_a_tiny_run(tiny_run):
  text = open(os.path.join(tiny_run, 'report.md')).read()
  results = json.load(open(os.path.join(tiny_run, 'results.json')))
  for fold in results['folds']:
    assert f"| {fold['subject']} | {fold['num_test']} | {fold['metrics']['accuracy']:.3f} |" in text
  assert f"| UF1 | {results['aggregate']['uf1']:.4f} |" in text
  assert 'OPTIMISTIC (best test step)' in text and 'honest (end of schedule)' in text
  assert '![confusion matrix](confusion_matrix.png)' in text and '![training curves](training_curves.png)' in text
  _png(os.path.join(tiny_run, 'confusion_matrix.png'))
  _png(os.path.join(tiny_run, 'training_curves.png'))
  history = json.load(open(os.path.join(tiny_run, 'train_history.json')))
  assert sorted(history) == ['s00', 's01', 's02']
  assert history['s02']['step'] == [1, 2, 3] and len(history['s02']['loss_mer']) == 3
  # TensorBoard: eval metrics beside the training scalars, per fold
  for subject in ('s00', 's01', 's02'):
    events = open(glob.glob(os.path.join(tiny_run, 'tensorboard', subject, 'events.*'))[0], 'rb').read()
    assert b'eval/uf1' in events and b'train/loss_mer' in events and b'train/accuracy' in events


@pytest.mark.numerics
def test_evaluate_reproduces_results_json_bit_for_bit(tiny_run):
  path = os.path.join(tiny_run, 'results.json')
  before = open(path, 'rb').read()
  os.remove(os.path.join(tiny_run, 'report.md'))
  proc = subprocess.run([sys.executable, '-m', 'fdp_jax.tools.rescore', f'--workdir={tiny_run}'], cwd=REPO,
                        capture_output=True, text=True)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert open(path, 'rb').read() == before
  assert os.path.exists(os.path.join(tiny_run, 'report.md'))
  assert 'Aggregate over the summed confusion matrix' in proc.stdout


@pytest.mark.numerics
def test_evaluation_views_average_probabilities(tiny_run, tmp_path, monkeypatch):
  """eval.num_views=3 re-scores the run with three temporal views per clip: every view gives the model other
  frames of the clips, and the probabilities reported are the mean of each view's own, the predictions their
  argmax.

  The 3-step tiny model scores every view alike to 6 decimals, so evaluation's probabilities are replaced by
  a score of the frames it is given (class c: the mean grey level of frame c mod T), which differs between
  views as their frames do; the views' frames and their averaging are the machinery under test."""
  import shutil
  import jax
  from fdp_jax import data_sources, input_pipeline, rundir
  from fdp_jax.tools import rescore
  from fdp_jax.cv import loso

  def frame_score(frames, num_classes):
    """(..., T, H, W, 1) frames → (..., num_classes) probabilities."""
    means = frames.mean((-3, -2, -1))
    return jax.nn.softmax(50 * means[..., np.arange(num_classes) % means.shape[-1]], -1)

  seen = {}                                   # (view position, record) → the frames evaluation was given
  transform = input_pipeline.ClipTransform.__call__

  def recording(self, record, rng=None):
    example = transform(self, record, rng)
    if not self.train:
      seen[self.view_position, record['_index']] = example['frames']
    return example
  monkeypatch.setattr(input_pipeline.ClipTransform, '__call__', recording)

  make_group_steps = loso.make_group_steps

  def frame_scored(*args, **kwargs):
    fsteps = make_group_steps(*args, **kwargs)
    assert fsteps.corpus is None              # host batches: every clip passes through ClipTransform

    def scored(state, batch):
      out = dict(fsteps.eval(state, batch))
      out['probabilities'] = frame_score(batch['frames'], out['probabilities'].shape[-1])
      out['prediction'] = out['probabilities'].argmax(-1).astype(out['prediction'].dtype)
      return out
    return fsteps._replace(eval=scored)
  monkeypatch.setattr(loso, 'make_group_steps', frame_scored)

  copy = str(tmp_path / 'views')
  shutil.copytree(tiny_run, copy)
  config = json.load(open(os.path.join(copy, 'config.json')))
  config['eval']['num_views'] = 3
  json.dump(config, open(os.path.join(copy, 'config.json'), 'w'))
  folds = rescore.evaluate_run(copy)['folds']

  positions = sorted({p for p, _ in seen})
  records = sorted({r for _, r in seen})
  assert len(positions) == 3 and len(seen) == 3 * len(records)
  assert len(records) == sum(f['num_test'] for f in folds)
  # Positions 1/6, 1/2, 5/6 of each segment: two views coincide only where a segment is too short to hold
  # both (the 8-frame windows' 2-frame segments, for 1/2 and 5/6); the outer views never do.
  for i, p in enumerate(positions):
    for q in positions[i + 1:]:
      differ = [not np.array_equal(seen[p, r], seen[q, r]) for r in records]
      assert np.mean(differ) >= 0.9, (p, q, np.mean(differ))
  assert all(not np.array_equal(seen[positions[0], r], seen[positions[-1], r]) for r in records)

  _, index, _ = data_sources.load_corpus(rundir.load_config(copy).data)
  record_of = {sample_id: r for r, sample_id in enumerate(index.sample_ids)}
  for fold in folds:
    clips = [record_of[sample_id] for sample_id in fold['sample_ids']]
    p = np.asarray(fold['probabilities'])
    per_view = np.stack([frame_score(np.stack([seen[v, r] for r in clips]), p.shape[1]) for v in positions])
    assert np.abs(per_view[0] - per_view[-1]).max() > 0.1        # views that would be told apart
    # results.json rounds to 6 decimals.
    np.testing.assert_allclose(p, per_view.mean(0), rtol=0, atol=1e-6)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    assert_predictions_are_argmax(fold['predictions'], p)


def test_predict_on_a_folder_of_frames(tiny_run, astronaut_frames, tmp_path):
  out = tmp_path / 'prediction'
  proc = subprocess.run([sys.executable, '-m', 'fdp_jax.tools.predict', f'--workdir={tiny_run}',
                         f'--input={astronaut_frames}', f'--output={out}', '--fold=s01', '--onset=1',
                         '--offset=10'], cwd=REPO, capture_output=True, text=True)
  assert proc.returncode == 0, proc.stderr[-3000:]
  prediction = json.load(open(out / 'prediction.json'))
  probabilities = prediction['probabilities']
  assert list(probabilities) == ['happiness', 'surprise', 'disgust', 'repression', 'others']
  assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-6)
  assert prediction['most_probable_class'] == max(probabilities, key=probabilities.get)
  assert prediction['predicted_class'] == caveats.decided_class(list(probabilities.values()), list(probabilities))
  assert prediction['predicted_class'] in proc.stdout
  # Trained on synthetic faces: one warning line, and the same words in prediction.json.
  assert prediction['warning'] == caveats.SYNTHETIC_WARNING
  assert proc.stdout.count(caveats.SYNTHETIC_WARNING) == 1
  window = prediction['window']
  assert (window['onset'], window['offset'], window['num_frames']) == (1, 10, 12)
  assert len(window['sampled_frames']) == 4 and all(1 <= i <= 10 for i in window['sampled_frames'])
  assert window['sampled_files'] == [f'img{i + 1}.jpg' for i in window['sampled_frames']]
  assert prediction['checkpoint']['fold'] == 's01' and prediction['checkpoint']['step'] == 3
  assert os.path.isdir(prediction['checkpoint']['path'])
  sheet = _png(str(out / 'contact_sheet.png'))
  assert sheet.shape[1] == 8 * 102            # 10 window frames, 8 per row, 96 px + borders
  pair = _png(str(out / 'dynamic_image.png'))
  assert pair.shape[:2] == (128, 256)         # computed dynamic image | the model's


def test_predict_on_a_video(tiny_run, tmp_path):
  video = str(tmp_path / 'clip.avi')
  writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'MJPG'), 25, (128, 128))
  for frame in corpus_fixtures.face_frames(12, seed=1):
    writer.write(frame)
  writer.release()
  prediction = clip_prediction.predict_clip(tiny_run, video, str(tmp_path / 'out'))
  assert prediction['window']['num_frames'] == 12
  assert sum(prediction['probabilities'].values()) == pytest.approx(1.0, abs=1e-6)
  assert len(os.listdir(tmp_path / 'out' / 'frames')) == 12
  _png(str(tmp_path / 'out' / 'contact_sheet.png'))


def test_predict_says_nothing_for_a_run_trained_on_a_licensed_corpus(tiny_run, astronaut_frames, tmp_path):
  """The same run, its record naming CASME II: no warning; undecided still by the probabilities alone."""
  import shutil
  copy = str(tmp_path / 'run')
  shutil.copytree(tiny_run, copy)
  results = rundir.read_json(copy, rundir.RESULTS)
  results['dataset']['name'] = 'casme2'
  rundir.write_json(rundir.path(copy, rundir.RESULTS), results)
  prediction = clip_prediction.predict_clip(copy, astronaut_frames, str(tmp_path / 'out'), fold='s01')
  assert prediction['warning'] == ''
  synthetic = clip_prediction.predict_clip(tiny_run, astronaut_frames, str(tmp_path / 'out2'), fold='s01')
  assert synthetic['warning'] == caveats.SYNTHETIC_WARNING
  assert prediction['probabilities'] == synthetic['probabilities']
  assert prediction['predicted_class'] == synthetic['predicted_class']


def test_predict_without_a_face_names_the_frame(tiny_run, tmp_path):
  folder = tmp_path / 'noface'
  folder.mkdir()
  for i, frame in enumerate(corpus_fixtures.faceless_frames(6, seed=0)):
    cv2.imwrite(str(folder / f'{i:03d}.png'), frame)
  with pytest.raises(clip_prediction.PredictError, match=r'no face found in .*000\.png'):
    clip_prediction.predict_clip(tiny_run, str(folder), str(tmp_path / 'out'))


def test_predict_refuses_a_window_where_the_face_is_lost(tiny_run, tmp_path):
  """The face leaves after frame 7: the whole clip is refused, naming frame 8; the window it suggests works."""
  folder = tmp_path / 'leaves'
  folder.mkdir()
  frames = corpus_fixtures.face_frames(8, seed=1) + corpus_fixtures.faceless_frames(4, seed=1)
  for i, frame in enumerate(frames):
    cv2.imwrite(str(folder / f'img{i + 1}.jpg'), frame)
  with pytest.raises(clip_prediction.PredictError,
                     match=r'face is lost in frame 8 \(.*img9\.jpg\).*--onset=0 --offset=7'):
    clip_prediction.predict_clip(tiny_run, str(folder), str(tmp_path / 'out'))
  prediction = clip_prediction.predict_clip(tiny_run, str(folder), str(tmp_path / 'out'), onset=0, offset=7)
  assert (prediction['window']['onset'], prediction['window']['offset']) == (0, 7)


def test_predict_refuses_an_unreadable_video_and_a_bad_window(tiny_run, astronaut_frames, tmp_path):
  bad = tmp_path / 'clip.mp4'
  bad.write_text('not a video')
  with pytest.raises(clip_prediction.PredictError, match=r'cannot read any frame from the video .*clip\.mp4'):
    clip_prediction.predict_clip(tiny_run, str(bad), str(tmp_path / 'out'))
  with pytest.raises(clip_prediction.PredictError, match=r'onset=5, offset=20 is not inside the clip'):
    clip_prediction.predict_clip(tiny_run, astronaut_frames, str(tmp_path / 'out'), onset=5, offset=20)
  with pytest.raises(clip_prediction.PredictError, match=r'--fold=s09 is not a fold'):
    clip_prediction.predict_clip(tiny_run, astronaut_frames, str(tmp_path / 'out'), fold='s09')


def test_predict_with_mol_draws_flow_and_landmarks(astronaut_frames, tmp_path):
  """MOL's branch, on an untrained MOL saved as a one-fold run (a trained MOL needs the 128-px corpus)."""
  import jax
  from configs import mol_casme2
  from fdp_jax import train
  from fdp_jax.cv import checkpoints
  from fdp_jax.families import build_model
  config = mol_casme2.get_config()      # 144-px faces, 128-px centre crop in evaluation
  workdir = tmp_path / 'molrun'
  workdir.mkdir()
  (workdir / 'config.json').write_text(config.to_json_best_effort())
  names = ['happiness', 'surprise', 'disgust', 'repression', 'others']
  (workdir / 'results.json').write_text(json.dumps(
      {'dataset': {'name': 'casme2', 'class_names': names}, 'folds': [{'subject': 'sub01'}]}))
  model = build_model(config.model, config.data.num_classes, config.data.image_size)
  shapes = {'frames': jax.ShapeDtypeStruct((1, 8, 128, 128, 1), np.float32),
            'frame_mask': jax.ShapeDtypeStruct((1, 8), np.bool_)}
  state = train.jit_init(lambda key: train.create_train_state(model, config.train, shapes, key))(jax.random.key(0))
  checkpoints.save(checkpoints.fold_manager(str(workdir), 'sub01'), state)
  prediction = clip_prediction.predict_clip(str(workdir), astronaut_frames, str(tmp_path / 'out'))
  assert list(prediction['probabilities']) == names
  assert sum(prediction['probabilities'].values()) == pytest.approx(1.0, abs=1e-6)
  assert prediction['model']['name'] == 'mol' and 'flow_landmarks' in prediction['images']
  sheet = _png(str(tmp_path / 'out' / 'flow_landmarks.png'))
  assert sheet.shape[:2] == (256, 7 * 128)    # 7 frame pairs: the frame with landmarks over the flow


def test_views_are_averaged_and_the_prediction_is_their_argmax(monkeypatch):
  """predict_group with eval.num_views=2 averages the per-view probabilities (and MOL errors) per clip and
  predicts their argmax, even where each single view predicts another class; idle slots stay None."""
  import ml_collections
  from fdp_jax.cv import evaluation
  per_position = {
      0.25: {'index': np.array([0, 1]), 'label': np.array([2, 0]), 'prediction': np.array([0, 1]),
             'probabilities': np.array([[0.5, 0.1, 0.4], [0.2, 0.7, 0.1]], np.float32),
             'flow_epe': np.array([1.0, 3.0], np.float32)},
      0.75: {'index': np.array([0, 1]), 'label': np.array([2, 0]), 'prediction': np.array([1, 1]),
             'probabilities': np.array([[0.1, 0.5, 0.4], [0.6, 0.3, 0.1]], np.float32),
             'flow_epe': np.array([2.0, 5.0], np.float32)},
  }
  seen = []

  def fake_view(config, group, source, fsteps, state, normalizations, position):
    seen.append(position)
    return [per_position[position], None]
  monkeypatch.setattr(evaluation, '_predict_view', fake_view)
  config = ml_collections.ConfigDict({'eval': {'num_views': 2}})
  out, idle = evaluation.predict_group(config, ['fold', None], None, None, None)
  assert seen == [0.25, 0.75] and idle is None
  np.testing.assert_allclose(out['probabilities'], [[0.3, 0.3, 0.4], [0.4, 0.5, 0.1]], atol=1e-7)
  assert out['prediction'].tolist() == [2, 1]                 # neither view alone predicted class 2 for clip 0
  np.testing.assert_allclose(out['flow_epe'], [1.5, 4.0])
  assert out['label'].tolist() == [2, 0] and out['index'].tolist() == [0, 1]
