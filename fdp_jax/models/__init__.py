"""Models: the LGFAT frame encoder, rank pooling, the dynamic-image decoder and FDP itself.

`build_model(config.model, num_classes, image_size)` is the one place a config becomes a Linen module.
"""

from __future__ import annotations

import flax.linen as nn

from fdp_jax.models.fdp import FDP

# Config fields copied onto FDP; sequences become tuples so the module stays hashable.
_FDP_FIELDS = ('stem_channels', 'depths', 'channels', 'gfa_channels', 'sr_ratios', 'block_layout',
               'temporal_pooling', 'head_dim', 'mix_ratio', 'lfa_mlp_ratio', 'gfa_mlp_ratio', 'dropout',
               'drop_path_rate', 'feature_dim', 'head_hidden', 'head_dropout',
               'decoder_channels')


def build_model(model_config, num_classes: int, image_size: int) -> nn.Module:
  """The Linen module a model config describes (`configs.fdp_sizes.fdp_model`); `name` picks the family."""
  if model_config.name == 'fdp':
    kwargs = {k: model_config[k] for k in _FDP_FIELDS}
    kwargs = {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in kwargs.items()}
    return FDP(num_classes=num_classes, image_size=image_size, **kwargs)
  raise ValueError(f"unknown model name {model_config.name!r}: the models package builds 'fdp'")
