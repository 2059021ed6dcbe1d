"""The CAS(ME)³ Part A long-video reader (`fdp_jax.corpora.casme3_long`) on a fixture corpus with the
release's quirks: exact intervals (indices, types, emotions), subjects, repairs, skips, unlabelled videos,
the macro workbook's variants and absence, the missing-corpus errors, and one end-to-end build."""

from __future__ import annotations

import os

import numpy as np
import pytest

from fdp_jax.corpora import casme3_long
from fdp_jax.corpora import layout
from tests import corpus_fixtures
from tests import long_video_fixtures_casme3 as fixtures


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('casme3_long'))
  expected = fixtures.make_casme3_long(root)
  specs, report = casme3_long.find_videos(root)
  return root, expected, {s.video_id: s for s in specs}, report


def intervals_of(spec):
  return [(i.onset, i.apex, i.offset, i.type) for i in spec.intervals]


def test_one_spec_per_whole_video_with_subject_frames_and_fps(corpus):
  root, expected, specs, _ = corpus
  assert set(specs) == set(expected['videos'])
  for video_id, want in expected['videos'].items():
    spec = specs[video_id]
    assert spec.subject == want['subject'], video_id
    assert spec.corpus == 'casme3_long' and spec.fps == 30.0
    assert len(spec.frame_paths) == len(spec.frame_numbers) == want['num_frames'], video_id
    first = want['first_frame']
    assert list(spec.frame_numbers) == list(range(first, first + want['num_frames'])), video_id
    # The colour frames, in numeric order (10.jpg after 9.jpg), never the depth maps.
    assert all(os.sep + 'color' + os.sep in p for p in spec.frame_paths)
    assert [int(os.path.basename(p).split('.')[0]) for p in spec.frame_paths] == list(spec.frame_numbers)


def test_intervals_types_and_emotions_exact(corpus):
  _, expected, specs, _ = corpus
  for video_id, want in expected['videos'].items():
    spec = specs[video_id]
    assert intervals_of(spec) == want['intervals'], video_id
    assert [i.emotion for i in spec.intervals] == want['emotions'], video_id


def test_upper_case_letter_and_spno_spelling_read_as_one_video(corpus):
  _, _, specs, _ = corpus
  # The folder is spNo.2/J; the rows say 'J', 'j', 'spNo.2' and 'spNO.2': all one video, spelled spNO.2/j.
  assert 'spNO.2/j' in specs and not any(v.endswith('/J') or v.startswith('spNo') for v in specs)
  assert specs['spNO.2/j'].frame_paths[0].endswith(os.path.join('spNo.2', 'J', 'color', '1.jpg'))
  assert {i.type for i in specs['spNO.2/j'].intervals} == {'micro', 'macro'}


def test_repairs_skips_and_unlabelled(corpus):
  _, expected, _, report = corpus
  assert {name for name, _ in report.repairs} == expected['repaired']
  skipped = dict(report.skipped)
  assert set(skipped) == set(expected['skipped']), report.skipped
  assert len(report.skipped) == len(expected['skipped'])
  for name, reason in expected['skipped'].items():
    assert reason in skipped[name], (name, skipped[name])
  assert set(report.unlabelled) == expected['unlabelled']
  repairs = dict(report.repairs)
  assert 'R3' in repairs['spNO.1/a@15'] and 'R2' in repairs['spNO.2/j@22'] and 'R1' in repairs['spNO.2/j@5']


def test_skip_messages_say_what_to_do(corpus):
  _, _, _, report = corpus
  skipped = dict(report.skipped)
  # A row whose video exists only as an ME-clip package: the package is named and said not to be a video.
  assert 'spNO.4_a_5' in skipped['spNO.4/a@5'] and 'delete the row' in skipped['spNO.4/a@5']
  assert skipped['spNO.4/a@5'].startswith(f'{fixtures.ME_WORKBOOK} row 9:')
  assert 'put the video' in skipped['spNO.1/b@2'] and 'not long videos' in skipped['spNO.1/b@2']


