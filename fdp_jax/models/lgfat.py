"""LGFAT: the local-global feature-aware transformer that encodes every frame of a clip.

A Next-ViT-style hybrid: a convolutional stem, then stages of LFA blocks (local feature-aware: a dense
3×3 "multi-head convolutional attention" and a convolutional MLP) and, in the paper layout, one GFA block
(global feature-aware: efficient multi-head self-attention beside a convolutional branch) closing each
stage. The released FDP code builds the GFA blocks but never calls them, so `block_layout='released'` is
LFA-only and its parameters map one to one onto the released `frame_rep` state_dict.

Layout is NHWC throughout: x is (N, H, W, C) float32. Submodule names follow the released state_dict
(`stem_0.conv`, `features_3.patch_embed.norm`, `e_mhsa.q`, …) so that weight conversion is a renaming
plus a transpose of conv kernels (OIHW → HWIO) and linear weights ((out, in) → (in, out)).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from fdp_jax.models.layers import ConvBNReLU, DropPath, batch_norm, conv, dense


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
  """The frame encoder's hyper-parameters, declared once: model configs use the same key names
  (`configs/fdp_sizes.py`) and `from_config` reads them. Defaults are the released widths and depths."""
  stem_channels: tuple[int, int, int] = (64, 32, 64)
  depths: tuple[int, ...] = (3, 4, 10, 3)
  channels: tuple[int, ...] = (96, 192, 384, 768)
  gfa_channels: tuple[int, ...] = (128, 256, 512, 1024)   # the closing GFA block's width per stage (paper)
  sr_ratios: tuple[int, ...] = (8, 4, 2, 1)               # E-MHSA's spatial reduction per stage (paper)
  # 'paper': every stage is `depth` LFA blocks then one GFA block; 'released': LFA only, as the released
  # code actually runs (it builds the GFA blocks but never calls them).
  block_layout: str = 'paper'
  head_dim: int = 8
  mix_ratio: float = 0.75            # share of a GFA block's width given to E-MHSA
  lfa_mlp_ratio: float = 3
  gfa_mlp_ratio: float = 2
  dropout: float = 0.0               # inside the blocks' MLPs and E-MHSA
  drop_path_rate: float = 0.1        # stochastic depth, rising linearly over the blocks to this rate

  @classmethod
  def from_config(cls, model_config: Any) -> 'EncoderSpec':
    """The spec of a model config: its keys named like the fields (lists become tuples), defaults for
    the others."""
    values = {}
    for field in dataclasses.fields(cls):
      if field.name in model_config:
        value = model_config[field.name]
        values[field.name] = tuple(value) if isinstance(value, (list, tuple)) else value
    return cls(**values)


def make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
  """Round a channel count to the nearest multiple of `divisor`, never below `min_value` (default
  divisor) and never more than 10% below v (the MobileNet / Next-ViT rule the release uses)."""
  min_value = divisor if min_value is None else min_value
  new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
  if new_v < 0.9 * v:
    new_v += divisor
  return new_v


def avg_pool_2x2_ceil(x: jax.Array) -> jax.Array:
  """2×2 average pool, stride 2, ceil mode without counting padding (PyTorch's AvgPool2d(2, 2, ceil_mode=
  True, count_include_pad=False)); x: (N, H, W, C) → (N, ⌈H/2⌉, ⌈W/2⌉, C). Even maps are a reshape + mean,
  which XLA:CPU runs (forward and backward) far faster than a reduce-window."""
  n, h, w, c = x.shape
  if h % 2 == 0 and w % 2 == 0:
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
  return nn.avg_pool(x, (2, 2), strides=(2, 2), padding=((0, h % 2), (0, w % 2)), count_include_pad=False)


class PatchEmbed(nn.Module):
  """Resolution / width change at a block's entrance; x: (N, H, W, C_in) → (N, H', W', out_channels).

  stride 2: 2×2 average pool (ceil mode: an odd edge is averaged over the pixels that exist), 1×1 conv,
  BatchNorm; stride 1 with a width change: 1×1 conv + BatchNorm; otherwise the identity.
  """
  out_channels: int
  stride: int = 1
  bn_groups: int | None = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    if self.stride == 2:
      x = avg_pool_2x2_ceil(x)
    elif self.out_channels == x.shape[-1]:
      return x
    x = conv(self.out_channels, 1, name='conv')(x)
    return batch_norm(train, 'norm', self.bn_groups)(x)


class MHCA(nn.Module):
  """The released "multi-head convolutional attention": a single dense 3×3 conv (groups 1, no bias).

  x: (N, H, W, C) → (N, H, W, C).
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return conv(x.shape[-1], 3, name='group_conv3x3')(x)


