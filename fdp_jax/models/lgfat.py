"""LGFAT: the local-global feature-aware transformer that encodes every frame (SPEC §2, §3).

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

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# The release initialises every conv / linear weight from a truncated normal with std 0.02, biases at 0.
# (torch's trunc_normal_ cuts at ±2 absolute, i.e. ±100σ; flax cuts at ±2σ. Immaterial at std 0.02.)
_KERNEL_INIT = nn.initializers.truncated_normal(stddev=0.02)


def make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
  """Round a channel count to the nearest multiple of `divisor`, never below `min_value` (default
  divisor) and never more than 10% below v (the MobileNet / Next-ViT rule the release uses)."""
  min_value = divisor if min_value is None else min_value
  new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
  if new_v < 0.9 * v:
    new_v += divisor
  return new_v


def batch_norm(train: bool, name: str | None = None, groups: int | None = None,
               order: tuple[int, ...] | None = None) -> nn.Module:
  """A BatchNorm with PyTorch's momentum (torch 0.1 is flax 0.9) and eps (1e-5).

  groups None: flax's `nn.BatchNorm` (the paper design: one set of training statistics over the batch,
  biased running variance). groups g ≥ 1: `TorchBatchNorm`, PyTorch's semantics exactly, with the
  training statistics of g interleaved groups of the batch taken separately (the released FDP, whose
  encoder sees each frame of a clip in its own call; the released MOL, which runs pair by pair), and the
  running statistics updated by the groups' calls in `order` (default: each group once, in turn)."""
  if groups is None:
    if order is not None:
      raise ValueError('a BatchNorm update order needs groups')
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)
  return TorchBatchNorm(use_running_average=not train, groups=groups, order=order, name=name)


