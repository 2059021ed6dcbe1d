"""FDP (paper design, released widths) on a licensed corpus, LOSO — shared by configs/casme2.py, samm.py,
casme_sq.py, casme3.py, smic.py and megc2019.py.

The schedule follows the released recipe's scale (batch 36, 500 steps per fold, lr 1e-4) with the paper
design's losses and the honest defaults of this project (class-balanced CE, end-of-schedule selection,
no test-split statistics). It has not been tuned on the real corpora: none is available to the project.
"""

import re

import ml_collections

from configs import cross_validation, fdp_sizes
from fdp_jax.corpora import protocols


def corpus_config(builder: str, builder_config: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """`arg` picks the builder config (e.g. '5class_cropped_64'); the default is the FDP-sized 64 px one.
  The number of classes follows the config's protocol (the '<n>class' part of its name)."""
  builder_config = arg or builder_config
  protocol = re.search(r'\d+class', builder_config)
  if protocol is None:
    raise ValueError(f'builder config {builder_config!r} names no class protocol (e.g. 5class_raw_64)')
  num_classes = len(protocols.get(builder, protocol.group(0)).classes)
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.progress_bar = True

  data = config.data = ml_collections.ConfigDict()
  data.builder = builder
  data.builder_config = builder_config
  data.data_dir = ''            # '' = $TFDS_DATA_DIR or ~/tensorflow_datasets
  data.split = 'train'
  data.num_classes = num_classes
  data.image_size = 64
  data.num_frames = 8
  data.window = 'onset_offset'
  data.frame_sampling = 'segments'
  # A clip window shorter than data.num_frames stops the run before any work unless this is True (its
  # frames are then repeated, see input_pipeline.sample_frame_indices).
  data.allow_short_clips = False
  data.temporal_jitter = True
  data.crop_scale = 1.0
  data.horizontal_flip = False
  data.num_threads = 2
  data.frame_reference = 'none'     # the frames as they are (the paper's and the release's input)

  config.model = fdp_sizes.fdp_model('released')

  loss = config.loss = ml_collections.ConfigDict()
  loss.mer = 1.0
  loss.dynamic_image = 10.0
  loss.rank = 0.1
  loss.rank_temperature = 0.1
  loss.class_balance = True

  train = config.train = ml_collections.ConfigDict()
  train.batch_size = 36
  train.num_steps = 500
  train.optimizer = 'adamw'
  train.learning_rate = 1e-4
  train.schedule = 'warmup_cosine'
  train.warmup_steps = 25
  train.end_lr_factor = 0.02
  train.weight_decay = 1e-3
  train.grad_clip_norm = 1.0
  train.ema_decay = 0.0          # > 0: evaluate a moving average of the parameters (train.update_ema)
  train.log_every_steps = 20

  config.eval = ml_collections.ConfigDict()
  config.eval.batch_size = 36
  # Temporal views per test clip, probabilities averaged (1: the sampling rule's own frames).
  config.eval.num_views = 1

  # A fold's state at the released widths (parameters + Adam) is ≈ 1 GB on disk: checkpoint less often.
  config.cv = cross_validation.cv_config(checkpoint_every_steps=200)
  return config
