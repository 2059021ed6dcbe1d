"""Approximate rank pooling, differentiable soft ranks and the ranking loss of FDP's rank scorer.

Everything here is a pure function of arrays: jit-able, any number of frames T, no Python loops over
frames. Layouts: scores and masks are (B, T); features are (B, T, ...) with any trailing shape, e.g. frame
feature maps (B, T, h, w, D) or raw frames (B, T, H, W, 1).

Approximate rank pooling (Bilen et al., dynamic image networks) collapses a clip into one "dynamic"
image d = Σ_t α_t f_t with

    α_t = 2(T − t + 1) − (T + 1)(H_T − H_{t−1}),   t = 1..T,  H_t the t-th harmonic number, H_0 = 0,

equivalently α_t = Σ_{k=t..T} (2k − T − 1)/k. The coefficients sum to zero, so a static clip pools to 0.
With H_x = ψ(x + 1) + γ (ψ the digamma function) the same formula is defined at real-valued positions,
which is what lets FDP pool frames at their *soft* ranks and back-propagate into the rank scorer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fdp_jax.preprocess import dynamic_image


def arp_coefficients(num_frames: int) -> jax.Array:
  """The exact Bilen coefficients α_1..α_T for a clip of `num_frames` frames; (T,) float32.

  The float64 numpy coefficients of the input pipeline's dynamic images (`preprocess.dynamic_image`; T is
  static), rounded once to float32: one definition for the targets and the model.
  """
  return jnp.asarray(dynamic_image.arp_coefficients(num_frames), jnp.float32)


def arp_coefficients_at(positions: jax.Array, n: jax.Array, mask: jax.Array | None = None) -> jax.Array:
  """Bilen's α evaluated at real-valued (soft) ranks.

  positions: (B, T) float, 1-based ranks in [1, n] (integers give the exact coefficients).
  n:         (B,) float, number of valid frames of each clip.
  mask:      optional (B, T) bool; masked frames get coefficient 0 whatever their position.
  Returns (B, T) float32: α(p) = 2(n − p + 1) − (n + 1)(ψ(n + 1) − ψ(p)).
  """
  positions = jnp.asarray(positions, jnp.float32)
  n = jnp.asarray(n, jnp.float32)[:, None]
  valid = jnp.ones(positions.shape, bool) if mask is None else jnp.asarray(mask, bool)
  # ψ has a pole at 0 and masked frames carry position 0: feed a harmless 1 there so neither the value
  # nor its gradient becomes inf/NaN (the classic double-`where` guard), then zero those entries.
  safe_p = jnp.where(valid, positions, 1.0)
  safe_n = jnp.maximum(n, 1.0)
  digamma = jax.scipy.special.digamma
  alpha = 2.0 * (safe_n - safe_p + 1.0) - (safe_n + 1.0) * (digamma(safe_n + 1.0) - digamma(safe_p))
  return jnp.where(valid, alpha, 0.0)


def masked_arp_coefficients(mask: jax.Array) -> jax.Array:
  """Coefficients computed among the valid frames only; mask: (B, T) bool → (B, T) float32.

  A clip with n valid frames gets `arp_coefficients(n)` laid on its valid frames in order (each valid
  frame's position is its rank among the valid ones) and 0 on the masked ones.
  """
  mask = jnp.asarray(mask, bool)
  positions = jnp.cumsum(mask, axis=1).astype(jnp.float32)
  n = mask.sum(axis=1).astype(jnp.float32)
  return arp_coefficients_at(positions, n, mask)


def approximate_rank_pooling(features: jax.Array, mask: jax.Array | None = None) -> jax.Array:
  """d = Σ_t α_t f_t; features: (B, T, ...) chronological, mask: optional (B, T) bool → (B, ...).

  Without a mask every clip uses the exact coefficients for T frames. With a mask the masked frames are
  dropped (their content, even NaN padding, cannot leak into d).
  """
  num_frames = features.shape[1]
  if mask is None:
    alpha = jnp.broadcast_to(arp_coefficients(num_frames), features.shape[:2])
  else:
    alpha = masked_arp_coefficients(mask)
    features = jnp.where(_expand_like(mask, features), features, 0.0)
  if features.dtype != jnp.float32:   # mixed precision: the weighted sum in float32, the result as given
    return jnp.einsum('bt,bt...->b...', alpha, features.astype(jnp.float32)).astype(features.dtype)
  return jnp.einsum('bt,bt...->b...', alpha.astype(features.dtype), features)


def soft_rank(scores: jax.Array, mask: jax.Array | None = None, temperature: float = 0.1) -> jax.Array:
  """Pairwise-sigmoid soft ranks r_t = 1 + Σ_{j ≠ t, j valid} σ((s_t − s_j)/τ).

  scores: (B, T) float; mask: optional (B, T) bool. Returns (B, T) float32, 1-based: each valid frame's
  rank lies in [1, n] (n valid frames) and tends to its hard rank as τ → 0; masked frames get 0. The map
  is smooth everywhere, ties included (tied frames share the average of their hard ranks).
  """
  scores = jnp.asarray(scores, jnp.float32)
  valid = jnp.ones(scores.shape, bool) if mask is None else jnp.asarray(mask, bool)
  num_frames = scores.shape[1]
  wins = jax.nn.sigmoid((scores[:, :, None] - scores[:, None, :]) / temperature)   # (B, t, j)
  others = valid[:, None, :] & ~jnp.eye(num_frames, dtype=bool)[None]
  ranks = 1.0 + jnp.sum(jnp.where(others, wins, 0.0), axis=-1)
  return jnp.where(valid, ranks, 0.0)


def ranking_loss(scores: jax.Array, mask: jax.Array | None = None, temperature: float = 0.1) -> jax.Array:
  """Asks the rank scores to rise with time: squared gap between soft and chronological ranks.

  scores: (B, T), mask: optional (B, T) bool. With r = soft_rank(scores, mask, temperature) and t the
  chronological rank of each valid frame among the n valid ones (1..n), a clip's loss is the mean over its
  valid frames of ((r_t − t) / n)²: 0 when the scores rise steeply, largest when they fall. The soft rank
  makes it differentiable everywhere, ties included. Clips with fewer than two valid frames have nothing
  to order and are left out of the batch mean (an all-empty batch gives 0, not NaN).
  """
  valid = jnp.ones(jnp.shape(scores), bool) if mask is None else jnp.asarray(mask, bool)
  ranks = soft_rank(scores, valid, temperature)
  chronological = jnp.cumsum(valid, axis=1).astype(jnp.float32)
  n = valid.sum(axis=1).astype(jnp.float32)
  gap = jnp.where(valid, (ranks - chronological) / jnp.maximum(n, 1.0)[:, None], 0.0)
  per_clip = jnp.sum(gap ** 2, axis=1) / jnp.maximum(n, 1.0)
  has_pairs = n >= 2
  return jnp.sum(jnp.where(has_pairs, per_clip, 0.0)) / jnp.maximum(has_pairs.sum(), 1)


def _expand_like(mask: jax.Array, x: jax.Array) -> jax.Array:
  """(B, T) mask → (B, T, 1, …, 1) so that it broadcasts against x: (B, T, ...)."""
  return jnp.reshape(jnp.asarray(mask, bool), mask.shape + (1,) * (x.ndim - 2))
