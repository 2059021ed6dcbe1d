"""CAS(ME)³ Part A: `cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx` (sheet `label`) and frames
either in whole-video folders `part_A/…/spNO.<n>/<letter>/color/<N>.jpg` or in ME-clip packages
`Part_A_ME_clip/frame/spNO.<n>_<letter>_<onset>/<N>.jpg`. Several MEs share a video, so the sample id
carries the onset: `spNO.1/a/153`."""

from __future__ import annotations

import os
import re

from fdp_jax.corpora import layout
from fdp_jax.corpora import phases
from fdp_jax.corpora import workbooks

CORPUS = 'casme3'
ANNOTATION = r'cas\(me\)3_part_A_ME_label.*\.xlsx'
SUBJECT_DIR = re.compile(r'spno\.(\d+)', re.IGNORECASE)
CLIP_DIR = re.compile(r'spno\.(\d+)_([a-z])_(\d+)', re.IGNORECASE)

INSTRUCTIONS = """\
CAS(ME)³ is licensed by the Institute of Psychology, Chinese Academy of Sciences: request it at
http://casme.psych.ac.cn/casme/e4 (signed licence agreement). Place in the manual folder:
  cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx
  part_A/…/spNO.1/a/color/1.jpg …                  (whole-video colour frames), and/or
  Part_A_ME_clip/frame/spNO.1_a_153/153.jpg …      (the ME-clip packages; preferred when present)
"""


def _index_folders(root: str) -> tuple[dict[int, str], dict[tuple[int, str, int], str]]:
  """({subject number: spNO folder}, {(subject, letter, onset): clip-package folder}) under root."""
  subjects, clips = {}, {}
  for path, dirs, _ in os.walk(root):
    keep = []
    for d in sorted(dirs):
      m_clip, m_subject = CLIP_DIR.fullmatch(d), SUBJECT_DIR.fullmatch(d)
      if m_clip:
        clips.setdefault((int(m_clip.group(1)), m_clip.group(2).lower(), int(m_clip.group(3))),
                         os.path.join(path, d))
      elif m_subject:
        subjects.setdefault(int(m_subject.group(1)), os.path.join(path, d))
      elif d.lower() not in ('depth',):
        keep.append(d)
    dirs[:] = keep  # do not descend into subject or clip folders: their frames are listed on demand
  return subjects, clips


def find_samples(root: str, frames: str = 'raw') -> tuple[list, phases.BuildReport]:
  """(ClipSpecs, report). Emotions lower-case ('Others' → 'others')."""
  if frames != 'raw':
    raise ValueError(f"CAS(ME)³ Part A has only 'raw' colour frames, not {frames!r}")
  report = phases.BuildReport()
  workbook = layout.find_file(root, ANNOTATION, 'the CAS(ME)³ Part A label workbook', INSTRUCTIONS)
  columns, rows = workbooks.table(workbook, 'Subject', 'label')
  subjects, clips = _index_folders(root)
  if not subjects and not clips:
    raise layout.CorpusLayoutError(f'no spNO.<n> frame folders under {root}\n{INSTRUCTIONS}')
  specs, used, listings = [], {}, {}
  for where, row in rows:
    number = workbooks.subject_number(workbooks.cell(row, columns, 'Subject'))
    letter = str(workbooks.cell(row, columns, 'Filename') or '').strip().lower()
    onset = workbooks.cell(row, columns, 'Onset')
    subject = f'spNO.{number}' if number is not None else '?'
    sample_id = f'{subject}/{letter}/{workbooks.frame_number(onset)}'
    try:
      if number is None or not re.fullmatch(r'[a-z]', letter):
        raise phases.SkipSample(f'no subject or video letter a–m in {row!r}; {phases.FIX_ROW}')
      if sample_id in used and workbooks.frame_number(onset) is not None:  # else locate_phases says why
        raise phases.SkipSample(f'{used[sample_id]} has the same subject, video and onset and is the one '
                                'used; delete whichever of the two rows is wrong')
      used[sample_id] = where
      package = clips.get((number, letter, workbooks.frame_number(onset) or -1))
      if package is not None:
        folder, whole_video = package, False
      else:
        video = layout.child_dir(subjects[number], letter) if number in subjects else None
        folder = layout.child_dir(video, 'color') if video else None
        whole_video = True
        if folder is None:
          raise phases.SkipSample(f'no clip package {subject}_{letter}_{workbooks.frame_number(onset)} '
                                  f'and no video folder {subject}/{letter}/color under {root}; put the '
                                  'frames there or delete the row')
      if folder not in listings:
        listings[folder] = phases.clip_frames(folder)
      listed = listings[folder]
      placed = phases.locate_phases(sample_id, [n for n, _ in listed], onset,
                                    workbooks.cell(row, columns, 'Apex'), workbooks.cell(row, columns, 'Offset'),
                                    report, whole_video=whole_video)
    except phases.SkipSample as e:
      report.skip(sample_id, f'{where}: {e}')
      continue
    emotion = workbooks.emotion_name(workbooks.cell(row, columns, 'emotion'))
    specs.append(phases.make_spec(sample_id, subject, letter, emotion, listed, placed, CORPUS))
  return specs, report
