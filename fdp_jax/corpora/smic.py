"""SMIC: `SMIC_all_cropped/{HS,VIS,NIR}/s<n>/micro/{negative,positive,surprise}/<clip>/`
with cropped `reg_image<N>.bmp` (or raw SMIC-E `image<N>.jpg`) frames. The label is the folder name and
there is no phase annotation: the clip runs from its first to its last frame, apex at the midpoint."""

from __future__ import annotations

import os

from fdp_jax.corpora import layout
from fdp_jax.corpora import phases
from fdp_jax.corpora import workbooks

CORPUS = 'smic'
MODALITIES = ('HS', 'VIS', 'NIR')
EMOTIONS = ('negative', 'positive', 'surprise')
FRAME_PREFIX = {'cropped': 'reg_image', 'raw': 'image'}

INSTRUCTIONS = """\
SMIC is licensed by the University of Oulu (Center for Machine Vision and Signal Analysis): request it
from the SMIC page of https://www.oulu.fi/en/university/faculties-and-units/faculty-information-technology-
and-electrical-engineering/center-machine-vision-and-signal-analysis (signed licence agreement).
Place in the manual folder:
  SMIC_all_cropped/HS/s1/micro/negative/s1_ne_01/reg_image1.bmp …   (also VIS/, NIR/)
Subject folders may be `s1` or `s01`. Raw SMIC-E frames (image<N>.jpg) in the same layout are read by the
`raw` configs.
"""


def find_samples(root: str, frames: str = 'cropped', modality: str = 'HS') -> tuple[list, phases.BuildReport]:
  """(ClipSpecs, report) of one modality's micro-expression clips. Subjects read 's<n>' unpadded."""
  report = phases.BuildReport()
  base = layout.find_path(root, [f'SMIC_all_cropped/{modality}', f'SMIC/{modality}', modality],
                          f'SMIC {modality} folders', INSTRUCTIONS)
  specs = []
  for number, subject_dir in layout.numbered_dirs(base, r's(\d+)').items():
    subject = f's{number}'
    micro = layout.child_dir(subject_dir, 'micro')
    if micro is None:
      report.skip(subject, f'no micro/ folder in {subject_dir}')
      continue
    for entry in sorted(os.listdir(micro)):
      emotion_dir = os.path.join(micro, entry)
      if not os.path.isdir(emotion_dir):
        continue
      emotion = workbooks.emotion_name(entry)
      for clip in sorted(os.listdir(emotion_dir), key=_natural):
        folder = os.path.join(emotion_dir, clip)
        if not os.path.isdir(folder):
          continue
        sample_id = f'{subject}/{clip}'
        try:
          listed = phases.clip_frames(folder, FRAME_PREFIX[frames])
          numbers = [n for n, _ in listed]
          if not numbers:
            raise phases.SkipSample(f'no {FRAME_PREFIX[frames]}<N> frames in {folder}')
          # SMIC has no phase annotation: this is the protocol, so it is not counted as a repair.
          placed = (0, len(numbers) - 1, 0, (len(numbers) - 1) // 2, len(numbers) - 1)
        except phases.SkipSample as e:
          report.skip(sample_id, str(e))
          continue
        specs.append(phases.make_spec(sample_id, subject, clip, emotion, listed, placed, CORPUS))
  if not specs and not report.skipped:
    raise layout.CorpusLayoutError(f'no SMIC clips under {base}\n{INSTRUCTIONS}')
  return specs, report


def _natural(name: str) -> tuple:
  import re
  return tuple(int(p) if p.isdigit() else p for p in re.split(r'(\d+)', name))
