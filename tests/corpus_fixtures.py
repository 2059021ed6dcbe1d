"""Fixture corpora for the builder tests: the real folder layouts, frame file names and annotation
workbooks (written with openpyxl, quirks included), with faces made by warping scikit-image's
`astronaut()` photo so that dlib finds a real face. Every function returns what a correct build yields.
"""

from __future__ import annotations

import os

import numpy as np

SIDE = 128  # frame side in pixels: the astronaut's face is ~60 px, found by dlib with one upsampling


def _astronaut() -> np.ndarray:
  import cv2
  from skimage import data
  return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[30:230, 120:320]


def face_frames(n: int, seed: int, grey: bool = False) -> list[np.ndarray]:
  """n frames of one clip: the face under a per-clip similarity transform plus a slow per-frame drift."""
  import cv2
  rng = np.random.default_rng(seed)
  base = cv2.resize(_astronaut(), (SIDE, SIDE), interpolation=cv2.INTER_AREA)
  angle, scale = rng.uniform(-4, 4), rng.uniform(0.95, 1.05)
  shift = rng.uniform(-3, 3, size=2)
  frames = []
  for t in range(n):
    m = cv2.getRotationMatrix2D((SIDE / 2, SIDE / 2), angle + 0.1 * t, scale)
    m[:, 2] += shift + 0.25 * t
    f = cv2.warpAffine(base, m, (SIDE, SIDE), borderMode=cv2.BORDER_REPLICATE)
    frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) if grey else f)
  return frames


def faceless_frames(n: int, seed: int) -> list[np.ndarray]:
  rng = np.random.default_rng(seed)
  return [np.clip(128 + rng.normal(0, 10, (SIDE, SIDE, 3)), 0, 255).astype(np.uint8) for _ in range(n)]


def write_frames(folder: str, names: list[str], frames: list[np.ndarray]) -> None:
  import cv2
  os.makedirs(folder, exist_ok=True)
  for name, frame in zip(names, frames):
    assert cv2.imwrite(os.path.join(folder, name), frame)


def write_workbook(path: str, sheets: list[tuple[str, list[list]]]) -> None:
  import openpyxl
  book = openpyxl.Workbook()
  book.remove(book.active)
  for title, rows in sheets:
    ws = book.create_sheet(title)
    for row in rows:
      ws.append(row)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  book.save(path)


def make_casme2(root: str) -> dict:
  """CASME II raw and cropped trees and the coding workbook. Numbers 95..102 cross 99 → 100, so a
  lexical sort would put img100 first."""
  clips = {  # folder → (numbers, has face)
      ('sub01', 'EP02_01f'): (range(95, 103), True),
      ('sub01', 'EP03_02'): (range(10, 18), True),
      ('sub01', 'EP99_99'): (range(1, 7), True),        # frames without an annotation row
      ('sub02', 'EP01_2'): (range(40, 48), True),
      ('sub02', 'EP09f'): (range(5, 11), True),
      ('sub03', 'EP06_02_01'): (range(200, 208), True),
      ('sub03', 'EP07_01'): (range(1, 7), False),       # no face: skipped by the build, named
  }
  for i, ((subject, clip), (numbers, face)) in enumerate(clips.items()):
    frames = face_frames(len(numbers), i) if face else faceless_frames(len(numbers), i)
    for kind, folder, prefix in (('raw', 'CASME2_RAW_selected', 'img'), ('cropped', 'Cropped', 'reg_img')):
      write_frames(os.path.join(root, folder, subject, clip), [f'{prefix}{n}.jpg' for n in numbers], frames)
  header = ['Subject', 'Filename', None, 'OnsetFrame', 'ApexFrame', 'OffsetFrame', None, 'Action Units',
            'Estimated Emotion']
  rows = [
      [1, 'EP02_01f', None, 95, 98, 102, None, '12', 'happiness'],
      [1, 'EP03_02', None, 10, '/', 17, None, '1+2', 'surprise'],       # '/' apex → midpoint 13
      [2, 'EP01_2', None, 41, 45, 130, None, '9', 'disgust'],           # offset past the folder → 47
      [2, 'EP09f', None, 5, 7, 10, None, '4', 'fear'],                  # dropped by the 5-class protocol
      [3, 'EP06_02_01', None, 200, 203, 207, None, '14', 'repression'],
      [3, 'EP07_01', None, 1, 3, 6, None, '4', 'others'],               # no face
      [3, 'EP08_01', None, 1, 3, 6, None, '4', 'others'],               # no frame folder
  ]
  write_workbook(os.path.join(root, 'CASME2-coding-20140508.xlsx'), [('Sheet1', [header] + rows)])
  return {
      'built': {'sub01/EP02_01f': ('happiness', 0, 3, 7), 'sub01/EP03_02': ('surprise', 0, 3, 7),
                'sub02/EP01_2': ('disgust', 1, 5, 7), 'sub03/EP06_02_01': ('repression', 0, 3, 7)},
      'repaired': {'sub01/EP03_02', 'sub02/EP01_2'},
      'skipped': {'sub03/EP07_01': 'no face', 'sub03/EP08_01': 'no frame folder'},
      'dropped': {'sub02/EP09f'},
      'unlabelled': {'sub01/EP99_99'},
      'subjects': {'sub01', 'sub02', 'sub03'},
  }


