"""Fixture CAS(ME)² long-video corpus for the spotting reader `casme_sq_long`: the distributed layout (the
code workbook's `(Updated)` name, sheets 2 and 3 as `15 | s15 | 1` and `0101 | disgust1`, the blink-code
workbook beside it, `rawpic/s<id>/<id>_<code><title>/img<N>.jpg`) and its quirks (see make_casme_sq_long).
Faces from `corpus_fixtures`, so the folders also build."""

from __future__ import annotations

import os

from tests import corpus_fixtures

WORKBOOK = 'CAS(ME)^2code_final(Updated).xlsx'


def make_casme_sq_long(root: str) -> dict:
  """Three videos and twelve annotation rows; returns what a correct read yields.

  Quirks: offset 0 on a micro row and on a macro row (R1: apex mirrored); an offset past the last frame
  (R2); a micro and a macro interval with the same onset and offset (both kept) and a micro-expression
  inside a macro-expression in one video; a row repeating another's video, onset, offset and type (skipped,
  naming the first); an expression type that is neither; rows naming a video without a folder, a subject
  missing from sheet 2 and a clip stem missing from sheet 3; a blank row; a video no row names
  (unlabelled); subject 23's video filed in `s19/` (as in the distributed rawpic) with zero-padded frame
  names; a video code typed as a number (502); the emotion cell 'Negative ' (read 'negative').

  Returned: {'videos': {video_id: {'subject', 'num_frames', 'intervals': [(onset, apex, offset, type)]
  sorted by (onset, offset, type), 'emotions': [emotion per interval]}}, 'repaired': set of names,
  'skipped': {name: reason substring}, 'unlabelled': set of video ids}.
  """
  videos = [  # (subject folder, video folder, frame names, seed)
      ('s15', '15_0101disgustingteeth', [f'img{k}.jpg' for k in range(1, 61)], 60),
      ('s16', '16_0502funnyerrors', [f'img{k}.jpg' for k in range(1, 41)], 61),
      ('s19', '23_0502funnyerrors', [f'img{k:03d}.jpg' for k in range(1, 51)], 62),
  ]
  for subject, video, names, seed in videos:
    corpus_fixtures.write_frames(os.path.join(root, 'rawpic', subject, video), names,
                                 corpus_fixtures.face_frames(len(names), seed))
  micro, macro = 'micro-expression', 'macro-expression'
  samples = [  # subject, clip, onset, apex, offset, AUs, emotion, type, self-report
      [1, 'disgust1_1', 5, 8, 12, '4', 'negative', micro, 'disgust'],
      [1, 'disgust1_2', 20, 26, 40, '4+7', 'Negative ', macro, 'disgust'],
      [1, 'disgust1_3', 44, 47, 0, '4', 'others', micro, 'disgust'],         # offset 0 → 2·47 − 44 = 50
      [1, 'disgust1_4', 5, 9, 12, '4', 'negative', micro, 'disgust'],        # repeats disgust1_1
      [1, 'disgust1_5', 52, 55, 58, None, 'others', 'blink', None],          # neither micro nor macro
      [1, 'disgust1_6', 30, 33, 36, '14', 'negative', micro, 'disgust'],     # inside disgust1_2
      [1, 'disgust1_7', 5, 8, 12, '4+7', 'negative', macro, 'disgust'],      # disgust1_1's window, macro
      [None] * 9,
      [7, 'happy1_1', 10, 14, 0, '12', 'positive', macro, 'happy'],          # offset 0 → 18, in s19/
      [7, 'happy1_2', 30, 33, 36, '12', 'positive', micro, 'happy'],
      [7, 'happy1_3', 45, 48, 70, '6+12', 'positive', macro, 'happy'],       # offset past frame 50
      [2, 'happy2_1', 3, 5, 8, '12', 'positive', micro, 'happy'],            # no 16_0503 folder
      [9, 'anger1_1', 3, 5, 8, '4', 'negative', micro, 'anger'],             # subject 9 not in sheet 2
      [1, 'fear1_1', 3, 5, 8, '4', 'negative', micro, 'fear'],               # stem fear1 not in sheet 3
  ]
  subjects = [[15, 's15', 1], [16, 's16', 2], [19, 's19', 3], [23, 's23', 7]]
  codes = [['0101', 'disgust1'], [502, 'happy1'], ['0503', 'happy2'], ['0401', 'anger1']]
  corpus_fixtures.write_workbook(os.path.join(root, WORKBOOK),
                                 [('Sheet1', samples), ('naming rule1', subjects), ('naming rule2', codes)])
  # Shipped beside the code workbook and sorted before it; one sheet, so reading it fails loudly.
  corpus_fixtures.write_workbook(os.path.join(root, 'CAS(ME)^2blink-code.xlsx'),
                                 [('Sheet1', [['subject', 'video', 'blink', 'onset', 'offset'],
                                              [1, '0101', 1, 3, 6]])])
  s15, s23 = 's15/15_0101disgustingteeth', 's23/23_0502funnyerrors'
  return {
      'videos': {
          s15: {'subject': 's15', 'num_frames': 60,
                'intervals': [(4, 7, 11, 'macro'), (4, 7, 11, 'micro'), (19, 25, 39, 'macro'),
                              (29, 32, 35, 'micro'), (43, 46, 49, 'micro')],
                'emotions': ['negative', 'negative', 'negative', 'negative', 'others']},
          's16/16_0502funnyerrors': {'subject': 's16', 'num_frames': 40, 'intervals': [], 'emotions': []},
          s23: {'subject': 's23', 'num_frames': 50,
                'intervals': [(9, 13, 17, 'macro'), (29, 32, 35, 'micro'), (44, 47, 49, 'macro')],
                'emotions': ['positive', 'positive', 'positive']},
      },
      'repaired': {f'{s15}@44', f'{s23}@10', f'{s23}@45', s23},
      'skipped': {f'{s15}@5': 'names the same interval', f'{s15}@52': 'neither micro nor macro',
                  's16/happy2_1@3': 'no video folder', 'subject9/anger1_1@3': 'subject → folder sheet',
                  's15/fear1_1@3': 'clip → video sheet'},
      'unlabelled': {'s16/16_0502funnyerrors'},
  }
