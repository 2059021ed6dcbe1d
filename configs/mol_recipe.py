"""MOL as released and its training recipe, shared by configs/mol_*.py.

AdamW lr 1e-4, weight decay 1e-3, batch 32, 1000 steps per fold; CE + 10 · flow MSE + 0.5 · landmark L1/IPD;
8 frames at j + i·(n // 8) with every temporal offset j < n // 8 drawn as augmentation; faces aligned to
144 px and cropped to 128 (random crops in training — the release's five crops per clip —, the centred
crop, offset (8, 8), in evaluation); flow targets between consecutive sampled frames composed from the
stored per-frame flows, landmark targets of the second frame of each pair.
"""

import ml_collections

from configs import base
from fdp_jax import mol_evidence


def mol_config(builder: str, builder_config: str, num_classes: int) -> ml_collections.ConfigDict:
  config = base.base_config(builder, builder_config, num_classes)
  config.settings_chosen_on = 'nothing here: the released MOL code\'s settings, as published'
  data = config.data
  data.image_size = 128
  data.window = 'whole'
  data.frame_sampling = 'released'   # i·(n // 8) + a random offset j < n // 8 in training
  data.crop_scale = 128 / 144        # 144-px faces, 128-px crops
  data.targets = 'mol'               # flow and landmark targets in every example

  config.model = base.model_defaults('mol')     # MOL as released: its width, units and wiring
  config.loss = base.loss_defaults('mol')       # CE + 10 · flow MSE + 0.5 · landmark L1/IPD, unbalanced

  train = config.train
  train.batch_size = 32
  train.num_steps = 1000
  train.schedule = 'constant'
  train.warmup_steps = 0
  train.end_lr_factor = 1.0
  train.grad_clip_norm = 0.0

  config.eval.batch_size = 8
  config.cv.checkpoint_every_steps = 200    # a fold's state at the released widths is ≈ 1 GB
  return config


# The flow/landmark-free ablation (configs/mol_*.py:mer_only): the function a `compare_ablation` run trains
# its ablation with, so that the two are one recipe.
without_auxiliary_tasks = mol_evidence.without_auxiliary_tasks