class ConvMLP(nn.Module):
  """1×1 conv → ReLU → dropout → 1×1 conv → dropout, hidden width make_divisible(C·mlp_ratio, 32).

  x: (N, H, W, C) → (N, H, W, C).
  """
  mlp_ratio: float
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    channels = x.shape[-1]
    x = conv(make_divisible(channels * self.mlp_ratio, 32), 1, use_bias=True, name='conv1')(x)
    x = nn.Dropout(self.dropout, deterministic=not train)(nn.relu(x))
    x = conv(channels, 1, use_bias=True, name='conv2')(x)
    return nn.Dropout(self.dropout, deterministic=not train)(x)


class LFABlock(nn.Module):
  """Local feature-aware block; x: (N, H, W, C_in) → (N, H/stride, W/stride, out_channels).

  x = PatchEmbed(x); x += DropPath(MHCA(x)); x += DropPath(MLP(BN(x))).
  """
  out_channels: int
  stride: int = 1
  drop_path: float = 0.0
  mlp_ratio: float = 3
  dropout: float = 0.0
  bn_groups: int | None = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = PatchEmbed(self.out_channels, self.stride, self.bn_groups, name='patch_embed')(x, train=train)
    x = x + DropPath(self.drop_path)(MHCA(name='mhca')(x), train=train)
    out = batch_norm(train, 'norm', self.bn_groups)(x)
    return x + DropPath(self.drop_path)(
        ConvMLP(self.mlp_ratio, self.dropout, name='mlp')(out, train=train), train=train)


class EMHSA(nn.Module):
  """Efficient multi-head self-attention over tokens; x: (N, L, C) → (N, L, C).

  Queries come from every token; keys and values from the tokens spatially reduced by a 1-D average pool
  of size sr² over the token axis (row-major h·w order, as the release flattens NCHW maps) followed by
  BatchNorm when sr > 1. C // head_dim heads, scale head_dim^-0.5.
  """
  head_dim: int = 8
  sr_ratio: int = 1
  dropout: float = 0.0
  bn_groups: int | None = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    n, length, channels = x.shape
    if channels % self.head_dim:
      raise ValueError(f'E-MHSA width {channels} is not a multiple of head_dim {self.head_dim}')
    heads = channels // self.head_dim
    q = dense(channels, name='q')(x).reshape(n, length, heads, self.head_dim)
    kv = x
    if self.sr_ratio > 1:
      # PyTorch's AvgPool1d (floor mode) drops a ragged tail and fails when L < sr²; clamping the window
      # to L instead lets small test images (e.g. 32 px) reduce to one global token.
      window = min(self.sr_ratio ** 2, length)
      # Non-overlapping windows as reshape + mean: the same numbers as a pooling op, but XLA:CPU's
      # reduce-window (and its gradient) is many times slower. The floor mode's ragged tail is dropped.
      kept = length // window
      kv = kv[:, :kept * window].reshape(n, kept, window, channels).mean(axis=2)
      kv = batch_norm(train, 'norm', self.bn_groups)(kv)
    k = dense(channels, name='k')(kv).reshape(n, -1, heads, self.head_dim)
    v = dense(channels, name='v')(kv).reshape(n, -1, heads, self.head_dim)
    logits = jnp.einsum('nqhd,nkhd->nhqk', q, k) * self.head_dim ** -0.5
    weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(v.dtype)   # float32 under bf16
    out = jnp.einsum('nhqk,nkhd->nqhd', weights, v).reshape(n, length, channels)
    out = dense(channels, name='proj')(out)
    return nn.Dropout(self.dropout, deterministic=not train)(out)


def gfa_split(out_channels: int, mix_ratio: float, head_dim: int) -> tuple[int, int]:
  """(mhsa_c, mhca_c): how a GFA block of width `out_channels` divides between its two branches.

  The release rounds the attention width to a multiple of 32: mhsa_c = make_divisible(int(out·mix), 32),
  e.g. 128 → (96, 32), 1024 → (768, 256). Narrow CPU-sized blocks (out ≤ 96) would then leave the conv
  branch no channels (64 → (64, 0), 48 → (64, −16)); there the rounding unit falls back to head_dim, which
  keeps E-MHSA's width a whole number of heads: 48 → (40, 8), 64 → (48, 16). Released widths never take
  the fallback.
  """
  for divisor in (32, head_dim):
    mhsa_c = make_divisible(int(out_channels * mix_ratio), divisor)
    if 0 < mhsa_c < out_channels and mhsa_c % head_dim == 0:
      return mhsa_c, out_channels - mhsa_c
  raise ValueError(f'a GFA block of width {out_channels} cannot be split by mix ratio {mix_ratio} into '
                   f'an attention branch of whole {head_dim}-channel heads and a non-empty conv branch')


