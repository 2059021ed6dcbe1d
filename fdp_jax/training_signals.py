"""What shows, while a model trains, that its auxiliary parts do their job: scalars computed on each training
batch beside the loss terms (`Family.train_metrics`), logged as interval means like them.

Each is read against a trivial reference, so a curve says more than "it went down":
  rank_tau            FDP's rank scorer: Kendall's τ between each clip's frame scores and the frames' order
                      (1: the scores rise with time, 0: no relation, −1: they fall), mean over the clips.
  di_unexplained      FDP's decoder: its squared error over that of the batch's mean dynamic image, i.e. the
                      share of the analytic dynamic images' spread it does not reproduce (1: no better than
                      one image for every clip, 0: exact).
  flow_epe_vs_zero    MOL's flow: end-point error over that of predicting no motion (1: no better).
  landmark_nme        MOL's landmarks: mean error over the inter-pupil distance.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fdp_jax import metrics


def kendall_tau(scores: jax.Array, mask: jax.Array) -> jax.Array:
  """(B,) Kendall's τ_a between scores (B, T) and the chronological order of the valid frames (mask (B, T)):
  (concordant − discordant pairs) / pairs; tied scores count as neither. 0 for a clip with < 2 valid frames."""
  t = scores.shape[1]
  later = jnp.triu(jnp.ones((t, t), bool), 1)[None]                          # pair (i, j), i before j
  pairs = later & mask[:, :, None] & mask[:, None, :]
  agree = jnp.sign(scores[:, None, :] - scores[:, :, None])                  # sign(s_j − s_i)
  count = pairs.sum((1, 2))
  return jnp.where(pairs, agree, 0.0).sum((1, 2)) / jnp.maximum(count, 1)


def _mean_over(values: jax.Array, weight: jax.Array) -> jax.Array:
  weight = weight.astype(jnp.float32)
  return (values * weight).sum() / jnp.maximum(weight.sum(), 1.0)


def dynamic_image_unexplained(decoded: jax.Array, target: jax.Array, mask: jax.Array) -> jax.Array:
  """Σ (decoded − target)² / Σ (target − the batch's mean target)² over the real clips (mask (B,));
  decoded, target: (B, H, W)."""
  weight = mask.astype(jnp.float32)[:, None, None]
  mean = (target * weight).sum(0) / jnp.maximum(weight.sum(), 1.0)
  error = (jnp.square(decoded - target) * weight).sum()
  spread = (jnp.square(target - mean) * weight).sum()
  return error / jnp.maximum(spread, 1e-12)


def fdp_signals(outputs: dict, batch: dict, with_scorer: bool) -> dict[str, jax.Array]:
  """'di_unexplained' and, `with_scorer`, 'rank_tau' (over the clips with two or more valid frames)."""
  signals = {'di_unexplained': dynamic_image_unexplained(outputs['dynamic_image'], batch['dynamic_image'],
                                                         batch['mask'])}
  if with_scorer:
    valid = batch['frame_mask'] & batch['mask'][:, None]
    signals['rank_tau'] = _mean_over(kendall_tau(outputs['rank_scores'], valid), valid.sum(1) >= 2)
  return signals


def mol_signals(outputs: dict, batch: dict) -> dict[str, jax.Array]:
  """'flow_epe_vs_zero' and 'landmark_nme' over the batch's real clips."""
  epe = jnp.linalg.norm(outputs['flow'] - batch['flow'], axis=-1).mean((1, 2, 3))
  zero = jnp.linalg.norm(batch['flow'], axis=-1).mean((1, 2, 3))
  nme = metrics.landmark_nme(outputs['landmarks'], batch['landmarks'], jnp).mean(-1)
  return {'flow_epe_vs_zero': _mean_over(epe, batch['mask']) / jnp.maximum(_mean_over(zero, batch['mask']), 1e-12),
          'landmark_nme': _mean_over(nme, batch['mask'])}
