"""synthetic_me: procedurally generated grey micro-expression clips with exact landmarks and flow.

Build with `tfds build datasets/synthetic_me --config=tiny`, or from Python:

  b = Builder(config='tiny', data_dir=tmp, file_format='array_record')
  b.download_and_prepare()
  src = b.as_data_source()['train']

Only a 'train' split holding every clip: evaluation is leave-one-subject-out over `subject`.
"""

from __future__ import annotations

import dataclasses

import tensorflow_datasets as tfds
import tqdm

from fdp_jax import schema
from fdp_jax.corpora import face_drawing, face_motion, synthetic_faces

_DESCRIPTION = """\
A synthetic stand-in for spontaneous micro-expression corpora (CASME II style), generated procedurally.
Every subject has an analytic grey face of its own (face shape, feature placement, texture, lighting).
Each clip holds a few neutral frames, then a fast onset-to-apex rise and a slower decay of localised,
AU-like displacements (1-2 px on a 128-px face) specific to one of five classes: happiness (AU12 lip
corner pull), surprise (AU1+2 brow raise), disgust (AU9/10 nose wrinkle / upper-lip raise), repression
(AU24/14 lip press) and others (AU4, AU7, unilateral AU12, AU15, AU17). Clips add sub-pixel head
jitter, sensor noise, brightness flicker and varying lengths, with CASME II class proportions per subject.
Landmarks (iBUG-68) and the optional dense flow between consecutive frames are exact, not estimated.
A single frame does not give the class away: subject appearance varies far more than the motion.

The `mol` and `mol_dev` configs (version 1.2.0) add what MOL's release trains on: each frame aligned on its
own landmarks, so each frame is off by its own small similarity transform (`face_motion.MOL_ALIGNMENT`).
Its size comes from measurements (benchmarks/mol_motion.py, benchmarks/README.md "Face motion between aligned frames"):
the alignment error's shape (translation : rotation : scale) from the project's dlib alignment applied to
each frame of a still real face (scikit-image's astronaut photo, its face 230 px wide as in CASME II,
sensor noise 2 grey levels: 0.19 px, 0.137 deg, 1.09 % per frame), its size scaled so that the flow between
consecutive aligned frames matches the mean over two calm real videos of seated, silent faces (bob.io.video's
test_h264.mov and bob.ip.qualitymeasure's real_client001 clip, TV-L1 at one frame, 128-px crops: standard
deviation 0.49 px over all pixels).
"""


@dataclasses.dataclass
class SyntheticMEConfig(tfds.core.BuilderConfig):
  """Corpus size; clips of `min_frames`..`max_frames` frames of `image_size`^2 pixels."""
  num_subjects: int = 10
  clips_per_subject: int = 24
  image_size: int = 64
  min_frames: int = 20
  max_frames: int = 36
  with_flow: bool = False
  seed: int = 0
  alignment: face_motion.AlignmentJitter | None = None   # each frame's own alignment error; None: none


MOL_ALIGNMENT = face_motion.MOL_ALIGNMENT
_MOL_NOTES = {'1.1.0': 'Faces as if aligned once per clip: head jitter only (flow std 0.074 px at 128 px).',
              '1.2.0': "Each frame's own alignment error added (face_motion.MOL_ALIGNMENT), measured on real "
                       'faces: flow std 0.49 px; every other draw unchanged.'}


def alignment_of(config: SyntheticMEConfig, version: str) -> face_motion.AlignmentJitter | None:
  """The per-frame alignment error the clips of `config` are built with at `version` (1.1.0: none)."""
  return None if str(version) == '1.1.0' else config.alignment


class Builder(tfds.core.GeneratorBasedBuilder):
  """The synthetic micro-expression corpus (dataset name `synthetic_me`)."""

  SYNTHETIC_FACES = True   # drawn faces: a model trained here says nothing of real ones (fdp_jax.caveats)
  VERSION = tfds.core.Version('1.1.0')
  RELEASE_NOTES = {
      '1.0.0': 'Initial release.',
      '1.1.0': "'others' clips never draw AU12L with AU12R (that is AU12, happiness's motion); 1.0.0 did, "
               'in about 1 of 30 others clips. Every other clip is unchanged.',
  }
  BUILDER_CONFIGS = [
      SyntheticMEConfig(name='default', description='10 subjects x 24 clips, 64 px, 20-36 frames.'),
      # Other subjects (seed 1), drawn by the same rules: the corpus the default config's settings are chosen
      # on (benchmarks/choose_defaults.py), so that `default`'s LOSO figure is never tuned on its own folds.
      SyntheticMEConfig(name='dev', seed=1,
                        description='10 other subjects x 24 clips, 64 px, 20-36 frames: for choosing settings.'),
      SyntheticMEConfig(name='tiny', num_subjects=4, clips_per_subject=10, image_size=32, min_frames=12,
                        max_frames=18, with_flow=True,
                        description='4 subjects x 10 clips, 32 px, 12-18 frames, with flow (tests).'),
      SyntheticMEConfig(name='mol', image_size=128, with_flow=True, alignment=MOL_ALIGNMENT, version='1.2.0',
                        supported_versions=['1.1.0'], release_notes=_MOL_NOTES,
                        description='10 subjects x 24 clips, 128 px, 20-36 frames, with exact flow; each frame '
                                    'aligned on its own (1.1.0: aligned once per clip).'),
      # MOL's development corpus: other subjects (seed 1), the same rules; MOL's settings are chosen here.
      SyntheticMEConfig(name='mol_dev', image_size=128, with_flow=True, alignment=MOL_ALIGNMENT, seed=1,
                        version='1.2.0', release_notes=_MOL_NOTES,
                        description='10 other subjects x 24 clips, as mol: for choosing MOL\'s settings.'),
      SyntheticMEConfig(name='casme2_sized', num_subjects=26, clips_per_subject=10,
                        description='26 subjects x 10 clips, 64 px, 20-36 frames: CASME II\'s LOSO shape '
                                    '(26 folds, ~255 clips), for timing cross-validation.'),
  ]
  DEFAULT_CONFIG_NAME = 'default'

  def _info(self) -> tfds.core.DatasetInfo:
    cfg = self.builder_config
    return self.dataset_info_from_configs(
        description=_DESCRIPTION,
        features=schema.me_features(cfg.image_size, synthetic_faces.CLASS_NAMES, cfg.with_flow),
        homepage=None)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # nothing to download
    return {'train': self._generate_examples()}

  def _generate_examples(self):
    # Serial on purpose: the default config builds in ~20 s on 2 cores, and every clip draws from its
    # own (seed, subject, clip) generator, so a pool would change nothing but the wall time.
    cfg = self.builder_config
    alignment = alignment_of(cfg, self.version)
    # TFDS's own bar does not know the total; this one does, so it shows an ETA.
    with tqdm.tqdm(total=cfg.num_subjects * cfg.clips_per_subject, desc='synthetic clips', unit='clip',
                   leave=False) as progress:
      for s in range(cfg.num_subjects):
        subject = face_drawing.make_subject(cfg.seed, s, cfg.image_size)
        labels = synthetic_faces.allocate_labels(cfg.seed, s, cfg.clips_per_subject)
        for c, label in enumerate(labels):
          record = synthetic_faces.make_clip(subject, c, int(label), cfg.seed, cfg.min_frames,
                                             cfg.max_frames, with_flow=cfg.with_flow, alignment=alignment)
          schema.check_example(record, cfg.image_size, cfg.with_flow)
          progress.update(1)
          yield record['sample_id'], record
