"""Which model family a config describes, decided in one place: how its module is built, the loss terms it
trains with and their weights, and the outputs the trainer and evaluation read.

  'fdp'           FDP as the paper describes it (`models.fdp.FDP`), `model.name='fdp'`, variant 'paper'
  'fdp_released'  FDP exactly as released (`models.fdp_released.ReleasedFDP`), variant 'released'
  'mol'           MOL (`models.mol.MOL`: as released, or at a width and in target units of the config),
                  `model.name='mol'`
  'spotter'       the snippet scorer of spotting (`models.spotter.Spotter`), `model.name='spotter'`

Every family's outputs become one dict for the trainer: 'logits' (B, C) always; FDP's 'dynamic_image'
(B, H, W) and, for the paper design, 'rank_scores' (B, T); MOL's 'flow' (B, T−1, H, W, 2) and 'landmarks'
(B, T−1, 68, 2).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from fdp_jax import losses, metrics, training_signals
from fdp_jax.models.fdp import FDP
from fdp_jax.models.fdp_released import VOLUME_SHAPE, ReleasedFDP
from fdp_jax.models.lgfat import EncoderSpec
from fdp_jax.models.mol import MOL
from fdp_jax.models.spotter import Spotter


@dataclasses.dataclass(frozen=True)
class Family:
  name: str
  build: Callable[[Any, int, int], nn.Module]       # (config.model, num_classes, image_size) → module
  outputs: Callable[[Any], dict]                    # the module's outputs → the trainer's dict
  losses: Callable[[dict, dict, Any], dict]         # (outputs, batch, loss weights) → terms and 'loss'
  # (outputs, batch) → per-clip evaluation values beside the class probabilities, {name: (B,)}
  eval_metrics: Callable[[dict, dict], dict] = lambda outputs, batch: {}
  # config.model → (outputs, batch) → scalars logged during training beside the loss terms that show the
  # family's auxiliary parts at work (`training_signals`)
  train_metrics: Callable[[Any], Callable[[dict, dict], dict]] = lambda model_config: None

  def loss_weights(self, config) -> Any:
    """The weights `losses` reads (config.loss); the ranking loss weighs nothing without a rank scorer."""
    weights = config.loss.copy_and_resolve_references()
    if 'rank' in weights and (self.name != 'fdp' or config.model.temporal_pooling != 'rank'):
      weights.rank = 0.0
    return weights


def _fdp_module(model_config, num_classes: int, image_size: int) -> FDP:
  return FDP(num_classes=num_classes, image_size=image_size, encoder=EncoderSpec.from_config(model_config),
             temporal_pooling=model_config.temporal_pooling, feature_dim=model_config.feature_dim,
             head_hidden=model_config.head_hidden, head_dropout=model_config.head_dropout,
             decoder_channels=tuple(model_config.decoder_channels))


def _released_fdp_module(model_config, num_classes: int, image_size: int) -> ReleasedFDP:
  if image_size != VOLUME_SHAPE[0]:
    raise ValueError(f'the released FDP takes {VOLUME_SHAPE[0]}×{VOLUME_SHAPE[0]} frames (its frame '
                     f'features are reshaped into a fixed volume); got image_size {image_size}')
  return ReleasedFDP(num_classes=num_classes, encoder=EncoderSpec.from_config(model_config),
                     feature_dim=model_config.feature_dim, segnet_channels=tuple(model_config.segnet_channels))


def _mol_module(model_config, num_classes: int, image_size: int) -> MOL:
  width = model_config.width
  if width == 1.0 and image_size != 128:
    raise ValueError(f'MOL as released takes 128×128 frames (its F5C maps are 16×16); got {image_size}. '
                     f'Other sides are for other widths (model.width, configs/mol_synthetic.py:small)')
  if image_size % 64 or image_size > 256:
    raise ValueError(f'MOL needs a frame side that is a multiple of 64 (its FlowNet halves it six times) and '
                     f'at most 256 (its F5C maps are a side/8, the FCC meta kernels 32 long); got {image_size}')
  return MOL(num_classes=num_classes, dropout=model_config.dropout, knn=model_config.knn, width=width,
             landmark_units=model_config.landmark_units,
             pair_batch_norm=model_config.pair_batch_norm,
             correlation_patch=model_config.correlation_patch,
             mer_reference=model_config.mer_reference, mer_norm=model_config.mer_norm,
             f5c_layer_scale=model_config.f5c_layer_scale)


def _spotter_module(model_config, num_classes: int, image_size: int) -> Spotter:
  del image_size   # any side the conv stack can halve len(channels) times
  return Spotter(num_classes=num_classes, channels=tuple(model_config.channels), hidden=model_config.hidden,
                 dropout=model_config.dropout)


def _mol_eval_metrics(outputs: dict, batch: dict) -> dict:
  """Each clip's `metrics.MOL_CLIP_ERRORS`, when the batch carries the targets: flow end-point error (pixels,
  mean over pixels and pairs, and over the moving pixels only: NaN for a clip with none) and landmark NME
  (mean error over the inter-pupil distance)."""
  if 'flow' not in batch:
    return {}
  error = jnp.linalg.norm(outputs['landmarks'] - batch['landmarks'], axis=-1).mean(-1)
  epe = jnp.linalg.norm(outputs['flow'] - batch['flow'], axis=-1)                        # (B, T−1, S, S)
  moving = jnp.linalg.norm(batch['flow'], axis=-1) > metrics.moving_flow_threshold(batch['flow'].shape[-2])
  count = moving.sum((1, 2, 3))
  return {'flow_epe': epe.mean((1, 2, 3)),
          'flow_epe_moving': jnp.where(count > 0, (epe * moving).sum((1, 2, 3)) / jnp.maximum(count, 1), jnp.nan),
          'landmark_nme': (error / jnp.maximum(losses.interpupil_distance(batch['landmarks']), 1e-3)).mean(-1)}


def _fdp_train_metrics(model_config) -> Callable[[dict, dict], dict]:
  """The decoder's unexplained share of the dynamic images and, with a rank scorer, its Kendall τ."""
  with_scorer = model_config.variant == 'paper' and model_config.temporal_pooling == 'rank'
  return functools.partial(training_signals.fdp_signals, with_scorer=with_scorer)


