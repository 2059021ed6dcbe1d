"""FDP as the paper describes it: frame encoder → rank scorer → temporal pooling → two heads.

  frames (B, T, H, W, 1) ──LGFAT + 1×1 conv/BN, all B·T frames in one call──▶ f (B, T, h, w, D)
  f ──temporal pooling──▶ dynamic representation d (B, h, w, D)
  d ──MER head──▶ logits (B, num_classes);   d ──DynamicImageDecoder──▶ dynamic image (B, H, W)

`temporal_pooling` selects how time is collapsed, so the choices can be compared on equal terms:
  'rank'   the rank scorer gives every frame a score s_t; the rank features f_t·σ(s_t) (frame features
           modulated by their scores) are pooled with Bilen's coefficients. The ranking loss
           (rank_pooling.ranking_loss on 'rank_scores', through differentiable soft ranks) asks the scores
           to rise with time, so that they encode the chronological order of the frames.
  'arp'    plain approximate rank pooling of f, no scorer.
  'static' the single-frame baseline: only the centre frame is encoded, d = its features.
  'conv3d_released' the release's learned pooling (its CLS_Net Conv3d): a 3-D convolution whose
           kernel spans all T frames (`TemporalConv3d`); needs a fixed T (`data.num_frames`).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from fdp_jax.models import rank_pooling
from fdp_jax.models.decoder import DynamicImageDecoder
from fdp_jax.models.layers import batch_norm, conv, dense
from fdp_jax.models.lgfat import LGFAT, EncoderSpec

TEMPORAL_POOLINGS = ('rank', 'arp', 'static', 'conv3d_released')


class RankScorer(nn.Module):
  """Frame features (B, T, h, w, D) → one rank score per frame (B, T): global average pool → MLP."""
  hidden: int

  @nn.compact
  def __call__(self, features: jax.Array) -> jax.Array:
    x = features.mean(axis=(2, 3))
    x = nn.relu(dense(self.hidden, name='fc1')(x))
    return dense(1, name='fc2')(x)[..., 0]


class TemporalConv3d(nn.Module):
  """The release's temporal pooling on this design's frame feature maps: a 3-D convolution whose kernel is
  3×3 in space and spans the whole time axis (no temporal padding), so T frames become one map.

  features (B, T, h, w, D), frame_mask (B, T) bool or None → (B, h, w, D).
  The release (`CLS_Net.conv3d`) runs its (3, 3, 8) kernel over flattened 4096-d frame vectors viewed as a
  64×64×8 volume, which interleaves time with feature dimensions (`fdp_released.released_volume`); here the
  kernel spans time explicitly, with the D feature channels as its input channels — what a 3-D conv over
  (h, w, T) with D channels computes — because the paper design keeps spatial feature maps. Unlike rank
  pooling it is learned and not constrained to Σα = 0. Masked frames are zeroed first, so in eval a
  padding frame cannot influence the output.
  """

  @nn.compact
  def __call__(self, features: jax.Array, frame_mask: jax.Array | None) -> jax.Array:
    b, t, h, w, d = features.shape
    if frame_mask is not None:
      features = jnp.where(frame_mask[:, :, None, None, None], features, 0.0)
    # (B, h, w, T·D), time-major channels: one 3×3 conv over T·D inputs is the (3, 3, T) 3-D conv.
    x = features.transpose(0, 2, 3, 1, 4).reshape(b, h, w, t * d)
    return conv(d, 3, use_bias=True, name='conv')(x)


class MERHead(nn.Module):
  """Dynamic representation (B, h, w, D) → class logits (B, num_classes).

  conv3×3 + BatchNorm + ReLU → 2×2 max pool → flatten → Dense(hidden) → ReLU → Dropout → Dense(classes).
  The head must stay position-aware: the dynamic representation is a weighted difference of frames, so a
  local motion shows up as signed lobes that a global average would cancel, and *where* the face moved
  (brows or lip corners) is what tells the classes apart. The released CLS_Net flattens for the same
  reason.
  """
  hidden: int
  num_classes: int
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = conv(self.hidden, 3, name='conv')(x)
    x = nn.relu(batch_norm(train, 'norm')(x))
    if min(x.shape[1:3]) >= 2:
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = nn.relu(dense(self.hidden, name='fc1')(x.reshape(x.shape[0], -1)))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return dense(self.num_classes, name='fc2')(x)


class FDP(nn.Module):
  """The paper-design FDP. `encoder` holds the frame encoder's hyper-parameters, the other fields the rest
