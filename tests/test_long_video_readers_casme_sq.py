"""The CAS(ME)² long-video reader `casme_sq_long` on a fixture corpus in the distributed layout: every video
with its intervals (micro and macro), subjects, repairs, skips, unlabelled videos, the cropped tree, the
missing-corpus errors, the sheet layouts the clip reader shares, and an end-to-end build."""

import os
import re

import numpy as np
import pytest

from fdp_jax.corpora import casme_sq
from fdp_jax.corpora import casme_sq_long
from fdp_jax.corpora import layout
from tests import corpus_fixtures
from tests.long_video_fixtures_casme_sq import WORKBOOK
from tests.long_video_fixtures_casme_sq import make_casme_sq_long


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('casme_sq_long'))
  expected = make_casme_sq_long(root)
  specs, report = casme_sq_long.find_videos(root)
  return root, expected, specs, report


def intervals_of(spec):
  return [(i.onset, i.apex, i.offset, i.type) for i in spec.intervals]


def test_every_video_with_every_interval(corpus):
  root, expected, specs, _ = corpus
  assert [s.video_id for s in specs] == sorted(expected['videos'])
  for spec in specs:
    want = expected['videos'][spec.video_id]
    assert intervals_of(spec) == want['intervals'], spec.video_id
    assert [i.emotion for i in spec.intervals] == want['emotions'], spec.video_id
    assert spec.subject == want['subject'] and spec.corpus == 'casme_sq_long' and spec.fps == 30.0
    assert len(spec.frame_paths) == len(spec.frame_numbers) == want['num_frames']
    # Frames in numeric order, numbered as their files are (img1…, and img001… in the misfiled video).
    assert list(spec.frame_numbers) == list(range(1, want['num_frames'] + 1)), spec.video_id
    assert all(os.path.isfile(p) for p in spec.frame_paths)
    assert [int(os.path.basename(p)[3:-4]) for p in spec.frame_paths] == list(spec.frame_numbers)


def test_a_video_in_another_subjects_folder_is_filed_by_its_name(corpus):
  root, _, specs, report = corpus
  spec = {s.video_id: s for s in specs}['s23/23_0502funnyerrors']
  assert spec.subject == 's23'
  assert os.path.dirname(spec.frame_paths[0]) == os.path.join(root, 'rawpic', 's19', '23_0502funnyerrors')
  what = dict(report.repairs)['s23/23_0502funnyerrors']
  assert 'another subject' in what and 's19' in what


def test_repairs_skips_and_unlabelled(corpus):
  _, expected, _, report = corpus
  repairs = {}
  for name, what in report.repairs:
    repairs.setdefault(name, []).append(what)
  assert set(repairs) == expected['repaired']
  assert repairs['s15/15_0101disgustingteeth@44'] == ['R1 offset unknown (0): apex mirrored, 50']
  assert repairs['s23/23_0502funnyerrors@10'] == ['R1 offset unknown (0): apex mirrored, 18']
  assert repairs['s23/23_0502funnyerrors@45'] == ['R2 offset 70 after the last frame: 50']
  skipped = dict(report.skipped)
  assert len(report.skipped) == len(skipped) == len(expected['skipped'])
  for name, reason in expected['skipped'].items():
    assert reason in skipped[name], (name, skipped.get(name))
    assert skipped[name].startswith(f'{WORKBOOK} row '), name  # the row, so the user can find it
  # The repeated row (sheet row 4) names the row kept (row 1).
  assert skipped['s15/15_0101disgustingteeth@5'].startswith(f'{WORKBOOK} row 4: {WORKBOOK} row 1 names')
  assert report.unlabelled == sorted(expected['unlabelled'])
  assert not report.dropped_by_class_set