class GFABlock(nn.Module):
  """Global feature-aware block; x: (N, H, W, C_in) → (N, H/stride, W/stride, out_channels).

  The width splits into an attention part mhsa_c = make_divisible(int(out·mix_ratio), 32) and a
  convolutional part mhca_c = out − mhsa_c (see `gfa_split` for narrow blocks):
    x = PatchEmbed(C_in → mhsa_c, stride); x += DropPath(E-MHSA(tokens of BN1(x)));
    o = PatchEmbed(mhsa_c → mhca_c)(x); o += DropPath(MHCA(o)); x = concat(x, o);
    x += DropPath(MLP(BN2(x))).
  As in Next-ViT, the two branch drop-path rates are the block's rate scaled by mix_ratio and
  1 − mix_ratio (only training is affected).
  """
  out_channels: int
  stride: int = 1
  sr_ratio: int = 1
  drop_path: float = 0.0
  mlp_ratio: float = 2
  head_dim: int = 8
  mix_ratio: float = 0.75
  dropout: float = 0.0
  bn_groups: int | None = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    mhsa_c, mhca_c = gfa_split(self.out_channels, self.mix_ratio, self.head_dim)
    g = self.bn_groups
    x = PatchEmbed(mhsa_c, self.stride, g, name='patch_embed')(x, train=train)
    n, h, w, _ = x.shape
    tokens = batch_norm(train, 'norm1', g)(x).reshape(n, h * w, mhsa_c)
    attn = EMHSA(self.head_dim, self.sr_ratio, self.dropout, g, name='e_mhsa')(tokens, train=train)
    x = x + DropPath(self.drop_path * self.mix_ratio)(attn.reshape(n, h, w, mhsa_c), train=train)
    o = PatchEmbed(mhca_c, bn_groups=g, name='projection')(x, train=train)
    o = o + DropPath(self.drop_path * (1 - self.mix_ratio))(MHCA(name='mhca')(o), train=train)
    x = jnp.concatenate([x, o], axis=-1)
    out = batch_norm(train, 'norm2', g)(x)
    return x + DropPath(self.drop_path)(
        ConvMLP(self.mlp_ratio, self.dropout, name='mlp')(out, train=train), train=train)


class LGFAT(nn.Module):
  """The frame encoder; x: (N, H, W, 1) → final feature map (N, H/2^(1+k), W/2^(1+k), C_last).

  Stem: conv3x3+BN+ReLU ×4 (1→stem[0] stride 2, →stem[1], →stem[2], →stem[2] stride 2), i.e. /4. Stage i:
  `depths[i]` LFA blocks of width channels[i] and, when block_layout='paper', one GFA block of width
  gfa_channels[i]; the first block of every stage after the first has stride 2 (k = len(depths) − 1
  halvings). Stochastic depth rises linearly from 0 to drop_path_rate over all blocks. A final BatchNorm.
  """
  spec: EncoderSpec = EncoderSpec()
  # None: flax's BatchNorm over all N frames. T: PyTorch's BatchNorm with each frame index of T-frame
  # clips (N = B·T, clip-major) normalised by its own statistics, as if each frame were encoded in its
  # own call (the released FDP does). Eval mode is the same either way.
  bn_groups: int | None = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    spec = self.spec
    if spec.block_layout not in ('paper', 'released'):
      raise ValueError(f"block_layout must be 'paper' or 'released', got {spec.block_layout!r}")
    c0, c1, c2 = spec.stem_channels
    for i, (width, stride) in enumerate([(c0, 2), (c1, 1), (c2, 1), (c2, 2)]):
      x = ConvBNReLU(width, stride, self.bn_groups, name=f'stem_{i}')(x, train=train)

    # One (kind, width, sr) entry per block, so the drop-path schedule and the `features_<i>` names
    # count GFA blocks exactly like LFA blocks.
    plan = []
    for stage, depth in enumerate(spec.depths):
      stage_blocks = [('lfa', spec.channels[stage], None)] * depth
      if spec.block_layout == 'paper':
        stage_blocks.append(('gfa', spec.gfa_channels[stage], spec.sr_ratios[stage]))
      plan += [(kind, width, sr, 2 if (stage > 0 and j == 0) else 1)
               for j, (kind, width, sr) in enumerate(stage_blocks)]
    rates = [spec.drop_path_rate * i / max(len(plan) - 1, 1) for i in range(len(plan))]

    for i, ((kind, width, sr, stride), rate) in enumerate(zip(plan, rates)):
      if kind == 'lfa':
        block = LFABlock(width, stride, rate, spec.lfa_mlp_ratio, spec.dropout, self.bn_groups,
                         name=f'features_{i}')
      else:
        block = GFABlock(width, stride, sr, rate, spec.gfa_mlp_ratio, spec.head_dim, spec.mix_ratio,
                         spec.dropout, self.bn_groups, name=f'features_{i}')
      x = block(x, train=train)
    return batch_norm(train, 'norm', self.bn_groups)(x)
