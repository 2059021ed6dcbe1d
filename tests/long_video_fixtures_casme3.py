"""A fixture CAS(ME)³ Part A long-video corpus: the real layout (`part_A/data/spNO.<n>/<letter>/color/<N>.jpg`
with `depth/` beside, the ME workbook with sheet `label` and frame cells stored as text, a macro workbook
with the short header sub/seq/onset/…) with the corpus's quirks, and what a correct read yields. Frames are
the warped astronaut of `corpus_fixtures` at 128 px, so a build with dlib takes seconds."""

from __future__ import annotations

import os

import numpy as np

from tests import corpus_fixtures

ME_WORKBOOK = 'cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx'
MACRO_WORKBOOK = 'cas(me)3_part_A_MaE_label_JpgIndex_v2_emotion.xlsx'
ME_HEADER = ['Subject', 'Filename', 'Onset', 'Apex', 'Offset', 'AU', 'Objective class', 'emotion']
MACRO_HEADER = ['sub', 'seq', 'onset', 'apex', 'offset', 'AU', 'emotion']


def write_videos(root: str) -> None:
  """spNO.1/a: frames 0..39; spNo.2/J (subject spelled spNo, letter upper case on disk): frames 1..30, so
  indices are numbers − 1; spNO.3/c: frames 0..29, no row names it. Every video has a depth/ folder;
  spNO.1/b has only depth/ (no video); spNO.4_a_5 is an ME-clip package without its whole video."""
  videos = {('spNO.1', 'a'): range(0, 40), ('spNo.2', 'J'): range(1, 31), ('spNO.3', 'c'): range(0, 30)}
  for i, ((subject, letter), numbers) in enumerate(videos.items()):
    base = os.path.join(root, 'part_A', 'data', subject, letter)
    corpus_fixtures.write_frames(os.path.join(base, 'color'), [f'{n}.jpg' for n in numbers],
                                 corpus_fixtures.face_frames(len(numbers), 70 + i))
    corpus_fixtures.write_frames(os.path.join(base, 'depth'), ['0.png'], [np.zeros((8, 8), np.uint16)])
  corpus_fixtures.write_frames(os.path.join(root, 'part_A', 'data', 'spNO.1', 'b', 'depth'), ['0.png'],
                               [np.zeros((8, 8), np.uint16)])
  corpus_fixtures.write_frames(os.path.join(root, 'Part_A_ME_clip', 'frame', 'spNO.4_a_5'),
                               [f'{n}.jpg' for n in range(5, 12)], corpus_fixtures.faceless_frames(7, 79))


def write_me_workbook(root: str) -> None:
  rows = [
      ['spNO.1', 'a', '3', '6', '10', '4', 'III', 'disgust'],      # frame cells as text, as in the release
      ['spNO.1', 'a', 15, 12, 20, '4', 'VII', 'Others'],           # apex before onset → midpoint 17
      ['spNO.1', 'a', 30, 30, 34, '14', 'VII', 'happy'],           # apex = onset: kept as annotated
      ['spNO.1', 'a', 3, 7, 10, '4', 'III', 'disgust'],            # same video, onset, offset as row 2
      ['spNo.2', 'J', 22, 24, 3460, '1', 'V', 'surprise'],         # upper-case J; absurd offset → 30
      ['spNO.2', 'j', 5, 8, 0, '1', 'V', 'fear'],                  # offset 0 → apex mirrored: 11
      ['spNO.2', 'j', 20, 18, 12, '1', 'V', 'fear'],               # onset after offset
      ['spNO.4', 'a', 5, 7, 11, '12', 'I', 'happy'],               # only its ME-clip package is here
      ['spNO.1', 'b', 2, 4, 8, '15', 'VII', 'sad'],                # video folder has depth/ only
  ]
  # A decoy first sheet: the annotation is on sheet `label`, which is not the first here.
  corpus_fixtures.write_workbook(os.path.join(root, 'part_A', 'annotation', ME_WORKBOOK),
                                 [('Sheet1', [['notes'], [1, 2, 3]]), ('label', [ME_HEADER] + rows)])


def write_macro_workbook(root: str) -> None:
  rows = [
      ['spNO.1', 'a', 22, 25, 28, '12', 'happiness'],   # overlaps no micro-expression
      ['spNO.1', 'a', 22, 26, 28, '12', 'happiness'],   # same video, onset, offset and type as row 2
      ['spNo.2', 'J', 12, '/', 18, '4', None],          # apex '/' → midpoint 15; no emotion coded
  ]
  corpus_fixtures.write_workbook(os.path.join(root, 'part_A', 'annotation', MACRO_WORKBOOK),
                                 [('Sheet1', [MACRO_HEADER] + rows)])


def make_casme3_long(root: str) -> dict:
  """Writes the corpus; returns what `casme3_long.find_videos` yields: intervals as (onset, apex, offset,
  type) indices into the video's frames, sorted by onset, with their emotions in the same order."""
  write_videos(root)
  write_me_workbook(root)
  write_macro_workbook(root)
  return {
      'videos': {
          'spNO.1/a': {'subject': 'spNO.1', 'num_frames': 40, 'first_frame': 0,
                       'intervals': [(3, 6, 10, 'micro'), (15, 17, 20, 'micro'), (22, 25, 28, 'macro'),
                                     (30, 30, 34, 'micro')],
                       'emotions': ['disgust', 'others', 'happiness', 'happy']},
          # Numbers 5/8/11, 12/15/18 and 22/24/30 are indices one lower: the frames start at 1.
          'spNO.2/j': {'subject': 'spNO.2', 'num_frames': 30, 'first_frame': 1,
                       'intervals': [(4, 7, 10, 'micro'), (11, 14, 17, 'macro'), (21, 23, 29, 'micro')],
                       'emotions': ['fear', '', 'surprise']},
          'spNO.3/c': {'subject': 'spNO.3', 'num_frames': 30, 'first_frame': 0, 'intervals': [],
                       'emotions': []},
      },
      'repaired': {'spNO.1/a@15', 'spNO.2/j@22', 'spNO.2/j@5', 'spNO.2/j@12'},
      'skipped': {'spNO.1/a@3': f'{ME_WORKBOOK} row 2 has the same video, onset, offset and type',
                  'spNO.1/a@22': f'{MACRO_WORKBOOK} row 2 has the same video, onset, offset and type',
                  'spNO.2/j@20': 'onset 20 after offset 12',
                  'spNO.4/a@5': 'not a long video',
                  'spNO.1/b@2': 'no whole-video folder spNO.1/b/color'},
      'unlabelled': {'spNO.3/c'},
  }
