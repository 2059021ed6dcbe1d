"""The TFDS builder every licensed corpus shares: read the annotation (a corpus reader), label by the
config's class set, preprocess the clips in worker processes, write the shared schema.

A clip that fails (unreadable frame, no face) and an annotation row that cannot be matched to frames are
named, with what to do about them, in the log and in the dataset's description and `metadata.json`, with
counts; they never stop the build. TFDS writes into an `incomplete.*` folder renamed only at the end, so an
interrupted build never reads as a complete dataset; a build in which no clip survives fails instead of
writing an empty one.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

from absl import logging
import tensorflow_datasets as tfds

from fdp_jax import schema
from fdp_jax.corpora import phases
from fdp_jax.corpora import class_sets
from fdp_jax.preprocess import clips

FDP_SIZE, MOL_SIZE = 64, 144


@dataclasses.dataclass
class MECorpusConfig(tfds.core.BuilderConfig):
  """class_set: a key of `class_sets.CLASS_SETS[corpus]`; frames: 'raw' | 'cropped'; image_size: aligned
  face side; with_flow: TV-L1 flow between consecutive aligned frames; modality: SMIC HS/VIS/NIR;
  expression: CAS(ME)² 'micro' | 'macro'; alignment: 'clip' | 'frame' (see preprocess/clips.py)."""
  class_set: str = ''
  frames: str = 'raw'
  image_size: int = FDP_SIZE
  with_flow: bool = False
  modality: str = ''
  expression: str = 'micro'
  alignment: str = 'clip'


def corpus_configs(corpus: str, frames: Sequence[str] = ('raw',), modalities: Sequence[str] = ('',)
                   ) -> list[MECorpusConfig]:
  """Every (modality, class_set, frames) at 64 px (FDP, one alignment per clip) and at 144 px with flow (MOL):
  '*_144_flow' aligns every frame on its own landmarks, as MOL's release does (version 1.1.0; 1.0.0 aligned
  once per clip), '*_144_flow_clip' once per clip. E.g. '5class_raw_64', '5class_cropped_144_flow',
  'hs_3class_cropped_64'. The first is the default."""
  configs = []
  for modality in modalities:
    for class_set in class_sets.CLASS_SETS[corpus]:
      for kind in frames:
        for size, flow, alignment in ((FDP_SIZE, False, 'clip'), (MOL_SIZE, True, 'frame'), (MOL_SIZE, True, 'clip')):
          name = '_'.join(p for p in (modality.lower(), class_set, kind, str(size)) if p)
          name += ('_flow' if flow else '') + ('_clip' if flow and alignment == 'clip' else '')
          classes = ', '.join(class_sets.get(corpus, class_set).classes)
          versions = dict(version='1.1.0', supported_versions=['1.0.0'], release_notes=PER_FRAME_NOTES) \
              if alignment == 'frame' else {}
          configs.append(MECorpusConfig(
              name=name, class_set=class_set, frames=kind, image_size=size, with_flow=flow, modality=modality,
              alignment=alignment, **versions,
              description=f'{class_set} ({classes}), {kind} frames{" " + modality if modality else ""}, '
                          f'aligned to {size} px {"frame by frame" if alignment == "frame" else "once per clip"}'
                          f'{", TV-L1 flow" if flow else ""}.'))
  return configs


PER_FRAME_NOTES = {'1.0.0': 'Aligned once per clip.',
                   '1.1.0': "Every frame aligned on its own landmarks, as MOL's release does (img_pre_dlib per "
                            "frame); the flow is TV-L1 between those aligned frames. '*_144_flow_clip' keeps "
                            '1.0.0\'s once-per-clip alignment.'}


def alignment_of(config: MECorpusConfig, version) -> str:
  """How the clips of `config` are aligned at `version`: a '*_144_flow' dataset of 1.0.0 once per clip."""
  return 'clip' if config.alignment == 'frame' and str(version) == '1.0.0' else config.alignment


class CorpusBuilder(tfds.core.GeneratorBasedBuilder):
  """What the builders of licensed corpora share, clips (`MECorpusBuilder`) and long videos
  (`long_builder.LongVideoBuilder`). Subclasses set CORPUS, READER (a module of fdp_jax.corpora that reads the
  manual folder), DESCRIPTION, MANUAL_DOWNLOAD_INSTRUCTIONS (the reader's INSTRUCTIONS) and BUILDER_CONFIGS,
  and define `record_features`."""

  CORPUS = ''
  READER = None
  DESCRIPTION = ''
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}

  def __init__(self, *, workers: int | None = None, **kwargs):
    self.workers = workers or clips.default_workers()
    super().__init__(**kwargs)

  def record_features(self) -> tfds.features.FeaturesDict:
    """The features of the records the builder config writes."""
    raise NotImplementedError

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(description=self.DESCRIPTION, features=self.record_features(),
                                          metadata=tfds.core.MetadataDict(), homepage=None)

  def _record_report(self, report: phases.BuildReport, written: int) -> None:
    record_report(self, report, written)


class MECorpusBuilder(CorpusBuilder):
  """The clips of a licensed corpus, labelled by the config's class set."""

  @property
  def class_set(self) -> class_sets.ClassSet:
    return class_sets.get(self.CORPUS, self.builder_config.class_set)

  def record_features(self) -> tfds.features.FeaturesDict:
    cfg = self.builder_config
    return schema.me_features(cfg.image_size, self.class_set.classes, cfg.with_flow)

  def find_samples(self, root: str) -> tuple[list[clips.ClipSpec], phases.BuildReport]:
    cfg = self.builder_config
    kwargs = {}
    if cfg.modality:
      kwargs['modality'] = cfg.modality
    if self.CORPUS == 'casme_sq':
      kwargs['expression'] = cfg.expression
    return self.READER.find_samples(root, cfg.frames, **kwargs)

  def labelled_samples(self, root: str) -> tuple[list[tuple[clips.ClipSpec, int]], phases.BuildReport]:
    """[(spec, class index)] under the config's class set, and the report of what was left out."""
    specs, report = self.find_samples(root)
    return label_samples(specs, self.CORPUS, self.class_set, report), report

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    labelled, report = self.labelled_samples(str(dl_manager.manual_dir))
    return {'train': self._generate_examples(labelled, report)}

  def _generate_examples(self, labelled, report: phases.BuildReport):
    cfg = self.builder_config
    options = clips.AlignmentOptions(image_size=cfg.image_size, alignment=alignment_of(cfg, self.version),
                                     with_flow=cfg.with_flow)
    labels = {spec.sample_id: label for spec, label in labelled}
    written = 0
    for spec, record, error in clips.preprocess_clips([s for s, _ in labelled], options, self.workers,
                                                      description=f'{self.name}/{cfg.name}'):
      if error is not None:
        report.skip(spec.sample_id, error)
        continue
      record['label'] = labels[spec.sample_id]
      schema.check_example(record, cfg.image_size, cfg.with_flow)
      written += 1
      yield spec.sample_id, record
    if written == 0:
      raise RuntimeError(f'{self.name}/{cfg.name}: no clip could be built.\n{report.summary()}')
    self._record_report(report, written)


def record_report(builder: tfds.core.DatasetBuilder, report: phases.BuildReport, written: int) -> None:
  """Logs every skip and repair and puts the report in the dataset's metadata and description."""
  for name, why in report.skipped:
    logging.warning('%s skipped %s: %s', builder.name, name, why)
  for name, what in report.repairs:
    logging.info('%s repaired %s: %s', builder.name, name, what)
  builder.info.metadata.clear()
  builder.info.metadata.update({'num_examples': written, **report.as_dict()})
  # The description is what `tfds` and `builder.info` show users; TFDS has no public setter for it.
  builder.info.as_proto.description = (f'{builder.DESCRIPTION}\n\nBuild report: {report.summary()}'
                                       + _next_steps(builder, report))


def _next_steps(builder: tfds.core.DatasetBuilder, report: phases.BuildReport) -> str:
  if not report.skipped and not report.repairs:
    return ''
  # A prepared dataset is never regenerated in place, so "build again" has to say what to delete. During
  # the build `builder.data_dir` is TFDS's incomplete.* folder; the final one is under data_dir_root.
  final = os.path.join(str(builder.data_dir_root), builder.name, builder.builder_config.name)
  return ('\nTo recover a skipped sample or change a repair (rules R1–R4 in fdp_jax/corpora/phases.py), '
          f'do what its line says, delete {final} and build again.')


def label_samples(specs: Sequence[clips.ClipSpec], corpus: str, class_set: class_sets.ClassSet,
                  report: phases.BuildReport) -> list[tuple[clips.ClipSpec, int]]:
  """Maps each spec's emotion to a class; drops what the class set drops, reports unknown emotions.

  Sample ids are the dataset's keys: a second spec with an id already seen is skipped (the readers
  already refuse duplicated rows; this guards the write, where TFDS would fail at the very end).
  """
  labelled, seen = [], set()
  for spec in specs:
    if spec.sample_id in seen:
      report.skip(spec.sample_id, 'a second sample with this id (the first is kept); delete the duplicated '
                                  'annotation row')
      continue
    seen.add(spec.sample_id)
    emotion = class_sets.canonical_emotion(corpus, spec.emotion)
    try:
      label = class_set.label(emotion)
    except KeyError:
      report.skip(spec.sample_id, f'emotion {spec.emotion!r} is not one this corpus uses '
                                  f'({", ".join(sorted(class_set.mapping) + list(class_set.dropped))}); '
                                  'correct it in the annotation')
      continue
    if label is None:
      report.dropped_by_class_set.append((spec.sample_id, emotion))
      continue
    labelled.append((spec, label))
  return labelled