def make_samm(root: str) -> dict:
  """SAMM: 13 title rows above the header, numeric subjects, 4- and 5-digit frame numbers, grey JPEGs,
  'Other' and 'Others', an apex outside onset–offset and an emotion outside the 5-class protocol."""
  clips = {
      ('006', '006_1_2'): [f'006_{n:05d}.jpg' for n in range(5560, 5568)],
      ('006', '006_1_3'): [f'006_{n:05d}.jpg' for n in range(9996, 10004)],   # 09999 → 10000
      ('007', '007_3_1'): [f'007_{n:04d}.jpg' for n in range(1200, 1208)],
      ('011', '011_2_1'): [f'011_{n:04d}.jpg' for n in range(300, 306)],
      ('011', '011_2_2'): [f'011_{n:04d}.jpg' for n in range(50, 56)],
  }
  for i, ((subject, clip), names) in enumerate(clips.items()):
    write_frames(os.path.join(root, 'SAMM', subject, clip), names, face_frames(len(names), 10 + i, grey=True))
  title = [[f'SAMM micro-movement FACS codes, note {i}'] for i in range(13)]
  header = ['Subject', 'Filename', 'Inducement Code', 'Onset Frame', 'Apex Frame', 'Offset Frame', 'Duration',
            'Micro', 'Action Units', 'Estimated Emotion', 'Objective Classes', 'Notes']
  rows = [
      [6, '006_1_2', 1, 5560, 5563, 5567, 8, 'Micro - 1/2', 'R12', 'Happiness', 1, None],
      [6, '006_1_3', 1, 9996, 10001, 10003, 8, 'Micro - 1/2', 'A1+A2', 'Surprise', 2, None],
      [7, '007_3_1', 3, 1200, 1190, 1207, 8, 'Micro - 1/2', 'R4', 'Anger', 3, None],  # apex before onset
      [11, '011_2_1', 2, 300, 302, 305, 6, 'Micro - 1/2', 'A14', 'Other', 7, None],
      [11, '011_2_2', 2, 50, 52, 55, 6, 'Micro - 1/2', 'A9', 'Disgust', 3, None],     # not in 5-class
  ]
  write_workbook(os.path.join(root, 'SAMM_Micro_FACS_Codes_v2.xlsx'), [('FACS', title + [header] + rows)])
  return {
      'built': {'006/006_1_2': ('happiness', 0, 3, 7), '006/006_1_3': ('surprise', 0, 5, 7),
                '007/007_3_1': ('anger', 0, 3, 7), '011/011_2_1': ('other', 0, 2, 5)},
      'repaired': {'007/007_3_1'},
      'dropped': {'011/011_2_2'},
      'subjects': {'006', '007', '011'},
  }


def make_smic(root: str) -> dict:
  """SMIC HS cropped: labels from folders, `s2` spelled `s02`, BMP frames, one unreadable frame."""
  clips = [('s1', 's1_ne_01', 'negative', 6), ('s1', 's1_po_02', 'positive', 7), ('s02', 's2_sur_01', 'surprise', 6),
           ('s02', 's2_ne_03', 'negative', 5)]
  for i, (folder, clip, emotion, n) in enumerate(clips):
    path = os.path.join(root, 'SMIC_all_cropped', 'HS', folder, 'micro', emotion, clip)
    write_frames(path, [f'reg_image{k}.bmp' for k in range(1, n + 1)], face_frames(n, 20 + i))
  with open(os.path.join(root, 'SMIC_all_cropped', 'HS', 's02', 'micro', 'negative', 's2_ne_03',
                         'reg_image3.bmp'), 'wb') as f:
    f.write(b'not a bitmap')
  return {
      'built': {'s1/s1_ne_01': ('negative', 0, 2, 5), 's1/s1_po_02': ('positive', 0, 3, 6),
                's2/s2_sur_01': ('surprise', 0, 2, 5)},
      'skipped': {'s2/s2_ne_03': 'unreadable frame'},
      'subjects': {'s1', 's2'},
  }


