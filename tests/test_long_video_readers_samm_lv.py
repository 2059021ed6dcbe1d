"""The SAMM-LV reader on a fixture corpus with the release's layout and quirks: exact intervals (indices),
types, subjects, numeric frame order, every repair and skip by name, unlabelled videos, the workbook
release chosen, the missing-corpus message; and one end-to-end build through the TFDS builder."""

import math
import os

import numpy as np
import pytest

from fdp_jax.corpora import layout
from fdp_jax.corpora import samm_lv
from tests import corpus_fixtures
from tests.long_video_fixtures_samm_lv import HEADER
from tests.long_video_fixtures_samm_lv import make_samm_lv


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('samm_lv'))
  expected = make_samm_lv(root)
  specs, report = samm_lv.find_videos(root)
  return root, expected, {s.video_id: s for s in specs}, report


def test_every_video_folder_is_one_spec_with_its_intervals(corpus):
  _, expected, specs, _ = corpus
  assert list(specs) == sorted(expected['videos'])
  for video_id, want in expected['videos'].items():
    spec = specs[video_id]
    assert (spec.subject, spec.corpus, spec.fps) == (want['subject'], 'samm_lv', 200.0), video_id
    assert len(spec.frame_paths) == len(spec.frame_numbers) == want['num_frames'], video_id
    got = [(i.onset, i.apex, i.offset, i.type) for i in spec.intervals]
    assert got == want['intervals'], video_id
    assert all(i.emotion == '' for i in spec.intervals)  # SAMM-LV codes no emotion
    for path, number in zip(spec.frame_paths, spec.frame_numbers):
      assert os.path.dirname(path).endswith(os.path.join('SAMM_longvideos', video_id))
      assert int(os.path.splitext(path)[0].rsplit('_', 1)[1]) == number


def test_frames_are_in_numeric_order_across_the_padding_change(corpus):
  _, _, specs, _ = corpus
  numbers = specs['007_3'].frame_numbers
  assert numbers == tuple(range(9990, 10020))  # 9999 then 10000, not 10000 first
  assert os.path.basename(specs['007_3'].frame_paths[10]) == '007_3_10000.jpg'
  assert specs['011_2'].frame_numbers == tuple(range(1, 31))  # 5-digit padding reads the same


def test_repairs_skips_and_unlabelled_are_reported_by_name(corpus):
  _, expected, _, report = corpus
  assert {name for name, _ in report.repairs} == expected['repaired']
  repairs = dict(report.repairs)
  assert 'R1' in repairs['006_1@20'] and 'apex mirrored, 40' in repairs['006_1@20']
  assert 'R3' in repairs['007_3@9995'] and 'midpoint 9998' in repairs['007_3@9995']
  assert 'R2 offset 10060' in repairs['007_3@10010'] and '10019' in repairs['007_3@10010']
  skipped = dict(report.skipped)
  assert set(skipped) == set(expected['skipped']) and len(report.skipped) == len(expected['skipped'])
  for name, reason in expected['skipped'].items():
    assert reason in skipped[name], (name, skipped[name])
  # Each skip names its workbook row and what to do.
  assert 'SAMM_LongVideos_V1_Release.xlsx row 14' in skipped['006_1@5']
  assert os.path.join('SAMM_longvideos', '009_2') in skipped['009_2@10']
  assert 'delete the row' in skipped['009_2@10']
  assert set(report.unlabelled) == expected['unlabelled']


def test_missing_corpus_says_what_to_put_where(tmp_path):
  with pytest.raises(layout.CorpusLayoutError) as e:
    samm_lv.find_videos(str(tmp_path))
  message = str(e.value)
  assert str(tmp_path) in message and 'SAMM_LongVideos' in message
  assert 'SAMM_longvideos/006_1/006_1_0001.jpg' in message and 'm.yap/dataset.php' in message
  corpus_fixtures.write_workbook(str(tmp_path / 'SAMM_LongVideos_V2_Release.xlsx'), [('FACS_Movement_Only',
                                                                                     [HEADER])])
  with pytest.raises(layout.CorpusLayoutError, match='SAMM-LV frame folders not found') as e:
    samm_lv.find_videos(str(tmp_path))
  assert 'SAMM_longvideos/006_1/006_1_0001.jpg' in str(e.value)


def test_only_raw_frames(corpus):
  with pytest.raises(ValueError, match="only 'raw'"):
    samm_lv.find_videos(corpus[0], 'cropped')