def test_cropped_frames_read_the_cropped_tree(tmp_path):
  root = str(tmp_path)
  expected = make_casme_sq_long(root)
  # cropped/ holds only s15's video (real copies lack a few videos there); the reader lists, never decodes.
  folder = tmp_path / 'cropped' / 's15' / '15_0101disgustingteeth'
  folder.mkdir(parents=True)
  for k in range(1, 61):
    (folder / f'img{k}.jpg').write_bytes(b'')
  specs, report = casme_sq_long.find_videos(root, 'cropped')
  assert [s.video_id for s in specs] == ['s15/15_0101disgustingteeth']
  assert intervals_of(specs[0]) == expected['videos']['s15/15_0101disgustingteeth']['intervals']
  assert all(os.sep + 'cropped' + os.sep in p for p in specs[0].frame_paths)
  skipped = dict(report.skipped)
  for name in ('s23/happy1_1@10', 's23/happy1_2@30', 's23/happy1_3@45'):  # no 23_0502 folder in cropped/
    assert 'no video folder 23_0502*' in skipped[name], name
  assert report.unlabelled == [] and {n for n, _ in report.repairs} == {'s15/15_0101disgustingteeth@44'}
  with pytest.raises(ValueError, match='frames must be one of'):
    casme_sq_long.find_videos(root, 'aligned')


def test_second_folder_of_a_video_and_an_empty_folder(tmp_path):
  root = str(tmp_path)
  make_casme_sq_long(root)
  # Subject 23's video also in its own folder (it wins), and an empty folder for the row of video 16_0503.
  in_place = os.path.join(root, 'rawpic', 's23', '23_0502funnyerrors')
  corpus_fixtures.write_frames(in_place, [f'img{k}.jpg' for k in range(1, 51)], corpus_fixtures.face_frames(50, 7))
  os.makedirs(os.path.join(root, 'rawpic', 's16', '16_0503funnyfarting'))
  specs, report = casme_sq_long.find_videos(root)
  spec = {s.video_id: s for s in specs}['s23/23_0502funnyerrors']
  assert os.path.dirname(spec.frame_paths[0]) == in_place
  assert len(spec.intervals) == 3
  skipped = dict(report.skipped)
  assert 'second folder of video 23_0502' in skipped[os.path.join('s19', '23_0502funnyerrors')]
  assert 'holds no frames' in skipped['s16/16_0503funnyfarting@3']
  assert 's23/23_0502funnyerrors' not in dict(report.repairs)  # the misfiled copy is not read
  assert len(report.skipped) == 6


def test_missing_corpus_says_what_to_do(tmp_path):
  with pytest.raises(layout.CorpusLayoutError, match=r'(?s)rawpic.*casme\.psych\.ac\.cn'):
    casme_sq_long.find_videos(str(tmp_path))
  corpus_fixtures.write_frames(str(tmp_path / 'rawpic' / 's15' / '15_0101disgustingteeth'), ['img1.jpg'],
                               corpus_fixtures.faceless_frames(1, 0))
  with pytest.raises(layout.CorpusLayoutError, match=r'(?s)code workbook.*code_final\(Updated\)'):
    casme_sq_long.find_videos(str(tmp_path))
  # The blink-code workbook the corpus ships is not the code workbook.
  corpus_fixtures.write_workbook(str(tmp_path / 'CAS(ME)^2blink-code.xlsx'), [('Sheet1', [[1, '0101', 1, 3, 6]])])
  with pytest.raises(layout.CorpusLayoutError, match='code workbook'):
    casme_sq_long.find_videos(str(tmp_path))
  corpus_fixtures.write_workbook(str(tmp_path / 'CAS(ME)^2code_final.xlsx'), [('Sheet1', [[1, 'disgust1_1']])])
  with pytest.raises(layout.CorpusLayoutError, match='expected 3 sheets'):
    casme_sq_long.find_videos(str(tmp_path))
  with pytest.raises(layout.CorpusLayoutError, match=r'(?s)cropped frames.*casme\.psych\.ac\.cn'):
    casme_sq_long.find_videos(str(tmp_path), 'cropped')


