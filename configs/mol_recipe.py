"""MOL as released (SPEC §4) and its training recipe, shared by configs/mol_*.py.

AdamW lr 1e-4, weight decay 1e-3, batch 32, 1000 steps per fold; CE + 10 · flow MSE + 0.5 · landmark L1/IPD;
8 frames at j + i·(n // 8) with every temporal offset j < n // 8 drawn as augmentation; faces aligned to
144 px and cropped to 128 (random crops in training — the release's five crops per clip —, the centred
crop, offset (8, 8), in evaluation); flow targets between consecutive sampled frames composed from the
stored per-frame flows, landmark targets of the second frame of each pair.
"""

import ml_collections

from configs import cross_validation


def mol_config(builder: str, builder_config: str, num_classes: int) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.progress_bar = True

  data = config.data = ml_collections.ConfigDict()
  data.builder = builder
  data.builder_config = builder_config
  data.data_dir = ''
  data.split = 'train'
  data.num_classes = num_classes
  data.image_size = 128
  data.num_frames = 8
  data.window = 'whole'
  data.frame_sampling = 'released'   # i·(n // 8) + a random offset j < n // 8 in training
  # A clip window shorter than data.num_frames stops the run before any work unless this is True (its
  # frames are then repeated, see input_pipeline.sample_frame_indices).
  data.allow_short_clips = False
  data.temporal_jitter = True
  data.crop_scale = 128 / 144        # 144-px faces, 128-px crops
  data.horizontal_flip = False
  data.frame_reference = 'none'
  data.targets = 'mol'               # flow and landmark targets in every example
  data.num_threads = 2

  model = config.model = ml_collections.ConfigDict()
  model.name = 'mol'
  model.dropout = 0.5
  model.knn = 4

  loss = config.loss = ml_collections.ConfigDict()
  loss.mer = 1.0
  loss.flow = 10.0
  loss.landmarks = 0.5
  loss.class_balance = False         # the release does not balance classes

  train = config.train = ml_collections.ConfigDict()
  train.batch_size = 32
  train.num_steps = 1000
  train.optimizer = 'adamw'
  train.learning_rate = 1e-4
  train.schedule = 'constant'
  train.warmup_steps = 0
  train.end_lr_factor = 1.0
  train.weight_decay = 1e-3
  train.grad_clip_norm = 0.0
  train.ema_decay = 0.0          # > 0: evaluate a moving average of the parameters (train.update_ema)
  train.log_every_steps = 20

  config.eval = ml_collections.ConfigDict()
  config.eval.batch_size = 8
  # Temporal views per test clip, probabilities averaged (1: the sampling rule's own frames).
  config.eval.num_views = 1

  # A fold's state at the released widths (parameters + Adam) is ≈ 1 GB on disk: checkpoint less often.
  config.cv = cross_validation.cv_config(checkpoint_every_steps=200)
  return config


def without_auxiliary_tasks(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The flow/landmark-free ablation: the same network and data, trained on the MER loss alone."""
  config.loss.flow = 0.0
  config.loss.landmarks = 0.0
  return config
