"""Models: the LGFAT frame encoder, rank pooling, the dynamic-image decoder, FDP (paper design), FDP as
released and MOL as released.

`build_model(config.model, num_classes, image_size)` is the one place a config becomes a Linen module;
`output_dict` gives every FDP's outputs the same structure for the trainer.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from fdp_jax.models.fdp import FDP
from fdp_jax.models.mol import ReleasedMOL
from fdp_jax.models.released import VOLUME_SHAPE, ReleasedFDP

# Config fields copied onto FDP; sequences become tuples so the module stays hashable.
_FDP_FIELDS = ('stem_channels', 'depths', 'channels', 'gfa_channels', 'sr_ratios', 'block_layout',
               'temporal_pooling', 'head_dim', 'mix_ratio', 'lfa_mlp_ratio', 'gfa_mlp_ratio', 'dropout',
               'drop_path_rate', 'feature_dim', 'head_hidden', 'head_dropout',
               'decoder_channels')
_RELEASED_FIELDS = ('stem_channels', 'depths', 'channels', 'drop_path_rate', 'dropout', 'feature_dim',
                    'segnet_channels')


def _fields(model_config, names):
  kwargs = {k: model_config[k] for k in names}
  return {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in kwargs.items()}


def build_model(model_config, num_classes: int, image_size: int) -> nn.Module:
  """The Linen module a model config describes (`configs.fdp_sizes`).

  name 'fdp': `variant='paper'` is the paper design (`FDP`); `variant='released'` is FDP exactly as released
  (`ReleasedFDP`: LFA-only encoder, reshaped frame features, CLS_Net, SegNet), which only exists for
  64×64 frames.
  """
  if model_config.name == 'mol':
    if image_size != 128:
      raise ValueError(f'MOL as released takes 128×128 frames (its F5C maps are 16×16); got {image_size}')
    return ReleasedMOL(num_classes=num_classes, **_fields(model_config, ('dropout', 'knn')))
  if model_config.name != 'fdp':
    raise ValueError(f"unknown model name {model_config.name!r}: the models package builds 'fdp' and 'mol'")
  variant = model_config.get('variant', 'paper')
  if variant == 'released':
    if image_size != VOLUME_SHAPE[0]:
      raise ValueError(f'the released FDP takes {VOLUME_SHAPE[0]}×{VOLUME_SHAPE[0]} frames (its frame '
                       f'features are reshaped into a fixed volume); got image_size {image_size}')
    return ReleasedFDP(num_classes=num_classes, **_fields(model_config, _RELEASED_FIELDS))
  if variant == 'paper':
    return FDP(num_classes=num_classes, image_size=image_size, **_fields(model_config, _FDP_FIELDS))
  raise ValueError(f"unknown FDP variant {variant!r}: use 'paper' or 'released'")


def output_dict(outputs, frames: jax.Array) -> dict[str, jax.Array]:
  """The paper FDP's output dict as is; the released FDP's (logits, dynamic_image) as the same dict, with
  all-zero rank scores (B, T) (it has no rank scorer); MOL's (logits, flow, landmarks) as a dict."""
  if isinstance(outputs, dict):
    return outputs
  if len(outputs) == 3:
    return dict(zip(('logits', 'flow', 'landmarks'), outputs))
  logits, dynamic_image = outputs
  return {'logits': logits, 'dynamic_image': dynamic_image,
          'rank_scores': jnp.zeros(frames.shape[:2], jnp.float32)}