def make_casme_sq(root: str) -> dict:
  """CAS(ME)²: header-less first sheet, subject and video mapping sheets, whole-video folders, offset 0,
  a macro-expression row (left out of the micro configs)."""
  videos = {('s15', '15_0401girlcrashing'): 40, ('s16', '16_0502funnyerrors'): 40}
  for i, ((subject, video), n) in enumerate(videos.items()):
    write_frames(os.path.join(root, 'rawpic', subject, video), [f'img{k}.jpg' for k in range(1, n + 1)],
                 face_frames(n, 30 + i))
  samples = [
      [1, 'anger1_1', 5, 8, 12, 'AU4', 'negative', 'micro-expression', 'angry'],
      [1, 'anger1_2', 20, 23, 0, 'AU4', 'others', 'micro-expression', 'angry'],   # offset 0 → 26
      [1, 'anger1_3', 25, 30, 38, 'AU4', 'negative', 'macro-expression', 'angry'],
      [2, 'happy1_1', 30, 33, 37, 'AU12', 'positive', 'micro-expression', 'happy'],
      [2, 'happy2_1', 3, 5, 8, 'AU12', 'positive', 'micro-expression', 'happy'],  # no video 0503 folder
  ]
  subjects = [['subject', 'folder'], [1, 15], [2, 16]]
  codes = [['anger1', '0401'], ['happy1', '0502'], ['happy2', '0503']]
  write_workbook(os.path.join(root, 'CAS(ME)^2code_final.xlsx'),
                 [('Sheet1', samples), ('Sheet2', subjects), ('Sheet3', codes)])
  return {
      'built': {'s15/anger1_1': ('negative', 0, 3, 7), 's15/anger1_2': ('others', 0, 3, 6),
                's16/happy1_1': ('positive', 0, 3, 7)},
      'repaired': {'s15/anger1_2'},
      'skipped': {'s16/happy2_1': 'no video folder'},
      'subjects': {'s15', 's16'},
  }


def make_casme3(root: str) -> dict:
  """CAS(ME)³ Part A: several MEs per video, 'Others'/'others', an upper-case 'J', 'spNo' spelling,
  apex ≤ onset, absurd and zero offsets, depth folders, and one ME-clip package."""
  videos = {('spNO.1', 'a'): 30, ('spNO.1', 'j'): 20, ('spNo.2', 'b'): 30}
  for i, ((subject, letter), n) in enumerate(videos.items()):
    base = os.path.join(root, 'part_A', 'data', subject, letter)
    write_frames(os.path.join(base, 'color'), [f'{k}.jpg' for k in range(n)], face_frames(n, 40 + i))
    write_frames(os.path.join(base, 'depth'), ['0.png'], [np.zeros((8, 8), np.uint8)])
  write_frames(os.path.join(root, 'Part_A_ME_clip', 'frame', 'spNO.3_c_7'), [f'{k}.jpg' for k in range(7, 14)],
               face_frames(7, 50))
  header = ['Subject', 'Filename', 'Onset', 'Apex', 'Offset', 'AU', 'Objective class', 'emotion']
  rows = [
      ['spNO.1', 'a', 3, 6, 10, 'AU4', 1, 'disgust'],
      ['spNO.1', 'a', 15, 12, 20, 'AU4', 7, 'Others'],   # apex before onset → midpoint 17
      ['spNO.1', 'J', 2, 4, 7, 'AU12', 2, 'happy'],      # upper-case letter, folder 'j'
      ['spNO.2', 'b', 22, 24, 3460, 'AU1', 6, 'surprise'],  # absurd offset → 29
      ['spNO.2', 'b', 5, 8, 0, 'AU1', 3, 'fear'],        # offset 0 → apex mirrored: 11
      ['spNO.3', 'c', 7, 9, 13, 'AU12', 2, 'happy'],     # only the ME-clip package
      ['spNO.4', 'a', 1, 2, 3, 'AU1', 2, 'happy'],       # no frames at all
  ]
  write_workbook(os.path.join(root, 'cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx'), [('label', [header] + rows)])
  return {
      'built': {'spNO.1/a/3': ('disgust', 0, 3, 7), 'spNO.1/a/15': ('others', 0, 2, 5),
                'spNO.1/j/2': ('happy', 0, 2, 5), 'spNO.2/b/22': ('surprise', 0, 2, 7),
                'spNO.2/b/5': ('fear', 0, 3, 6), 'spNO.3/c/7': ('happy', 0, 2, 6)},
      'repaired': {'spNO.1/a/15', 'spNO.2/b/22', 'spNO.2/b/5'},
      'skipped': {'spNO.4/a/1': 'no clip package'},
      'subjects': {'spNO.1', 'spNO.2', 'spNO.3'},
  }
