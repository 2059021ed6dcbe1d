"""The loss terms of the model families, per clip of a batch and averaged over its real clips.

`batch['mask']` is False on padding clips, which contribute nothing; an optional `batch['class_weight']` (B,)
scales each clip's cross-entropy (`balanced_class_weights`). Every function returns the terms by name
('loss_mer', …) and their weighted sum 'loss'.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fdp_jax import metrics
from fdp_jax.models import rank_pooling


def _clip_mean(per_clip: jax.Array, batch: dict) -> jax.Array:
  """The mean of a (B,) per-clip value over the batch's real clips."""
  weight = batch['mask'].astype(jnp.float32)
  return (per_clip * weight).sum() / jnp.maximum(weight.sum(), 1.0)


def _cross_entropy(outputs: dict, batch: dict) -> jax.Array:
  """(B,) cross-entropy of the logits, scaled by `batch['class_weight']` when the batch has it."""
  ce = optax.softmax_cross_entropy_with_integer_labels(outputs['logits'], batch['label'])
  if 'class_weight' in batch:
    ce = ce * batch['class_weight']
  return ce


def fdp_losses(outputs: dict, batch: dict, loss_config, with_rank: bool = True) -> dict[str, jax.Array]:
  """FDP's terms: cross-entropy on the labels ('loss_mer'), MSE of the decoded dynamic image against the
  analytic one ('loss_dynamic_image') and, `with_rank`, the ranking loss of the rank scores ('loss_rank',
  `rank_pooling.ranking_loss`); 'loss' = mer·CE + dynamic_image·MSE + rank·ranking loss (`loss_config`'s
  weights)."""
  mse = jnp.mean(jnp.square(outputs['dynamic_image'] - batch['dynamic_image']), axis=(1, 2))
  terms = {'loss_mer': _clip_mean(_cross_entropy(outputs, batch), batch),
           'loss_dynamic_image': _clip_mean(mse, batch)}
  loss = loss_config.mer * terms['loss_mer'] + loss_config.dynamic_image * terms['loss_dynamic_image']
  if with_rank:
    frame_mask = batch['frame_mask'] & batch['mask'][:, None]
    terms['loss_rank'] = rank_pooling.ranking_loss(outputs['rank_scores'], frame_mask,
                                                   loss_config.rank_temperature)
    loss = loss + loss_config.rank * terms['loss_rank']
  terms['loss'] = loss
  return terms


def classification_losses(outputs: dict, batch: dict, loss_config) -> dict[str, jax.Array]:
  """The class cross-entropy alone ('loss_mer'; the spotter's none / micro / macro); 'loss' = mer·CE."""
  terms = {'loss_mer': _clip_mean(_cross_entropy(outputs, batch), batch)}
  terms['loss'] = loss_config.mer * terms['loss_mer']
  return terms


def mol_losses(outputs: dict, batch: dict, loss_config) -> dict[str, jax.Array]:
  """MOL's terms: cross-entropy ('loss_mer'), the flow MSE averaged over the T−1 pairs ('loss_flow') and the
  L1 landmark error over the inter-pupil distance, per landmark (the release's Σ L1 / IPD / (B·68)) and
  averaged over pairs ('loss_landmarks'); 'loss' = mer·CE + flow·MSE + landmarks·L1/IPD."""
  flow_mse = jnp.mean(jnp.square(outputs['flow'] - batch['flow']), axis=(1, 2, 3, 4))             # (B,)
  target = batch['landmarks']
  ipd = jnp.maximum(metrics.interpupil_distance(target, jnp), 1e-3)                                # (B, T−1)
  l1 = jnp.abs(outputs['landmarks'] - target).sum(-1).mean(-1) / ipd                                # (B, T−1)
  terms = {
      'loss_mer': _clip_mean(_cross_entropy(outputs, batch), batch),
      'loss_flow': _clip_mean(flow_mse, batch),
      'loss_landmarks': _clip_mean(l1.mean(-1), batch),
  }
  terms['loss'] = (loss_config.mer * terms['loss_mer'] + loss_config.flow * terms['loss_flow']
                   + loss_config.landmarks * terms['loss_landmarks'])
  return terms


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
  """(C,) float32 inverse-frequency weights N / (C · n_c) of a training set's labels, so that every class
  carries the same total weight and the mean weight over the training examples is 1 (the loss keeps its
  scale). A class absent from the training set gets weight 0 (it has no examples to weigh)."""
  counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes).astype(np.float64)
  present = counts > 0
  weights = np.zeros(num_classes)
  weights[present] = counts.sum() / (present.sum() * counts[present])
  return weights.astype(np.float32)
