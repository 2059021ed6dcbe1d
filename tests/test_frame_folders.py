"""The one frame listing the corpus readers and prediction share (`fdp_jax.preprocess.frame_folders`):
numeric order of the number ending a name, hidden and non-image files ignored, two frames numbered alike
refused — and what each caller makes of a refusal (a skipped sample, a PredictError). No model runs here."""

import re

import pytest

from fdp_jax import clip_prediction
from fdp_jax.corpora import phases
from fdp_jax.preprocess import frame_folders


def touch(folder, *names):
  for name in names:
    (folder / name).write_bytes(b'x')


def test_frames_sort_numerically_and_a_prefix_keeps_only_its_own(tmp_path):
  touch(tmp_path, 'img10.jpg', 'img9.PNG', 'img100.bmp', 'reg_img5.jpg', 'Thumbs.db', 'img3.jpg.txt', '._img4.jpg')
  (tmp_path / 'img7.jpg').mkdir()
  assert [n for n, _ in frame_folders.list_frames(str(tmp_path), 'img')] == [9, 10, 100]
  assert frame_folders.list_frames(str(tmp_path)) == [
      (5, str(tmp_path / 'reg_img5.jpg')), (9, str(tmp_path / 'img9.PNG')), (10, str(tmp_path / 'img10.jpg')),
      (100, str(tmp_path / 'img100.bmp'))]


def test_two_frames_numbered_alike_are_refused_in_each_callers_terms(tmp_path):
  touch(tmp_path, 'img9.jpg', 'img10.jpg', 'img010.jpg')
  names = r'(img10\.jpg, img010\.jpg|img010\.jpg, img10\.jpg)'
  message = rf'^two frame files numbered 10 in {re.escape(str(tmp_path))}: {names}; delete or rename one of them$'
  with pytest.raises(frame_folders.DuplicateFrameNumber, match=message) as refused:
    frame_folders.list_frames(str(tmp_path), 'img')
  assert isinstance(refused.value, ValueError)   # nothing corpus-specific for prediction to know about
  with pytest.raises(phases.SkipSample, match=message):        # a corpus reader skips the sample
    phases.clip_frames(str(tmp_path), 'img')
  with pytest.raises(clip_prediction.PredictError, match=message):     # prediction refuses the folder
    clip_prediction.input_frames(str(tmp_path), str(tmp_path / 'out'))


def test_predict_reads_a_folder_of_frames_as_the_builders_do(tmp_path):
  # A macOS copy's `._img3.jpg` resource fork is not a frame 3 (predict used to read it as one).
  touch(tmp_path, 'img2.jpg', 'img10.jpg', 'img1.jpg', '._img3.jpg', '.DS_Store', 'notes.txt')
  assert clip_prediction.input_frames(str(tmp_path), str(tmp_path / 'out')) == [
      str(tmp_path / f'img{i}.jpg') for i in (1, 2, 10)]


def test_predict_refuses_a_folder_without_numbered_frames(tmp_path):
  touch(tmp_path, 'face.jpg', '._img1.jpg', 'notes.txt')
  with pytest.raises(clip_prediction.PredictError,
                     match=r'holds no numbered frames: image files \(\.jpg, .*e\.g\. img12'):
    clip_prediction.input_frames(str(tmp_path), str(tmp_path / 'out'))
