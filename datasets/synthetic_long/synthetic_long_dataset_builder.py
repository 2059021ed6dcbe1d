"""synthetic_long: procedurally generated long videos for micro/macro-expression spotting, exact ground truth.

  python -m fdp_jax.tools.build_dataset --dataset=synthetic_long          # or: built on first use by a run

Only a 'train' split holding every video: evaluation is leave-one-subject-out over `subject`.
"""

from __future__ import annotations

import dataclasses

import tensorflow_datasets as tfds
import tqdm

from fdp_jax import schema
from fdp_jax.corpora import face_drawing
from fdp_jax.corpora import synthetic_long

_DESCRIPTION = """\
Long videos (30 fps) of the synthetic faces of `synthetic_me` (same seed and subject index, same face),
each with micro-expressions (8-14 frames, 1.5-2.5 px on a 128-px face) and macro-expressions (24-60
frames, 3.5-5.5 px) of the five synthetic classes at known intervals, and distractors that are not
annotated: blinks, gaze shifts, slow head drift, brightness ramps, and in half the videos a stretch with no
face (face_present False). See fdp_jax/corpora/synthetic_long.py.
"""


@dataclasses.dataclass
class SyntheticLongConfig(tfds.core.BuilderConfig):
  num_subjects: int = 8
  videos_per_subject: int = 2
  num_frames: int = 900
  image_size: int = 64
  seed: int = 0


class Builder(tfds.core.GeneratorBasedBuilder):
  """The synthetic long-video spotting corpus (dataset name `synthetic_long`)."""

  SYNTHETIC_FACES = True   # drawn faces: a model trained here says nothing of real ones (fdp_jax.caveats)
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [
      SyntheticLongConfig(name='default', description='8 subjects x 2 videos x 900 frames (30 s), 64 px.'),
      # Other subjects (seed 1): where the spotting settings are chosen, never on `default`'s folds.
      SyntheticLongConfig(name='dev', seed=1, description='8 other subjects x 2 videos x 900 frames, 64 px: '
                                                          'for choosing settings.'),
      SyntheticLongConfig(name='tiny', num_subjects=3, videos_per_subject=1, num_frames=600, image_size=32,
                          description='3 subjects x 1 video x 600 frames, 32 px (tests).'),
  ]
  DEFAULT_CONFIG_NAME = 'default'

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=_DESCRIPTION, features=schema.long_video_features(self.builder_config.image_size),
        homepage=None)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # nothing to download
    return {'train': self._generate_examples()}

  def _generate_examples(self):
    cfg = self.builder_config
    with tqdm.tqdm(total=cfg.num_subjects * cfg.videos_per_subject, desc='synthetic long videos',
                   unit='video', leave=False) as progress:
      for s in range(cfg.num_subjects):
        subject = face_drawing.make_subject(cfg.seed, s, cfg.image_size)
        for v in range(cfg.videos_per_subject):
          record = synthetic_long.make_video(subject, v, cfg.seed, cfg.num_frames)
          schema.check_long_video(record, cfg.image_size)
          progress.update(1)
          yield record['video_id'], record
