"""A fixture SAMM-LV corpus: the real layout (`SAMM_longvideos/<video>/<video>_<frame>.jpg`, the workbook's
header under 9 title rows on sheet `FACS_Movement_Only`, frame cells stored as floats) with its quirks, and
what a correct read yields. Frames are the warped astronaut of `corpus_fixtures`, grey, 128 px, so a build
with dlib takes seconds."""

from __future__ import annotations

import os

from tests import corpus_fixtures

HEADER = ['Subject', 'Filename', 'Inducement Code', 'Onset', 'Apex', 'Offset', 'Duration', 'Type',
          'Action Units', 'Notes']


def make_samm_lv(root: str) -> dict:
  """Three videos: 006_1 (4-digit frame numbers 1..40), 007_3 (9990..10019: the padding grows from 4 to 5
  digits, so a lexical sort would put 10000 first) and 011_2 (1..30, no row names it)."""
  videos = {
      '006_1': [f'006_1_{n:04d}.jpg' for n in range(1, 41)],
      '007_3': [f'007_3_{n:04d}.jpg' for n in range(9990, 10020)],
      '011_2': [f'011_2_{n:05d}.jpg' for n in range(1, 31)],
  }
  for i, (video, names) in enumerate(videos.items()):
    folder = os.path.join(root, 'SAMM_longvideos', video)
    corpus_fixtures.write_frames(folder, names, corpus_fixtures.face_frames(len(names), 60 + i, grey=True))
  title = [[f'SAMM Long Videos, FACS movement codes, note {i}'] for i in range(9)]
  rows = [
      [6, '006_1_1', 1, 5.0, 8.0, 12.0, 8, 'Micro - 1/2', 'R12', None],      # floats, as in the release
      [6, '006_1_2', 1, 15, 22, 38, 24, 'Macro', 'A1+A2', None],              # a macro in the same video
      [6, '006_1_3', 1, 20, 30, 0, 0, 'Micro - 1/2', 'A4', None],             # offset 0 → apex mirrored: 40
      [6, '006_1_4', 1, ' 5', 9, '12', 8, 'Micro - 1/2', 'R12', 'recoded'],   # same interval, typed as text
      [6, '006_1_5', 1, 0, 3, 9, 9, 'Macro', 'A12', None],                    # onset 0: start not coded
      [7, '007_3_1', 3, 9995, 9990, 10002, 8, 'Micro - 1/2', 'L14', None],    # apex before onset → 9998
      [7, '007_3_2', 3, 10010, 10015, 10060, 50, 'Macro', 'A6+A12', None],    # offset past 10019
      [7, None, 3, 10000, 10001, 10003, 4, 'Micro - 1/2', 'A1', None],        # no Filename: Subject + code
      [9, '009_2_1', 2, 10, 12, 15, 6, 'Micro - 1/2', 'A2', None],            # no folder 009_2
  ]
  path = os.path.join(root, 'SAMM_LongVideos_V1_Release.xlsx')
  corpus_fixtures.write_workbook(path, [('FACS_Movement_Only', title + [HEADER] + rows)])
  return {
      'videos': {
          '006_1': {'subject': '006', 'num_frames': 40,
                    'intervals': [(4, 7, 11, 'micro'), (14, 21, 37, 'macro'), (19, 29, 39, 'micro')]},
          '007_3': {'subject': '007', 'num_frames': 30,
                    'intervals': [(5, 8, 12, 'micro'), (10, 11, 13, 'micro'), (20, 25, 29, 'macro')]},
          '011_2': {'subject': '011', 'num_frames': 30, 'intervals': []},
      },
      'repaired': {'006_1@20', '007_3@9995', '007_3@10010'},
      'skipped': {'006_1@5': 'row 11 names the same interval', '009_2@10': 'no frame folder',
                  '006_1@0': 'onset 0 (frames start at 1)'},
      'unlabelled': {'011_2'},
  }
