"""Hostile input to the corpus builders, one test each: a truncated JPEG, garbage bytes, an empty frame file,
non-image files among the frames, rows naming missing folders, duplicated rows, cells of the wrong type and
impossible frame numbers. Each test builds a variant of one small CASME II fixture corpus with the real
builder and checks both (a) the message — it names the file, the workbook row or the sample, and says what
to do — and (b) that everything else was built, with the right labels, phases and frames."""

import dataclasses
import datetime
import os
import shutil

import pytest

from fdp_jax.corpora import builder as corpus_builder
from fdp_jax.corpora import phases
from fdp_jax.corpora import class_sets
from fdp_jax.preprocess import clips
from tests import corpus_fixtures
from tests.test_corpora import build, read_all

CLASSES = class_sets.get('casme2', '5class').classes
WORKBOOK = 'CASME2-coding-20140508.xlsx'
FRAMES = 'CASME2_RAW_selected'
HEADER = ['Subject', 'Filename', None, 'OnsetFrame', 'ApexFrame', 'OffsetFrame', None, 'Action Units',
          'Estimated Emotion']
CLIPS = {  # sample id → (frame numbers, emotion); four frames each, faces dlib finds
    'sub01/EP01_01': (range(1, 5), 'happiness'),
    'sub01/EP02_01': (range(10, 14), 'surprise'),
    'sub02/EP03_01': (range(20, 24), 'disgust'),
    'sub02/EP04_01': (range(98, 102), 'repression'),   # 99 → 100: numeric order
    'sub03/EP05_01': (range(5, 9), 'others'),
    'sub03/EP06_01': (range(30, 34), 'happiness'),
    'sub03/EP07_01': (range(40, 44), 'surprise'),
}


@pytest.fixture(scope='module')
def frames_tree(tmp_path_factory):
  """The frame folders of CLIPS, written once; each test copies them and adds its own workbook."""
  root = tmp_path_factory.mktemp('casme2_frames')
  for i, (sid, (numbers, _)) in enumerate(CLIPS.items()):
    corpus_fixtures.write_frames(str(root / FRAMES / sid), [f'img{n}.jpg' for n in numbers],
                                 corpus_fixtures.face_frames(len(numbers), 60 + i))
  return root


def row(sid, onset=None, apex=None, offset=None, emotion=None, subject=None):
  """A coding row for `sid`; phases default to (first, first + 1, last frame) and the emotion to CLIPS'."""
  numbers, coded = CLIPS.get(sid, (range(1, 5), 'others'))
  clip_subject, filename = sid.split('/')
  return [int(clip_subject[3:]) if subject is None else subject, filename, None,
          numbers[0] if onset is None else onset, numbers[1] if apex is None else apex,
          numbers[-1] if offset is None else offset, None, '1', coded if emotion is None else emotion]


def corpus(frames_tree, tmp_path, rows=None):
  """A manual folder: a copy of the frames and a workbook of `rows` (default: one good row per clip).
  Data rows are sheet rows 2, 3, … under the header."""
  root = tmp_path / 'manual'
  shutil.copytree(frames_tree, root)
  rows = [row(sid) for sid in CLIPS] if rows is None else rows
  corpus_fixtures.write_workbook(str(root / WORKBOOK), [('Sheet1', [HEADER] + rows)])
  return root


def prepare(root, tmp_path):
  return build('casme2', '5class_raw_64', str(root), str(tmp_path / 'out'))


def frame(root, sid, number):
  return str(root / FRAMES / sid / f'img{number}.jpg')


def sheet_row(number):
  return f'{WORKBOOK} row {number}'


def check_rest(builder, expected):
  """(b): exactly the `expected` samples were built — {sample id: (emotion, (onset, apex, offset),
  frame numbers)} — with those labels, phases and frames."""
  records = read_all(builder)
  assert set(records) == set(expected)
  for sid, (emotion, phase_indices, numbers) in expected.items():
    r = records[sid]
    assert CLASSES[int(r['label'])] == emotion, sid
    assert (int(r['onset']), int(r['apex']), int(r['offset'])) == phase_indices, sid
    assert r['frame_numbers'].tolist() == list(numbers), sid
    assert r['frames'].shape == (len(numbers), 64, 64, 1), sid


def intact(*sample_ids):
  """What check_rest expects of clips left as CLIPS made them (phases first, first + 1, last)."""
  return {sid: (CLIPS[sid][1], (0, 1, len(CLIPS[sid][0]) - 1), CLIPS[sid][0]) for sid in sample_ids}


def skipped(builder):
  """(a): {name: message} from the build report, each also listed in the dataset's description."""
  report = dict(builder.info.metadata['skipped'])
  assert builder.info.metadata['num_skipped'] == len(builder.info.metadata['skipped'])
  for name, why in report.items():
    assert f'Skipped: {name}: {why}' in builder.info.description
  return report