def test_missing_macro_workbook_is_reported_not_fatal(tmp_path):
  root = str(tmp_path)
  expected = fixtures.make_casme3_long(root)
  os.remove(os.path.join(root, 'part_A', 'annotation', fixtures.MACRO_WORKBOOK))
  specs, report = casme3_long.find_videos(root)
  skipped = dict(report.skipped)
  assert 'no macro-expression workbook' in skipped['macro-expressions']
  assert 'micro-expressions only' in skipped['macro-expressions']
  got = {s.video_id: intervals_of(s) for s in specs}
  for video_id, want in expected['videos'].items():
    assert got[video_id] == [i for i in want['intervals'] if i[3] == 'micro'], video_id
  assert 'spNO.1/a@22' not in skipped  # the macro duplicate is not read at all


def test_combined_annotation_saved_as_xlsx_gives_the_macro_rows(tmp_path):
  # The official CAS(ME)3_part_A_v2.xls (sheet AU+Emotion, an Expression type column, no emotion), saved as
  # .xlsx: its macro rows are read; its micro rows repeat the ME workbook and are ignored.
  root = str(tmp_path)
  fixtures.write_videos(root)
  fixtures.write_me_workbook(root)
  header = ['Subject', 'Filename', 'Onset', 'Apex', 'Offset', 'AU', 'Expression type', 'Objective class']
  rows = [['spNO.1', 'a', '22', '25', '28', '12', 'Macro-expression', 'VII'],
          ['spNO.1', 'a', '3', '6', '10', '4', 'Micro-expression', 'III'],
          ['spNO.1', 'a', '3', '5', '10', '4', 'Macro-expression', 'III'],  # a micro's window: not a duplicate
          ['spNO.3', 'c', '2', '9', '20', '6+12', 'Macro-expression', 'I'],
          ['spNO.3', 'c', '25', '26', '27', '1', 'blink', 'I']]
  annotation = os.path.join(root, 'part_A', 'annotation')
  corpus_fixtures.write_workbook(os.path.join(annotation, 'CAS(ME)3_part_A_v2.xlsx'),
                                 [('AU+Emotion', [header] + rows)])
  # The release ships v1 beside v2: the newest version is the one read.
  v1 = [['spNO.3', 'c', '1', '2', '3', '6', 'Macro-expression', 'I']]
  corpus_fixtures.write_workbook(os.path.join(annotation, 'CAS(ME)3_part_A_v1.xlsx'),
                                 [('AU+Emotion', [header] + v1)])
  specs, report = casme3_long.find_videos(root)
  by_id = {s.video_id: s for s in specs}
  assert intervals_of(by_id['spNO.1/a']) == [(3, 5, 10, 'macro'), (3, 6, 10, 'micro'), (15, 17, 20, 'micro'),
                                             (22, 25, 28, 'macro'), (30, 30, 34, 'micro')]
  assert [i.emotion for i in by_id['spNO.1/a'].intervals] == ['', 'disgust', 'others', '', 'happy']
  assert intervals_of(by_id['spNO.3/c']) == [(2, 9, 20, 'macro')]
  # The ME workbook's own skips and the blink row, nothing more: the micro rows were not read twice.
  assert len(report.skipped) == 5
  skipped = dict(report.skipped)
  assert set(skipped) == {'spNO.1/a@3', 'spNO.2/j@20', 'spNO.4/a@5', 'spNO.1/b@2', 'spNO.3/c@25'}
  assert skipped['spNO.1/a@3'].startswith(f'{fixtures.ME_WORKBOOK} row 5:')
  assert 'neither micro nor macro' in skipped['spNO.3/c@25']
  assert report.unlabelled == []


def test_legacy_xls_is_named_with_what_to_do(tmp_path):
  root = str(tmp_path)
  fixtures.write_videos(root)
  fixtures.write_me_workbook(root)
  with open(os.path.join(root, 'part_A', 'annotation', 'CAS(ME)3_part_A_v2.xls'), 'wb') as f:
    f.write(b'\xd0\xcf\x11\xe0')  # an OLE2 header: the legacy format openpyxl cannot read
  _, report = casme3_long.find_videos(root)
  why = dict(report.skipped)['macro-expressions']
  assert 'CAS(ME)3_part_A_v2.xls' in why and 'save it as .xlsx' in why