def _small_corpus(root, workbooks_rows):
  """Frames only need to exist for the reader (no face detection): 10 faceless frames per video."""
  for video in ('6_1', '012_4', '013_2'):
    names = [f'{video}_{n:04d}.jpg' for n in range(1, 11)]
    corpus_fixtures.write_frames(os.path.join(root, 'SAMM_longvideos', video), names,
                                 corpus_fixtures.faceless_frames(10, 0))
  os.makedirs(os.path.join(root, 'SAMM_longvideos', '014_1'))  # a folder without frames
  for name, header, rows in workbooks_rows:
    corpus_fixtures.write_workbook(os.path.join(root, name),
                                   [('FACS_Movement_Only', [['title']] * 9 + [header] + rows)])


def test_newest_release_an_emotion_column_and_odd_rows(tmp_path):
  root = str(tmp_path)
  header = HEADER[:8] + ['Estimated Emotion']
  _small_corpus(root, [
      ('SAMM_LongVideos_V1_Release.xlsx', HEADER, [[6, '006_1_1', 1, 2, 3, 4, 2, 'Micro - 1/2', 'R12', None]]),
      ('SAMM_LongVideos_V2_Release.xlsx', header, [
          [6, '006_1_1', 1, 5, 6, 7, 2, 'Micro - 1/2', 'Happiness'],  # folder spelled 6_1
          [12, '012_4_1', 4, 1, 2, 3, 2, 'Other', 'Anger'],           # neither micro nor macro
          [12, '012_4_2', 4, 6, 8, 0, 0, 'Macro', None],              # offset unknown, mirrored apex 10
          [14, '014_1_1', 1, 1, 2, 3, 2, 'Macro', None],              # folder without frames
          [None, 'notes', None, 4, 5, 6, None, 'Macro', None],        # names no video
      ])])
  specs, report = samm_lv.find_videos(root)
  got = {s.video_id: [(i.onset, i.apex, i.offset, i.type, i.emotion) for i in s.intervals] for s in specs}
  assert got == {'006_1': [(4, 5, 6, 'micro', 'happiness')], '012_4': [(5, 7, 9, 'macro', '')],
                 '013_2': []}
  assert {s.video_id: s.subject for s in specs} == {'006_1': '006', '012_4': '012', '013_2': '013'}
  skipped = dict(report.skipped)
  assert set(skipped) == {'012_4@1', '014_1@1', '?@4'}
  assert 'neither micro nor macro' in skipped['012_4@1']
  assert 'holds no frames' in skipped['014_1@1']
  assert 'name a video' in skipped['?@4']
  assert report.unlabelled == ['013_2']


def test_build_writes_every_video_with_its_intervals(tmp_path):
  from tests.test_corpora import build
  root = str(tmp_path / 'manual')
  expected = make_samm_lv(root)
  builder = build('samm_lv', 'raw_64', root, str(tmp_path / 'out'))
  source = builder.as_data_source()['train']
  records = {source[i]['video_id'].decode(): source[i] for i in range(len(source))}
  assert set(records) == set(expected['videos'])
  types = builder.info.features['intervals']['type'].names
  for video_id, want in expected['videos'].items():
    r = records[video_id]
    n = want['num_frames']
    assert r['subject'].decode() == want['subject'] and r['corpus'].decode() == 'samm_lv'
    assert r['frames'].shape == (n, 64, 64, 1) and r['frames'].dtype == np.uint8
    assert r['face_present'].shape == (n,) and r['face_present'].mean() > 0.9, video_id
    assert np.all(np.diff(r['frame_numbers']) > 0)
    iv = r['intervals']
    got = [(int(a), int(b), int(c), types[int(t)])
           for a, b, c, t in zip(iv['onset'], iv['apex'], iv['offset'], iv['type'])]
    assert got == want['intervals'], video_id
  meta = builder.info.metadata
  assert {name for name, _ in meta['repairs']} == expected['repaired']
  assert {name for name, _ in meta['skipped']} == set(expected['skipped'])
  assert set(meta['unlabelled']) == expected['unlabelled']
  # The default config keeps every 7th frame: 200 fps → 28.6 fps, as SoftNet spots.
  default = build('samm_lv', None, root, str(tmp_path / 'step7'))
  assert default.builder_config.name == 'raw_64_step7'
  source = default.as_data_source()['train']
  r = {source[i]['video_id'].decode(): source[i] for i in range(len(source))}['006_1']
  assert r['frames'].shape[0] == math.ceil(40 / 7) and r['frame_numbers'].tolist() == list(range(1, 41, 7))
  assert float(r['fps']) == pytest.approx(200 / 7)