FAMILIES = {
    'fdp': Family('fdp', _fdp_module, outputs=lambda out: out, losses=losses.fdp_losses,
                  train_metrics=_fdp_train_metrics),
    'fdp_released': Family('fdp_released', _released_fdp_module,
                           outputs=lambda out: dict(zip(('logits', 'dynamic_image'), out)),
                           losses=functools.partial(losses.fdp_losses, with_rank=False),
                           train_metrics=_fdp_train_metrics),
    'mol': Family('mol', _mol_module, outputs=lambda out: dict(zip(('logits', 'flow', 'landmarks'), out)),
                  losses=losses.mol_losses, eval_metrics=_mol_eval_metrics,
                  train_metrics=lambda model_config: training_signals.mol_signals),
    'spotter': Family('spotter', _spotter_module, outputs=lambda out: out, losses=losses.classification_losses),
}


def family(model_config) -> Family:
  """The family of `config.model`: its name ('fdp' | 'mol') and, for FDP, its variant ('paper' |
  'released')."""
  if model_config.name in ('mol', 'spotter'):
    return FAMILIES[model_config.name]
  if model_config.name != 'fdp':
    raise ValueError(f"unknown model name {model_config.name!r}: use 'fdp', 'mol' or 'spotter'")
  variant = model_config.variant
  if variant not in ('paper', 'released'):
    raise ValueError(f"unknown FDP variant {variant!r}: use 'paper' or 'released'")
  return FAMILIES['fdp' if variant == 'paper' else 'fdp_released']


def build_model(model_config, num_classes: int, image_size: int) -> nn.Module:
  """The Linen module `config.model` describes (`configs/fdp_sizes.py`, `configs/mol_recipe.py`)."""
  return family(model_config).build(model_config, num_classes, image_size)
