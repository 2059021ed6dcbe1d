"""The TFDS builder every licensed long-video (spotting) corpus shares: read the videos and their intervals
(a reader of `fdp_jax.corpora.long_videos`'s interface), keep every `frame_step`-th frame, track and align
the face on every frame in worker processes (`preprocess.long_video`), write `schema.long_video_features`.

The rules of the clip builders hold: an interval row that cannot be placed, a video with no face anywhere,
an unreadable frame (stored blank, without a face) are named in the log, the dataset's description and
`metadata.json`; none stops the build; TFDS writes into an `incomplete.*` folder renamed only at the end;
a build in which no video survives fails instead of writing an empty dataset.
"""

from __future__ import annotations

import dataclasses
import math

import tensorflow_datasets as tfds

from fdp_jax import schema
from fdp_jax.corpora import builder as clip_builder
from fdp_jax.corpora import long_videos
from fdp_jax.corpora import phases
from fdp_jax.preprocess import long_video


@dataclasses.dataclass
class LongVideoConfig(tfds.core.BuilderConfig):
  """frames: 'raw' | 'cropped'; image_size: aligned face side; frame_step: keep every k-th frame (a 200-fps
  corpus at step 7 is ≈ 28.6 fps, the rate spotting methods use)."""
  frames: str = 'raw'
  image_size: int = clip_builder.FDP_SIZE
  frame_step: int = 1


def long_configs(frames=('raw',), frame_steps=(1,)) -> list[LongVideoConfig]:
  """'raw_64', 'cropped_64', 'raw_64_step7', ...; the first is the default. Spotting works on frame
  differences of aligned faces (no flow), so there is one size."""
  configs = []
  for step in frame_steps:
    for kind in frames:
      name = f'{kind}_{clip_builder.FDP_SIZE}' + (f'_step{step}' if step > 1 else '')
      rate = f', every {step}th frame' if step > 1 else ''
      configs.append(LongVideoConfig(name=name, frames=kind, frame_step=step,
                                     description=f'{kind} frames{rate}, aligned to {clip_builder.FDP_SIZE} px.'))
  return configs


def subsample(spec: long_videos.VideoSpec, step: int) -> long_videos.VideoSpec:
  """Every `step`-th frame of the video; each interval keeps the stored frames inside it (onset rounded up,
  offset down, apex to the nearest; an interval shorter than a step keeps the frame nearest its apex)."""
  if step == 1:
    return spec
  intervals = []
  last = (len(spec.frame_paths) - 1) // step
  for i in spec.intervals:
    apex = min(round(i.apex / step), last)
    onset, offset = min(math.ceil(i.onset / step), apex), max(i.offset // step, apex)
    intervals.append(dataclasses.replace(i, onset=onset, apex=apex, offset=min(offset, last)))
  return dataclasses.replace(spec, fps=spec.fps / step, frame_paths=spec.frame_paths[::step],
                             frame_numbers=spec.frame_numbers[::step], intervals=tuple(intervals))


class LongVideoBuilder(clip_builder.CorpusBuilder):
  """The long videos of a licensed corpus; READER is a module with `find_videos(root, frames)` and
  BUILDER_CONFIGS come from `long_configs`."""

  def record_features(self) -> tfds.features.FeaturesDict:
    return schema.long_video_features(self.builder_config.image_size)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    specs, report = self.READER.find_videos(str(dl_manager.manual_dir), self.builder_config.frames)
    return {'train': self._generate_examples([subsample(s, self.builder_config.frame_step) for s in specs],
                                             report)}

  def _generate_examples(self, specs, report: phases.BuildReport):
    cfg = self.builder_config
    options = long_video.TrackingOptions(image_size=cfg.image_size)
    written = 0
    for spec, record, unreadable, error in long_video.preprocess_videos(
        specs, options, self.workers, description=f'{self.name}/{cfg.name}'):
      if error is not None:
        report.skip(spec.video_id, f'{error}; the video and its {len(spec.intervals)} interval(s) are left out')
        continue
      for name, why in unreadable:
        report.repair(spec.video_id, f'frame {name} stored blank and without a face: {why}')
      schema.check_long_video(record, cfg.image_size)
      written += 1
      yield spec.video_id, record
    if written == 0:
      raise RuntimeError(f'{self.name}/{cfg.name}: no video could be built.\n{report.summary()}')
    self._record_report(report, written)
