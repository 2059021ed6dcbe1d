"""Which model family a config describes, decided in one place: everything that differs between FDP, MOL and
the spotter. How its module is built, the loss terms it trains with and their weights, the scalars logged
while it trains, the per-clip values evaluated beside the class probabilities and the line they add to the
printed aggregate, what a prediction picture shows, what runs after the folds, and the released weights it
loads.

  'fdp'           FDP as the paper describes it (`models.fdp.FDP`), `model.name='fdp'`, variant 'paper'
  'fdp_released'  FDP exactly as released (`models.fdp_released.ReleasedFDP`), variant 'released'
  'mol'           MOL (`models.mol.MOL`: as released, or at a width and in target units of the config),
                  `model.name='mol'`
  'spotter'       the snippet scorer of spotting (`models.spotter.Spotter`), `model.name='spotter'`

Every family's module returns one dict of outputs: 'logits' (B, C) always; FDP's 'dynamic_image' (B, H, W)
and, for the paper design, 'rank_scores' (B, T); MOL's 'flow' (B, T−1, H, W, 2) and 'landmarks' (B, T−1, 68, 2).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from fdp_jax import losses, metrics, mol_evidence, training_signals
from fdp_jax.models.fdp import FDP
from fdp_jax.models.fdp_released import VOLUME_SHAPE, ReleasedFDP
from fdp_jax.models.lgfat import EncoderSpec
from fdp_jax.models.mol import MOL
from fdp_jax.models.released_weights import FDP_WEIGHTS, MOL_WEIGHTS, ReleasedWeights
from fdp_jax.models.spotter import Spotter


@dataclasses.dataclass(frozen=True)
class Family:
  name: str
  build: Callable[[Any, int, int], nn.Module]       # (config.model, num_classes, image_size) → module
  losses: Callable[[dict, dict, Any], dict]         # (outputs, batch, loss weights) → terms and 'loss'
  # (outputs, batch) → per-clip evaluation values beside the class probabilities, {name: (B,)}
  eval_metrics: Callable[[dict, dict], dict] = lambda outputs, batch: {}
  # config.model → (outputs, batch) → scalars logged during training beside the loss terms that show the
  # family's auxiliary parts at work (`training_signals`)
  train_metrics: Callable[[Any], Callable[[dict, dict], dict]] = lambda model_config: None
  # results.json's aggregate → the lines `run_results.markdown_table` prints for the family's evaluation values
  aggregate_lines: Callable[[dict], list] = lambda aggregate: []
  # (config, workdir, results, fold_model) → the sections the family adds to results.json once every fold is
  # done (on the first process; fold_model: `inference.fold_predictor`): MOL's evidence
  after_folds: Callable[[Any, str, dict, Callable], dict] = lambda config, workdir, results, fold_model: {}
  # What `fdp_jax.tools.predict` draws beside the contact sheet: the analytic and the decoded
  # 'dynamic_image', MOL's 'flow_landmarks', or nothing
  prediction_picture: str | None = None
  recognition: bool = True                          # classifies clips (the spotter scores snippets)
  variant: str = ''                                 # FDP's `model.variant` ('paper' | 'released'), as recorded
  released_weights: ReleasedWeights | None = None   # the released PyTorch model it loads
  # config → None, or ValueError for a combination of settings the family cannot run as asked
  check_config: Callable[[Any], None] = lambda config: None

  def loss_weights(self, config) -> Any:
    """The weights `losses` reads (config.loss); the ranking loss weighs nothing without a rank scorer."""
    weights = config.loss.copy_and_resolve_references()
    if 'rank' in weights and (self.name != 'fdp' or config.model.temporal_pooling != 'rank'):
      weights.rank = 0.0
    return weights


def _check_single_frame_baseline(config) -> None:
  """The 'static' pooling is the single-frame baseline only on raw frames: a frame minus a reference
  of its clip already carries the clip's motion."""
  if config.model.temporal_pooling == 'static' and config.data.frame_reference != 'none':
    raise ValueError("model.temporal_pooling='static' is the single-frame baseline: it needs "
                     "data.frame_reference='none' (a frame minus its clip's reference shows the motion). "
                     'Use --config=configs/synthetic.py:static')


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
  (mean error over the inter-pupil distance, `metrics.landmark_nme`)."""
  if 'flow' not in batch:
    return {}
  epe = jnp.linalg.norm(outputs['flow'] - batch['flow'], axis=-1)                        # (B, T−1, S, S)
  moving = jnp.linalg.norm(batch['flow'], axis=-1) > metrics.moving_flow_threshold(batch['flow'].shape[-2])
  count = moving.sum((1, 2, 3))
  return {'flow_epe': epe.mean((1, 2, 3)),
          'flow_epe_moving': jnp.where(count > 0, (epe * moving).sum((1, 2, 3)) / jnp.maximum(count, 1), jnp.nan),
          'landmark_nme': metrics.landmark_nme(outputs['landmarks'], batch['landmarks'], jnp).mean(-1)}


def _mol_aggregate_lines(aggregate: dict) -> list[str]:
  """The flow EPE and landmark NME over all test clips, when the run evaluated them (data.targets 'mol')."""
  if 'flow_epe' not in aggregate:
    return []
  a = aggregate
  moving = f" ({a['flow_epe_moving']:.3f} px on moving pixels)" if 'flow_epe_moving' in a else ''
  return [f"MOL auxiliary tasks over all test clips: flow end-point error {a['flow_epe']:.3f} px{moving}, "
          f"landmark NME {a['landmark_nme']:.4f} (mean error / inter-pupil distance)."]


def _mol_after_folds(config, workdir: str, results: dict, fold_model: Callable) -> dict:
  """With its flow and landmark targets, the references on the run's test clips and its pictures
  (`mol_evidence.evidence`)."""
  if config.data.targets != 'mol':
    return {}
  return mol_evidence.evidence(config, workdir, results, fold_model)


def _fdp_train_metrics(model_config) -> Callable[[dict, dict], dict]:
  """The decoder's unexplained share of the dynamic images and, with a rank scorer, its Kendall τ."""
  with_scorer = model_config.variant == 'paper' and model_config.temporal_pooling == 'rank'
  return functools.partial(training_signals.fdp_signals, with_scorer=with_scorer)


FAMILIES = {
    'fdp': Family('fdp', _fdp_module, losses=losses.fdp_losses, train_metrics=_fdp_train_metrics,
                  prediction_picture='dynamic_image', variant='paper',
                  check_config=_check_single_frame_baseline),
    'fdp_released': Family('fdp_released', _released_fdp_module,
                           losses=functools.partial(losses.fdp_losses, with_rank=False),
                           train_metrics=_fdp_train_metrics, prediction_picture='dynamic_image',
                           released_weights=FDP_WEIGHTS, variant='released'),
    'mol': Family('mol', _mol_module, losses=losses.mol_losses, eval_metrics=_mol_eval_metrics,
                  train_metrics=lambda model_config: training_signals.mol_signals,
                  aggregate_lines=_mol_aggregate_lines, after_folds=_mol_after_folds,
                  prediction_picture='flow_landmarks', released_weights=MOL_WEIGHTS),
    'spotter': Family('spotter', _spotter_module, losses=losses.classification_losses, recognition=False),
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


def aggregate_lines(aggregate: dict) -> list[str]:
  """The lines every family adds to the printed aggregate of results.json (`Family.aggregate_lines`): a
  results.json does not name its family, and each family's lines appear only where its values are."""
  return [line for f in FAMILIES.values() for line in f.aggregate_lines(aggregate)]