of the network's; configs name them alike (`configs/fdp_sizes.py`, `fdp_jax.families`).

  __call__(frames, frame_mask=None, *, train):
    frames:     (B, T, H, W, 1) float32 in [-1, 1], chronological; H = W = image_size.
    frame_mask: optional (B, T) bool, False on padding frames (they cannot influence the outputs in eval
                mode; in training they still enter the encoder's BatchNorm batch statistics).
  Returns {'logits': (B, num_classes) float32, 'dynamic_image': (B, H, W) float32 in [0, 1],
           'rank_scores': (B, T) float32} — the scores are 0 on masked frames and all zeros for the
  poolings without a scorer, so the output structure never depends on the pooling. Dropout and stochastic
  depth draw from the 'dropout' RNG stream.
  """
  num_classes: int
  image_size: int
  encoder: EncoderSpec = EncoderSpec()
  temporal_pooling: str = 'rank'
  feature_dim: int = 64
  head_hidden: int = 64
  head_dropout: float = 0.3
  decoder_channels: Sequence[int] = (32, 16, 8)

  @nn.compact
  def __call__(self, frames: jax.Array, frame_mask: jax.Array | None = None, *,
               train: bool) -> dict[str, jax.Array]:
    if self.temporal_pooling not in TEMPORAL_POOLINGS:
      raise ValueError(f'temporal_pooling must be one of {TEMPORAL_POOLINGS}, got {self.temporal_pooling!r}')
    b, t = frames.shape[:2]
    if frame_mask is not None:
      frame_mask = jnp.asarray(frame_mask, bool)

    if self.temporal_pooling == 'static':
      # Encode the centre frame only: the baseline sees no temporal information and costs 1/T.
      frames = _centre_frame(frames, frame_mask)[:, None]
    features = self._encode(frames, train)                          # (B, T', h, w, D)

    rank_scores = jnp.zeros((b, t), jnp.float32)
    if self.temporal_pooling == 'static':
      dynamic = features[:, 0]
    elif self.temporal_pooling == 'arp':
      dynamic = rank_pooling.approximate_rank_pooling(features, frame_mask)
    elif self.temporal_pooling == 'conv3d_released':
      dynamic = TemporalConv3d(name='temporal_conv3d')(features, frame_mask)
    else:
      valid = jnp.ones((b, t), bool) if frame_mask is None else frame_mask
      scores = RankScorer(self.head_hidden, name='rank_scorer')(features)
      rank_features = features * jax.nn.sigmoid(scores)[:, :, None, None, None]
      # Pooled with the chronological coefficients, not at the soft ranks of the scores: at initialisation
      # the scores of near-identical ME frames tie, every soft rank is (n + 1) / 2 and coefficients taken
      # there would all be equal — pooling would average the clip and erase its motion. The ranking loss
      # (on the soft ranks) teaches the scorer the order instead.
      dynamic = rank_pooling.approximate_rank_pooling(rank_features, valid)
      rank_scores = jnp.where(valid, scores, 0.0)

    # The pooled representation is a weighted *difference* of frame features (Σα = 0): on micro-expressions
    # it is orders of magnitude smaller than the features themselves, as the min-max scaled dynamic image
    # is of its raw values. Normalising it lets both heads see the motion at unit scale.
    dynamic = batch_norm(train, 'dynamic_norm')(dynamic)
    logits = MERHead(self.head_hidden, self.num_classes, self.head_dropout, name='mer_head')(
        dynamic, train=train)
    dynamic_image = DynamicImageDecoder(tuple(self.decoder_channels), self.image_size,
                                        name='dynamic_image_decoder')(dynamic, train=train)
    return {'logits': logits, 'dynamic_image': dynamic_image, 'rank_scores': rank_scores}

  def _encode(self, frames: jax.Array, train: bool) -> jax.Array:
    """(B, T, H, W, 1) → frame features (B, T, h, w, feature_dim); one encoder call over all B·T frames."""
    b, t = frames.shape[:2]
    x = LGFAT(self.encoder, name='frame_encoder')(frames.reshape((b * t,) + frames.shape[2:]), train=train)
    # Under bfloat16 compute the encoder (nearly all of the FLOPs) stays in bfloat16, but the frame features
    # go on in float32: rank pooling takes a weighted difference of near-identical ME frames, which
    # bfloat16's 8-bit mantissa rounds away (a bfloat16 synthetic LOSO lost 0.05 UF1; see benchmarks/README).
    x = x.astype(jnp.float32)
    x = conv(self.feature_dim, 1, name='feature_proj_conv')(x)
    x = batch_norm(train, 'feature_proj_norm')(x)
    return x.reshape((b, t) + x.shape[1:])


def _centre_frame(frames: jax.Array, frame_mask: jax.Array | None) -> jax.Array:
  """(B, T, H, W, C) → (B, H, W, C): frame T // 2, or with a mask the valid frame of 0-based rank n // 2
  among the n valid ones (the same frame when all are valid; frame 0 when none is)."""
  b, t = frames.shape[:2]
  if frame_mask is None:
    return frames[:, t // 2]
  rank = jnp.cumsum(frame_mask, axis=1) - 1
  target = frame_mask.sum(axis=1, keepdims=True) // 2
  index = jnp.argmax(frame_mask & (rank == target), axis=1)
  return jnp.take_along_axis(frames, index[:, None, None, None, None], axis=1)[:, 0]