class TorchBatchNorm(nn.Module):
  """PyTorch's BatchNorm (1d/2d, momentum 0.1, eps 1e-5) over the last axis, as `groups` successive calls.

  x: (N, ..., C), N a multiple of `groups`. In training, the examples n with the same n mod groups form a
  group that is normalised by its own mean and (biased) variance over those examples and every axis but
  the last, exactly as if PyTorch had been called on each group in turn; the running statistics then take
  those calls' updates in group order, in closed form, r ← 0.9^g·r + Σ_k 0.1·0.9^(g−1−k)·s_k, with the
  *unbiased* group variance for the running variance as PyTorch keeps it. `order` names the calls when
  they are not each group once in turn: a group called twice with the same input (the release's FlowNet
  encodes frame t as the second frame of pair t−1 and again as the first of pair t) appears twice, and
  the update is r ← 0.9^L·r + Σ_j 0.1·0.9^(L−1−j)·s_order[j] over the L calls. For (B·T, H, W, C) frames of
  B clips stored clip-major, groups = T gives each frame index its own statistics, as the release's one
  encoder call per frame does; groups = 1 is one PyTorch call. In eval, the running statistics.
  Variables are those of `nn.BatchNorm` (params 'scale', 'bias'; batch_stats 'mean', 'var'), so
  checkpoints and weight conversion do not see which one a model uses.
  """
  use_running_average: bool
  groups: int = 1
  order: tuple[int, ...] | None = None   # the groups' calls in sequence; None: 0, 1, …, groups − 1
  momentum: float = 0.9
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    scale = self.param('scale', nn.initializers.ones, (c,))
    bias = self.param('bias', nn.initializers.zeros, (c,))
    running_mean = self.variable('batch_stats', 'mean', lambda: jnp.zeros((c,), jnp.float32))
    running_var = self.variable('batch_stats', 'var', lambda: jnp.ones((c,), jnp.float32))
    if self.use_running_average:
      return (x - running_mean.value) * (scale * jax.lax.rsqrt(running_var.value + self.epsilon)) + bias
    n, g = x.shape[0], self.groups
    if n % g:
      raise ValueError(f'a batch of {n} cannot be split into {g} interleaved BatchNorm groups')
    # Per-example moments first, then per group. A single reduction over axes (0, 2) of (N/g, g, M, C)
    # was slower in a (noisy) microbenchmark. In an interleaved comparison of whole released-FDP steps,
    # this module with groups = 8 cost the same as nn.BatchNorm (4.28–4.56 s against 4.09–4.55 s).
    per_example = x.reshape(n, -1, c)                                    # (N, M, C)
    count = n // g * per_example.shape[1]
    mean = per_example.mean(axis=1).reshape(n // g, g, c).mean(axis=0)  # (g, C)
    mean_square = jnp.square(per_example).mean(axis=1).reshape(n // g, g, c).mean(axis=0)
    var = jnp.maximum(mean_square - jnp.square(mean), 0.0)              # biased, as the batch uses it
    gain = scale * jax.lax.rsqrt(var + self.epsilon)
    # (x − mean)·gain + bias, not x·gain + (bias − mean·gain): the latter cancels when |mean| ≫ std.
    y = (x.reshape(n // g, g, -1, c) - mean[:, None]) * gain[:, None] + bias
    if not self.is_initializing():
      decay, weights = update_weights(self.momentum, g, self.order)
      running_mean.value = decay * running_mean.value + (weights[:, None] * mean).sum(0)
      running_var.value = decay * running_var.value + (weights[:, None] * var * (count / max(count - 1, 1))).sum(0)
    return y.reshape(x.shape)


def update_weights(momentum: float, groups: int, order: Sequence[int] | None = None) -> tuple[float, np.ndarray]:
  """(decay, per-group weights) of L successive PyTorch running-statistic updates, the j-th with the
  statistics of group order[j]: r ← decay·r + Σ_k weights[k]·s_k, decay = m^L and each call j adding
  (1 − m)·m^(L−1−j) to its group's weight (m = flax's momentum, 0.9 for PyTorch's 0.1)."""
  order = tuple(range(groups)) if order is None else tuple(order)
  if not order or set(order) != set(range(groups)):   # a group out of range is a member of neither set
    raise ValueError(f'a BatchNorm update order must call every one of the {groups} groups (and only '
                     f'those) at least once, got {order}')
  weights = np.zeros(groups, np.float64)
  for j, k in enumerate(order):
    weights[k] += (1 - momentum) * momentum ** (len(order) - 1 - j)
  return momentum ** len(order), weights.astype(np.float32)


# Which k×k convs (k > 1) go to XLA's convolution rather than one matrix product (`uses_xla_conv`). XLA:CPU's
# convolution computes the forward and the input gradient quickly for every shape of these models, but its
# weight gradient is very slow for wide ones (a 3×3, 64→32 conv on 64 frames of 32×32: 566 ms forward +
# backward against 146 ms as a product), and the product's k²-wide copy of the input is what costs on narrow
# ones. Measured here, forward + backward, huge-page malloc on (jax 0.10.2, 2-core EPYC, 2026-11-26):
#   - the narrow prediction convs (→ 1 or 2 outputs: SegNet's conv11d, MOL's predict_flow on 128×128 maps):
#     13 against 52 ms, 152 against 311 ms (2026-11-25);
#   - stride-1 convs at most 32 wide on both sides (the small FDP's stem, MHCA and decoder convs): 16→16 on
#     64 frames of 32×32, 24.7 against 34.9 ms; 8→8 on 8 maps of 64×64, 2.6 against 7.0 ms; 32→32 on 64
#     frames of 16×16, 18.9 against 23.5 ms. The whole small training step, both routings compiled in one
#     process and timed in alternating blocks of 5 steps: 277.5 → 217.7 ms (median of 8 blocks).
#   - wider or strided convs stay products: 16→16 at stride 2 9.6 against 15.5 ms, 96→96 on 16×16 82 against
#     121 ms, the released stem's 64→32 146 against 566 ms.
_XLA_CONV_MAX_FEATURES = 4
_XLA_CONV_MAX_WIDTH = 32


def uses_xla_conv(kernel_size: int, stride: int, in_features: int, features: int) -> bool:
  """Whether `Conv` runs a conv through XLA's convolution (True) or as one matrix product (False)."""
  if kernel_size == 1:
    return False
  return features <= _XLA_CONV_MAX_FEATURES or (
      stride == 1 and max(in_features, features) <= _XLA_CONV_MAX_WIDTH)


class Conv(nn.Module):
  """A k×k conv with PyTorch's symmetric padding (k // 2 unless `padding` is given), as one matrix product.

  x: (N, H, W, C_in) → (N, ⌊(H + 2p − k)/s⌋ + 1, …, features). Parameters are those of `nn.Conv` (kernel
  (k, k, C_in, features) HWIO, optional bias), so checkpoints and weight conversion do not see the
  difference. A conv is one matrix product — the k² shifted (strided) views of the padded input
  concatenated on the channel axis and multiplied by the reshaped kernel — unless `uses_xla_conv` routes
  it to XLA's convolution (the narrowest convs). XLA:CPU's convolution runs at a few GFLOP/s on many
  shapes of these models, in its weight gradient above all (a 3×3, 768-channel conv on a 2×2 map took
  0.2 s; the released stem's 32×32 convs ~1 s), while its matrix product runs near peak. Flax 'SAME'
  padding would also differ from PyTorch for stride 2 on even inputs.
  """
  features: int
  kernel_size: int
  stride: int = 1
  use_bias: bool = False
  kernel_init: Callable = _KERNEL_INIT
  padding: int | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, s = self.kernel_size, self.stride
    kernel = self.param('kernel', self.kernel_init, (k, k, x.shape[-1], self.features))
    p = k // 2 if self.padding is None else self.padding
    if uses_xla_conv(k, s, x.shape[-1], self.features):
      y = jax.lax.conv_general_dilated(x, kernel, (s, s), ((p, p), (p, p)),
                                       dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
      return y + self.param('bias', nn.initializers.zeros, (self.features,)) if self.use_bias else y
    y = conv_as_matmul(x, kernel, s, p)
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, (self.features,))
    return y


def conv_as_matmul(x: jax.Array, kernel: jax.Array, stride: int = 1, padding: int | None = None
                   ) -> jax.Array:
  """A k×k conv with PyTorch's symmetric padding (k // 2 by default) as one matrix product (no bias).

  x: (N, H, W, C), kernel: (k, k, C, F) HWIO → (N, ⌊(H + 2p − k)/s⌋ + 1, …, F). The k² shifted (strided)
  views of the padded input are concatenated on the channel axis, in (i, j, c) order, and multiplied by
  the reshaped kernel.
  """
  k, _, c, features = kernel.shape
  p = k // 2 if padding is None else padding
  if p:
    x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  _, h, w, _ = x.shape
  ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
  taps = [x[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride, :]
          for i in range(k) for j in range(k)]
  columns = taps[0] if len(taps) == 1 else jnp.concatenate(taps, axis=-1)   # (N, ho, wo, k·k·C)
  return jnp.dot(columns, kernel.reshape(k * k * c, features))


def conv(features: int, kernel: int, *, stride: int = 1, use_bias: bool = False,
         kernel_init: Callable = _KERNEL_INIT, name: str | None = None) -> Conv:
  """A conv with PyTorch's padding and, by default, the release's frame-encoder init (truncated normal
  std 0.02, bias 0)."""
  return Conv(features, kernel, stride, use_bias, kernel_init, name=name)


def dense(features: int, *, name: str | None = None) -> nn.Dense:
  """A linear layer with the release's init (truncated normal std 0.02, bias 0)."""
  return nn.Dense(features, kernel_init=_KERNEL_INIT, bias_init=nn.initializers.zeros, name=name)


class DropPath(nn.Module):
  """Stochastic depth: drops a residual branch for whole examples.

  x: (N, ...) → (N, ...). In training each example keeps the branch with probability 1 − rate (mask drawn
  from the 'dropout' RNG stream) and the kept ones are scaled by 1/(1 − rate); in eval it is the identity.
  """
  rate: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    if not train or self.rate == 0.0:
      return x
    keep_prob = 1.0 - self.rate
    keep = jax.random.bernoulli(self.make_rng('dropout'), keep_prob, (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(keep, x / keep_prob, 0.0)


class ConvBNReLU(nn.Module):
  """conv3x3 (padding 1, no bias: the BatchNorm supplies the shift) + BatchNorm + ReLU.

  x: (N, H, W, C_in) → (N, H/stride, W/stride, out_channels).
  """
  out_channels: int
  stride: int = 1
  bn_groups: int | None = None    # `batch_norm`'s groups

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = conv(self.out_channels, 3, stride=self.stride, name='conv')(x)
    return nn.relu(batch_norm(train, 'norm', self.bn_groups)(x))


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
    out = jnp.einsum('nhqk,nkhd->nqhd', jax.nn.softmax(logits, axis=-1), v).reshape(n, length, channels)
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
  stem_channels: Sequence[int] = (64, 32, 64)
  depths: Sequence[int] = (3, 4, 10, 3)
  channels: Sequence[int] = (96, 192, 384, 768)
  gfa_channels: Sequence[int] = (128, 256, 512, 1024)
  sr_ratios: Sequence[int] = (8, 4, 2, 1)
  block_layout: str = 'paper'
  head_dim: int = 8
  mix_ratio: float = 0.75
  lfa_mlp_ratio: float = 3
  gfa_mlp_ratio: float = 2
  dropout: float = 0.0
  drop_path_rate: float = 0.1
  # None: flax's BatchNorm over all N frames. T: PyTorch's BatchNorm with each frame index of T-frame
  # clips (N = B·T, clip-major) normalised by its own statistics, as if each frame were encoded in its
  # own call (the released FDP, SPEC §2). Eval mode is the same either way.
  bn_groups: int | None = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    if self.block_layout not in ('paper', 'released'):
      raise ValueError(f"block_layout must be 'paper' or 'released', got {self.block_layout!r}")
    c0, c1, c2 = self.stem_channels
    for i, (width, stride) in enumerate([(c0, 2), (c1, 1), (c2, 1), (c2, 2)]):
      x = ConvBNReLU(width, stride, self.bn_groups, name=f'stem_{i}')(x, train=train)

    # One (kind, width, sr) entry per block, so the drop-path schedule and the `features_<i>` names
    # count GFA blocks exactly like LFA blocks.
    plan = []
    for stage, depth in enumerate(self.depths):
      stage_blocks = [('lfa', self.channels[stage], None)] * depth
      if self.block_layout == 'paper':
        stage_blocks.append(('gfa', self.gfa_channels[stage], self.sr_ratios[stage]))
      plan += [(kind, width, sr, 2 if (stage > 0 and j == 0) else 1)
               for j, (kind, width, sr) in enumerate(stage_blocks)]
    rates = [self.drop_path_rate * i / max(len(plan) - 1, 1) for i in range(len(plan))]

    for i, ((kind, width, sr, stride), rate) in enumerate(zip(plan, rates)):
      if kind == 'lfa':
        block = LFABlock(width, stride, rate, self.lfa_mlp_ratio, self.dropout, self.bn_groups,
                         name=f'features_{i}')
      else:
        block = GFABlock(width, stride, sr, rate, self.gfa_mlp_ratio, self.head_dim, self.mix_ratio,
                         self.dropout, self.bn_groups, name=f'features_{i}')
      x = block(x, train=train)
    return batch_norm(train, 'norm', self.bn_groups)(x)