def test_workbook_names_and_sheet_layouts():
  for name in ('CAS(ME)^2code_final(Updated).xlsx', 'CAS(ME)^2code_final.xlsx', 'cas(me)2_code_final.xlsx',
               'code_final.xlsx'):
    assert re.fullmatch(casme_sq.ANNOTATION, name, re.IGNORECASE), name
  for name in ('CAS(ME)^2blink-code.xlsx', '~$CAS(ME)^2code_final.xlsx', 'CAS(ME)^2code_final.csv'):
    assert not re.fullmatch(casme_sq.ANNOTATION, name, re.IGNORECASE), name
  # The distributed sheets 2 and 3, and the two-column spellings (the clip reader's fixture) alike.
  assert casme_sq._subject_folders([(15, 's15', 1), (40, 's40', 22.0), ('s16', 2)]) == {1: 15, 22: 40, 16: 2}
  assert casme_sq._subject_folders([('subject', 'folder'), (1, 15), (2, 16)]) == {1: 15, 2: 16}
  assert casme_sq._video_codes([('0101', 'disgust1'), (502, 'Happy1'), ('code', 'name')]) == {
      'disgust1': '0101', 'happy1': '0502'}
  assert casme_sq._video_codes([('anger1', '0401'), ('happy1', 502)]) == {'anger1': '0401', 'happy1': '0502'}


def test_the_clip_reader_reads_the_distributed_layout(tmp_path):
  # casme_sq shares the sheet helpers and the workbook name: on this workbook it finds s15's
  # micro-expressions (it looks for a video in its own subject's folder only, so not s19/23_0502…).
  root = str(tmp_path)
  make_casme_sq_long(root)
  specs, report = casme_sq.find_samples(root, 'raw', 'micro')
  got = {s.sample_id: (s.emotion, s.onset, s.apex, s.offset, s.frame_numbers[0]) for s in specs
         if s.subject == 's15'}
  assert got == {'s15/disgust1_1': ('negative', 0, 3, 7, 5), 's15/disgust1_3': ('others', 0, 3, 6, 44),
                 's15/disgust1_4': ('negative', 0, 4, 7, 5), 's15/disgust1_6': ('negative', 0, 3, 6, 30)}
  skipped = dict(report.skipped)
  assert 'no video folder' in skipped['s16/happy2_1']
  assert 'not in the subject → folder sheet' in skipped['subject9/anger1_1']


def test_build_writes_every_video_with_its_intervals(tmp_path):
  from tests.test_corpora import build
  root = str(tmp_path / 'manual')
  expected = make_casme_sq_long(root)
  builder = build('casme_sq_long', 'raw_64', root, str(tmp_path / 'out'), workers=1)
  assert [c.name for c in builder.BUILDER_CONFIGS] == ['raw_64', 'cropped_64']
  source = builder.as_data_source()['train']
  records = {source[i]['video_id'].decode(): source[i] for i in range(len(source))}
  assert set(records) == set(expected['videos'])
  types = builder.info.features['intervals']['type'].names
  for video_id, want in expected['videos'].items():
    r = records[video_id]
    n = want['num_frames']
    assert r['subject'].decode() == want['subject'] and r['corpus'].decode() == 'casme_sq_long'
    assert float(r['fps']) == 30.0
    assert r['frames'].shape == (n, 64, 64, 1) and r['frames'].dtype == np.uint8
    assert r['face_present'].shape == (n,) and r['face_present'].mean() > 0.9, video_id
    assert r['frame_numbers'].tolist() == list(range(1, n + 1))
    iv = r['intervals']
    got = [(int(a), int(b), int(c), types[int(t)])
           for a, b, c, t in zip(iv['onset'], iv['apex'], iv['offset'], iv['type'])]
    assert got == want['intervals'], video_id
    assert [e.decode() for e in iv['emotion']] == want['emotions'], video_id
  meta = builder.info.metadata
  assert {name for name, _ in meta['repairs']} == expected['repaired']
  assert dict((name, why) for name, why in meta['skipped']).keys() == expected['skipped'].keys()
  assert set(meta['unlabelled']) == expected['unlabelled']