def test_truncated_jpeg_skips_its_clip_by_name(frames_tree, tmp_path):
  root = corpus(frames_tree, tmp_path)
  path = frame(root, 'sub01/EP02_01', 12)
  with open(path, 'rb') as f:
    data = f.read()
  with open(path, 'wb') as f:   # OpenCV alone decodes this with a warning, the lower half grey
    f.write(data[:len(data) // 2])
  builder = prepare(root, tmp_path)
  assert skipped(builder) == {'sub01/EP02_01': (
      f'unreadable frame {path}: the JPEG is cut short (no end-of-image marker after its image data); '
      'restore the file from your copy of the corpus, or delete it to use the clip without that frame')}
  check_rest(builder, intact(*(sid for sid in CLIPS if sid != 'sub01/EP02_01')))
  # How to rebuild is said once, under the list.
  assert (f'To recover a skipped sample or change a repair (rules R1–R4 in fdp_jax/corpora/phases.py), do '
          f'what its line says, delete {tmp_path / "out" / "casme2" / "5class_raw_64"} and build again.'
          ) in builder.info.description


def test_corrupt_image_skips_its_clip_by_name(frames_tree, tmp_path):
  root = corpus(frames_tree, tmp_path)
  path = frame(root, 'sub02/EP03_01', 22)
  with open(path, 'wb') as f:
    f.write(bytes(range(256)) * 20)
  builder = prepare(root, tmp_path)
  assert skipped(builder) == {'sub02/EP03_01': (
      f'unreadable frame {path}: not an image OpenCV can decode; {clips.FIX_FRAME}')}
  check_rest(builder, intact(*(sid for sid in CLIPS if sid != 'sub02/EP03_01')))


def test_zero_byte_frame_skips_its_clip_by_name(frames_tree, tmp_path):
  root = corpus(frames_tree, tmp_path)
  path = frame(root, 'sub03/EP05_01', 5)
  open(path, 'wb').close()
  builder = prepare(root, tmp_path)
  assert skipped(builder) == {'sub03/EP05_01': (
      f'unreadable frame {path}: the file is empty (0 bytes); {clips.FIX_FRAME}')}
  check_rest(builder, intact(*(sid for sid in CLIPS if sid != 'sub03/EP05_01')))


def test_non_image_files_among_the_frames_are_ignored(frames_tree, tmp_path):
  root = corpus(frames_tree, tmp_path)
  folder = root / FRAMES / 'sub02' / 'EP04_01'
  for name in ('Thumbs.db', '.DS_Store', 'notes.txt', 'readme.jpg.txt', 'img99.jpg.bak'):
    (folder / name).write_bytes(b'not a frame')
  (folder / '._img99.jpg').write_bytes(b'\x00\x05\x16\x07 macOS resource fork')   # would be a 2nd frame 99
  (folder / 'old').mkdir()
  shutil.copy(folder / 'img100.jpg', folder / 'old' / 'img97.jpg')
  # The same rules for every corpus, with or without a frame-name prefix.
  assert [n for n, _ in phases.clip_frames(str(folder))] == [98, 99, 100, 101]
  builder = prepare(root, tmp_path)
  assert skipped(builder) == {}
  assert builder.info.metadata['repairs'] == []
  check_rest(builder, intact(*CLIPS))   # sub02/EP04_01 with its 4 frames, 98..101


def test_rows_naming_missing_folders_are_skipped_by_name(frames_tree, tmp_path):
  rows = [row(sid) for sid in CLIPS] + [row('sub03/EP09_09'),   # the subject folder exists, the clip's not
                                        row('sub07/EP01_01')]   # no subject folder at all
  root = corpus(frames_tree, tmp_path, rows)
  builder = prepare(root, tmp_path)
  assert skipped(builder) == {
      'sub03/EP09_09': f"{sheet_row(9)}: no frame folder {root / FRAMES / 'sub03' / 'EP09_09'}; put the "
                       "clip's frames there or delete the row",
      'sub07/EP01_01': f"{sheet_row(10)}: no frame folder {root / FRAMES / 'sub07' / 'EP01_01'}; put the "
                       "clip's frames there or delete the row"}
  check_rest(builder, intact(*CLIPS))
  assert builder.info.metadata['unlabelled'] == []


def test_duplicated_rows_keep_the_first(frames_tree, tmp_path):
  rows = [row(sid) for sid in CLIPS]
  rows.insert(3, row('sub01/EP01_01', 2, 3, 4, emotion='disgust'))    # sheet row 5, after row 2's
  rows.append(row('sub01/ep01_01', emotion='others'))                  # same folder, spelled differently
  root = corpus(frames_tree, tmp_path, rows)
  builder = prepare(root, tmp_path)
  folder = root / FRAMES / 'sub01' / 'EP01_01'
  assert skipped(builder) == {
      'sub01/EP01_01': f'{sheet_row(5)}: {sheet_row(2)} names the same frame folder {folder} and is the one '
                       'used; delete whichever of the two rows is wrong',
      'sub01/ep01_01': f'{sheet_row(10)}: {sheet_row(2)} names the same frame folder {folder} and is the one '
                       'used; delete whichever of the two rows is wrong'}
  check_rest(builder, intact(*CLIPS))   # sub01/EP01_01 is 'happiness', onset 1, as row 2 says
  # The builder's own guard for readers that let a duplicated id through: the first is kept.
  report = phases.BuildReport()
  spec = clips.ClipSpec('sub01/EP01_01', 'sub01', 'EP01_01', 'happiness', ('a.jpg',), (1,), 0, 0, 0)
  twice = [spec, dataclasses.replace(spec, emotion='disgust')]
  labelled = corpus_builder.label_samples(twice, 'casme2', class_sets.get('casme2', '5class'), report)
  assert [(s.emotion, label) for s, label in labelled] == [('happiness', 0)]
  assert report.skipped == [('sub01/EP01_01', 'a second sample with this id (the first is kept); delete '
                                              'the duplicated annotation row')]


def test_cells_of_the_wrong_type_never_become_numbers(frames_tree, tmp_path):
  date = datetime.datetime(2014, 5, 8)
  rows = [
      row('sub01/EP01_01', onset='abc'),                      # row 2
      row('sub01/EP02_01', onset=date),                       # row 3: a date-formatted cell
      row('sub02/EP03_01', onset=20.5),                       # row 4
      row('sub02/EP04_01', offset='abc'),                     # row 5: not blank, so not R1's 'unknown'
      row('sub03/EP05_01', apex=date),                        # row 6: R3, midpoint
      row('sub03/EP06_01', onset=30.0, subject='3'),          # row 7: whole numbers, typed otherwise
      row('sub03/EP07_01', emotion=3),                        # row 8
      [None] + row('sub03/EP06_01')[1:],                      # row 9: blank subject
      row('sub01/EP01_01', subject=1.5),                      # row 10: not subject 1
  ]
  root = corpus(frames_tree, tmp_path, rows)
  builder = prepare(root, tmp_path)
  fix = 'correct the row in the workbook or delete it'
  assert skipped(builder) == {
      'sub01/EP01_01': f"{sheet_row(2)}: onset 'abc' is not a frame number; {fix}",
      'sub01/EP02_01': f'{sheet_row(3)}: onset {date!r} is not a frame number; {fix}',
      'sub02/EP03_01': f'{sheet_row(4)}: onset 20.5 is not a frame number; {fix}',
      'sub02/EP04_01': f"{sheet_row(5)}: offset 'abc' is not a frame number; {fix}",
      'sub03/EP07_01': "emotion '3' is not one this corpus uses (disgust, happiness, others, repression, "
                       'surprise, fear, sadness); correct it in the annotation',
      '?/EP06_01': f'{sheet_row(9)}: Subject cell None is not a subject number; {fix}',
      '?/EP01_01': f'{sheet_row(10)}: Subject cell 1.5 is not a subject number; {fix}'}
  assert builder.info.metadata['repairs'] == [
      ['sub03/EP05_01', f'R3 apex {date!r} is not a frame number: midpoint 6']]
  check_rest(builder, {'sub03/EP05_01': ('others', (0, 1, 3), range(5, 9)), **intact('sub03/EP06_01')})


def test_impossible_frame_numbers_are_repaired_or_skipped_by_rule(frames_tree, tmp_path):
  rows = [
      row('sub01/EP01_01', onset=4, apex=3, offset=2),         # row 2: onset after offset
      row('sub01/EP02_01', onset=50, apex=52, offset=60),      # row 3: after the folder's frames 10..13
      row('sub02/EP03_01', onset=18, apex=21, offset=30),      # row 4: R2 at both ends
      row('sub02/EP04_01', apex=150),                          # row 5: R3
      row('sub03/EP05_01', offset=0),                          # row 6: R1 (a clip folder: its last frame)
      row('sub03/EP06_01', onset=31, apex=31, offset=32),      # row 7: frames 31, 32 deleted below
      row('sub03/EP07_01'),
  ]
  root = corpus(frames_tree, tmp_path, rows)
  for number in (31, 32):
    os.remove(frame(root, 'sub03/EP06_01', number))
  builder = prepare(root, tmp_path)
  assert skipped(builder) == {
      'sub01/EP01_01': f'{sheet_row(2)}: onset 4 after offset 2; correct the row in the workbook or '
                       'delete it',
      'sub01/EP02_01': f"{sheet_row(3)}: onset–offset [50, 60] lies outside the folder's frames 10..13; "
                       "correct the row's frame numbers or restore the missing frames",
      'sub03/EP06_01': f'{sheet_row(7)}: no frame numbered in [31, 32] (the folder has 30..33); '
                       "correct the row's frame numbers or restore the missing frames"}
  assert builder.info.metadata['repairs'] == [
      ['sub02/EP03_01', 'R2 onset 18 before the first frame: 20'],
      ['sub02/EP03_01', 'R2 offset 30 after the last frame: 23'],
      ['sub02/EP04_01', 'R3 apex 150 outside [98, 101]: midpoint 99'],
      ['sub03/EP05_01', 'R1 offset unknown (0): last frame 8']]
  check_rest(builder, {
      'sub02/EP03_01': ('disgust', (0, 1, 3), range(20, 24)),
      'sub02/EP04_01': ('repression', (0, 1, 3), range(98, 102)),
      'sub03/EP05_01': ('others', (0, 1, 3), range(5, 9)),
      **intact('sub03/EP07_01')})
