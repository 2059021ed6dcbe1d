"""Config errors found before any work starts (no corpus build, no compilation, no run directory).

Unknown keys and wrong types given on the command line are refused by `launch.py` while it parses flags
(the config is locked). What is checked here: values out of range, choices that do not exist (by running the
code that interprets them on a dummy input, so each choice is validated where it is implemented), and, once
the corpus index is read, what depends on the data: the class count and the frames per clip.

`check_before_work` checks one config; `fdp_jax.experiment.check_run` calls it, once, on every config a run
trains (its selection candidates, a spotting run's recogniser, a MOL run's ablation) before the run starts.
"""

from __future__ import annotations

import numpy as np

from fdp_jax import device_input, families, input_pipeline, train
from fdp_jax.models import layers


class ConfigError(ValueError):
  """A config value that cannot run; the message names the key and says what to set."""


def _positive(config, key: str, minimum: int = 1) -> None:
  section, name = key.split('.')
  value = config[section][name]
  if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
    raise ConfigError(f'{key} must be an integer ≥ {minimum}, got {value!r}')


def check_before_work(config) -> None:
  """Raises ConfigError naming the first key of `config` whose value cannot run (its selection grid aside:
  `fdp_jax.cv.selection.check`)."""
  if config.cv.protocol != 'loso':
    raise ConfigError(f"unknown cv.protocol {config.cv.protocol!r}: only 'loso' is implemented")
  for key in ('train.num_steps', 'train.batch_size', 'train.log_every_steps', 'eval.batch_size',
              'eval.num_views', 'data.image_size', 'data.num_frames', 'data.num_classes'):
    _positive(config, key)
  for key in ('cv.checkpoint_every_steps', 'cv.parallel_folds', 'cv.best_test_every_steps'):
    _positive(config, key, minimum=0)
  every, log_every = int(config.cv.checkpoint_every_steps), int(config.train.log_every_steps)
  if every % log_every:
    # A fold is checked for a non-finite loss at logging points; saving only there keeps every
    # checkpoint a checked one.
    raise ConfigError(f'cv.checkpoint_every_steps ({every}) must be a multiple of train.log_every_steps '
                      f'({log_every})')
  if not config.train.learning_rate > 0:
    raise ConfigError(f'train.learning_rate must be > 0, got {config.train.learning_rate!r}')
  if not 0 <= config.train.ema_decay < 1:
    raise ConfigError(f'train.ema_decay must be in [0, 1) (0: no moving average), got {config.train.ema_decay!r}')
  data = config.data
  try:   # the code that interprets each choice, on a dummy clip
    train.make_optimizer(config.train)
    train.resolve_compute_dtype(config.train.compute_dtype)
    families.family(config.model).check_config(config)   # what the family itself refuses
    transform = input_pipeline.ClipTransform(data, train=True)
    transform.window({'onset': 0, 'offset': 1, 'frames': np.zeros((2, 1, 1, 1), np.uint8)})
    input_pipeline.sample_frame_indices(2 * data.num_frames, data.num_frames, data.frame_sampling)
    input_pipeline.subtract_reference(np.zeros((2, 1, 1), np.float32), data.frame_reference)
    if data.normalization not in input_pipeline.NORMALIZATIONS:
      raise ValueError(f'unknown data.normalization {data.normalization!r}: use one of '
                       f'{input_pipeline.NORMALIZATIONS}')
    if data.on_device not in device_input.ON_DEVICE:
      raise ValueError(f'unknown data.on_device {data.on_device!r}: use one of {device_input.ON_DEVICE}')
    layers.resolve_conv_routing(config.train.conv_routing)
  except ValueError as e:
    raise ConfigError(str(e)) from e


def check_against_corpus(config, index) -> None:
  """What depends on the corpus: the class count, and T ≤ the shortest window sampled from (a clip with
  fewer frames than T would repeat frames, feeding a dynamic image and rank pooling duplicate frames)."""
  if len(index.class_names) != config.data.num_classes:
    raise ConfigError(f'config.data.num_classes is {config.data.num_classes} but the corpus has '
                      f'{len(index.class_names)} classes {list(index.class_names)}: set '
                      f'--config.data.num_classes={len(index.class_names)}')
  if config.cv.selection == 'inner_loso' and len(set(index.subjects)) < 3:
    raise ConfigError('cv.selection=inner_loso needs at least 3 subjects: an outer fold\'s inner LOSO holds out '
                      f'one of its training subjects and trains on the others; the corpus has '
                      f'{len(set(index.subjects))}')
  lengths = index.window_lengths if config.data.window == 'onset_offset' else index.num_frames
  t = int(config.data.num_frames)
  short = np.flatnonzero(lengths < t)
  if len(short) and not config.data.allow_short_clips:
    names = ', '.join(f'{index.sample_ids[i]} ({lengths[i]})' for i in short[:10])
    raise ConfigError(
        f'data.num_frames={t} is larger than {len(short)} clip(s) of the corpus ({config.data.window} '
        f'window, frames in brackets): {names}{" …" if len(short) > 10 else ""}. Set '
        f'--config.data.num_frames={int(lengths.min())} or less, use --config.data.window=whole, or accept '
        f'repeated frames with --config.data.allow_short_clips=True.')