def test_unusable_and_doubled_video_folders(tmp_path):
  root = str(tmp_path)
  fixtures.write_videos(root)
  fixtures.write_me_workbook(root)
  data = os.path.join(root, 'part_A', 'data')
  # spNO.3/C beside spNO.3/c: one video letter twice. spNO.5/a/color holds no frames, and a row names it.
  corpus_fixtures.write_frames(os.path.join(data, 'spNO.3', 'C', 'color'), ['0.jpg'],
                               corpus_fixtures.faceless_frames(1, 2))
  os.makedirs(os.path.join(data, 'spNO.5', 'a', 'color'))
  me = os.path.join(root, 'part_A', 'annotation', fixtures.ME_WORKBOOK)
  row = ['spNO.5', 'a', 1, 2, 3, '1', 'V', 'fear']
  corpus_fixtures.write_workbook(me, [('label', [fixtures.ME_HEADER, row])])
  specs, report = casme3_long.find_videos(root)
  by_id = {s.video_id: s for s in specs}
  assert set(by_id) == {'spNO.1/a', 'spNO.2/j', 'spNO.3/c'}  # no spNO.5/a: it has no frames
  used, other = os.path.join(data, 'spNO.3', 'C', 'color'), os.path.join(data, 'spNO.3', 'c', 'color')
  assert by_id['spNO.3/c'].frame_paths == (os.path.join(used, '0.jpg'),)  # the first in sorted order
  skipped = dict(report.skipped)
  assert set(skipped) == {other, 'spNO.5/a', 'spNO.5/a@1', 'macro-expressions'}
  assert used in skipped[other] and 'the one used' in skipped[other]
  assert 'holds no numbered frames' in skipped['spNO.5/a']
  assert 'its video cannot be used' in skipped['spNO.5/a@1'] and 'no numbered frames' in skipped['spNO.5/a@1']
  assert set(report.unlabelled) == {'spNO.1/a', 'spNO.2/j', 'spNO.3/c'}


def test_missing_me_workbook_raises_with_instructions(tmp_path):
  root = str(tmp_path)
  fixtures.write_videos(root)
  fixtures.write_macro_workbook(root)
  with pytest.raises(layout.CorpusLayoutError) as e:
    casme3_long.find_videos(root)
  assert 'ME label workbook' in str(e.value) and 'http://casme.psych.ac.cn/casme/e4' in str(e.value)


def test_clip_packages_alone_are_not_long_videos(tmp_path):
  root = str(tmp_path)
  fixtures.write_me_workbook(root)
  corpus_fixtures.write_frames(os.path.join(root, 'Part_A_ME_clip', 'frame', 'spNO.1_a_3'),
                               [f'{n}.jpg' for n in range(3, 11)], corpus_fixtures.faceless_frames(8, 1))
  with pytest.raises(layout.CorpusLayoutError) as e:
    casme3_long.find_videos(root)
  assert 'no whole-video folders' in str(e.value) and 'not long videos' in str(e.value)
  assert 'casme.psych.ac.cn' in str(e.value)


def test_only_raw_frames(corpus):
  root = corpus[0]
  with pytest.raises(ValueError, match='raw'):
    casme3_long.find_videos(root, 'cropped')


def test_build_end_to_end(corpus, tmp_path):
  from tests.test_corpora import build
  root, expected, _, _ = corpus
  builder = build('casme3_long', 'raw_64', root, str(tmp_path / 'out'))
  source = builder.as_data_source()['train']
  records = {r['video_id'].decode(): r for r in (source[i] for i in range(len(source)))}
  assert set(records) == set(expected['videos'])
  types = builder.info.features['intervals']['type'].names
  for video_id, want in expected['videos'].items():
    r = records[video_id]
    n = want['num_frames']
    assert r['subject'].decode() == want['subject']
    assert r['frames'].shape == (n, 64, 64, 1) and r['frames'].dtype == np.uint8, video_id
    assert r['face_present'].shape == (n,) and r['face_present'].mean() > 0.9, video_id
    assert r['frame_numbers'].tolist() == list(range(want['first_frame'], want['first_frame'] + n))
    i = {k: np.asarray(v) for k, v in r['intervals'].items()}
    got = list(zip(i['onset'].tolist(), i['apex'].tolist(), i['offset'].tolist(),
                   [types[t] for t in i['type'].tolist()]))
    assert got == want['intervals'], video_id
    assert [e.decode() for e in i['emotion'].tolist()] == want['emotions'], video_id
  meta = builder.info.metadata
  assert {name for name, _ in meta['repairs']} >= expected['repaired']
  assert {name for name, _ in meta['skipped']} == set(expected['skipped'])
  assert set(meta['unlabelled']) == expected['unlabelled']
