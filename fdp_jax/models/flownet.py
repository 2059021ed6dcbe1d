"""MOL's flow network: FlowNetC with BatchNorm and LeakyReLU 0.1, its correlation layer and PyTorch's
transposed convolution, for the T−1 consecutive pairs of a clip. Channels-last (NHWC); Linen paths spell the
release's state_dict keys as in `fdp_jax.models.mol`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fdp_jax.models import layers

LEAKY_SLOPE = 0.1


def torch_conv(features: int, kernel: int, stride: int, padding: int, use_bias: bool, name: str) -> layers.Conv:
  """A PyTorch Conv2d (its default init, symmetric padding) under the project's conv routing."""
  return layers.Conv(features, kernel, stride, use_bias, layers.TORCH_DEFAULT_INIT, padding, name=name)


def scaled(channels: int, width: float) -> int:
  """A released channel count at `width` (1 = as released), at least 1."""
  return max(1, int(round(channels * width)))


# The release's correlation: patch 21, dilation 2 → dy, dx ∈ {−20, −18, …, 20}, row-major (dy, dx).
CORRELATION_PATCH, CORRELATION_DILATION = 21, 2


def _correlation_index(h: int, w: int, patch: int) -> tuple[np.ndarray, np.ndarray]:
  """For every position (y, x) and displacement d: the flat index of (y + dy, x + dx) and whether it is
  inside the map. Shapes (h·w, patch²)."""
  offsets = (np.arange(patch) - patch // 2) * CORRELATION_DILATION
  dy, dx = np.meshgrid(offsets, offsets, indexing='ij')
  y, x = np.divmod(np.arange(h * w), w)
  ty, tx = y[:, None] + dy.ravel()[None], x[:, None] + dx.ravel()[None]
  inside = (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w)
  return np.where(inside, ty * w + tx, 0), inside


def correlation(a: jax.Array, b: jax.Array, patch: int = CORRELATION_PATCH) -> jax.Array:
  """FlowNetC's correlation (kernel 1, dilation 2, zero outside the map), divided by the channel count:
  a, b (N, H, W, C) → (N, H, W, patch²), channel d = (dy index)·patch + (dx index).

  All-pairs similarity as one batched matrix product, then a static gather of the patch² displacements:
  on the release's 16×16 map its ±20-pixel window covers the whole map, so nothing is wasted.
  """
  n, h, w, c = a.shape
  similarity = jnp.einsum('npc,nqc->npq', a.reshape(n, h * w, c), b.reshape(n, h * w, c)) / c
  index, inside = _correlation_index(h, w, patch)
  picked = jnp.take_along_axis(similarity, jnp.asarray(index)[None], axis=2)
  return jnp.where(jnp.asarray(inside)[None], picked, 0).reshape(n, h, w, -1)


def covering_patch(map_side: int) -> int:
  """The smallest patch whose window (dilation 2) covers a map of this side, capped at the release's 21
  (whose ±20 window covers its 16×16 map): on an 8×8 map, 7 — the displacements a 21 would add fall outside
  the map, where the correlation is zero on every input."""
  return min(CORRELATION_PATCH, 2 * ((map_side - 1) // CORRELATION_DILATION) + 1)


def conv_transpose(x: jax.Array, kernel: jax.Array, stride: int = 2, padding: int = 1) -> jax.Array:
  """PyTorch's ConvTranspose2d (no bias) on NHWC: kernel (k, k, out, in), i.e. the PyTorch weight
  (in, out, k, k) in this project's generic kernel permutation. Output side (H − 1)·s − 2p + k.

  Under the CPU conv routing the k4 s2 p1 case (every transposed conv of MOL) is computed by phases: output
  row 2m + r only ever meets kernel rows (3, 1) (r = 0) or (2, 0) (r = 1) at input rows (m − 1, m) or
  (m, m + 1), so the four (row, column) phases are four 2×2 convolutions of the input, interleaved — a
  quarter of the work of convolving the zero-dilated input. Other shapes, and every shape under XLA's
  routing (`layers.conv_routing`: TPU and GPU have transposed convolutions of their own), take the
  general route: XLA's convolution of the dilated input.
  """
  k = kernel.shape[0]
  dims = ('NHWC', 'HWIO', 'NHWC')
  if (k, stride, padding) == (4, 2, 1) and not layers.xla_convs():
    n, h, w, _ = x.shape
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    taps = (np.array([3, 1]), np.array([2, 0]))
    # Each phase as one matrix product over its 2×2 windows: on this model's shapes XLA:CPU's own
    # convolution was 5–30 % slower (benchmarks/profile_layers.py --model=mol).
    phases = [[layers.conv_as_matmul(padded[:, r:r + h + 1, c:c + w + 1],
                                    kernel[taps[r]][:, taps[c]].transpose(0, 1, 3, 2), 1, 0)
               for c in (0, 1)] for r in (0, 1)]
    y = jnp.stack([jnp.stack(row, axis=3) for row in phases], axis=2)      # (N, H, 2, W, 2, out)
    return y.reshape(n, 2 * h, 2 * w, kernel.shape[2])
  rhs = jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)                   # (k, k, in, out)
  pad = k - 1 - padding
  return jax.lax.conv_general_dilated(x, rhs, (1, 1), ((pad, pad), (pad, pad)), lhs_dilation=(stride, stride),
                                      dimension_numbers=dims)


class ConvTranspose(nn.Module):
  features: int
  kernel_size: int = 4

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = self.kernel_size
    kernel = self.param('kernel', layers.TORCH_DEFAULT_INIT, (k, k, self.features, x.shape[-1]))
    return conv_transpose(x, kernel)


def pair_call_order(num_frames: int) -> tuple[int, ...]:
  """The frames a layer shared by both frames of every pair sees, call by call, in the release's loop over
  pairs t = 0 … T−2: frame t, then frame t+1 (0, 1, 1, 2, …, T−2, T−1)."""
  return tuple(f for pair in range(num_frames - 1) for f in (pair, pair + 1))


class FlowNet(nn.Module):
  """FlowNetC with BatchNorm and LeakyReLU 0.1 for the T−1 consecutive pairs of clips.

  frames: (B, T, 128, 128, 1); fa, fb: the F5C maps of the first and second frame of every pair
  (B·(T−1), 16, 16, 128) → flow (B·(T−1), 128, 128, 2) from frame t to t+1.
  conv1/conv2/conv3 are shared by both frames of a pair, so they run once per frame (T, not 2(T−1), maps).
  BatchNorm trains as the release's pair-by-pair loop does (`layers.TorchBatchNorm`): conv1–conv3 with each
  frame's own statistics, their running statistics updated by the release's 2(T−1) calls in its order
  (`pair_call_order`: FlowNetC encodes a pair's first frame, then its second), the layers after the
  correlation with each pair's own statistics. The correlation of the pair's conv3 maps,
  conv_redir(conv3 of the first) and both F5C maps are concatenated (729 channels) → conv3_1 … conv6_1 →
  coarse-to-fine: at each level predict a flow, upsample it by a transposed conv, deconvolve the features
  and concatenate with the encoder's map of that level (the raw first frame at full resolution).

  width scales every channel count but the correlation's and the flows' 2. correlation_patch: the
  correlation's displacements per axis (21 as released; 0: `covering_patch` of the map, the displacements
  that can land on it — 7 on the 8×8 maps of 64-px frames, where 392 of the release's 441 are always 0). pair_batch_norm False
  trains every BatchNorm with one set of statistics over all frames (or pairs) of the batch instead of the
  release's per-frame / per-pair groups, whose statistics come from B examples each — 4 values per channel
  on conv6's 1×1 map of a 64-px batch of 4.
  """
  width: float = 1.0
  pair_batch_norm: bool = True
  correlation_patch: int = CORRELATION_PATCH

  def _conv_bn(self, x, features, k, s, name, train, groups, order=None):
    x = torch_conv(scaled(features, self.width), k, s, (k - 1) // 2, False, f'{name}__0')(x)
    if not self.pair_batch_norm:
      groups = order = None
    return nn.leaky_relu(layers.batch_norm(train, f'{name}__1', groups, order)(x), LEAKY_SLOPE)

  @nn.compact
  def __call__(self, frames, fa, fb, *, train: bool) -> jax.Array:
    bsz, t = frames.shape[:2]

    def pairs(maps, side):                       # (B·T, h, w, c) → the first / second frames of pairs
      maps = maps.reshape(bsz, t, *maps.shape[1:])
      maps = maps[:, :-1] if side == 'first' else maps[:, 1:]
      return maps.reshape(bsz * (t - 1), *maps.shape[2:])

    flat = frames.reshape(bsz * t, *frames.shape[2:])
    frame = dict(train=train, groups=t, order=pair_call_order(t))
    c1 = self._conv_bn(flat, 64, 6, 2, 'conv1', **frame)
    c2 = self._conv_bn(c1, 128, 4, 2, 'conv2', **frame)
    c3 = self._conv_bn(c2, 256, 2, 2, 'conv3', **frame)
    conv3a = pairs(c3, 'first')
    patch = self.correlation_patch or covering_patch(conv3a.shape[1])
    corr = correlation(conv3a, pairs(c3, 'second'), patch)
    corr = nn.leaky_relu(corr, LEAKY_SLOPE)
    pair = dict(train=train, groups=t - 1)
    redir = self._conv_bn(conv3a, 32, 1, 1, 'conv_redir', **pair)
    x = jnp.concatenate([redir, corr, fa, fb], axis=-1)
    conv3_1 = self._conv_bn(x, 256, 3, 1, 'conv3_1', **pair)
    conv4_1 = self._conv_bn(self._conv_bn(conv3_1, 512, 3, 2, 'conv4', **pair), 512, 3, 1, 'conv4_1', **pair)
    conv5_1 = self._conv_bn(self._conv_bn(conv4_1, 512, 3, 2, 'conv5', **pair), 512, 3, 1, 'conv5_1', **pair)
    x = self._conv_bn(self._conv_bn(conv5_1, 1024, 3, 2, 'conv6', **pair), 1024, 3, 1, 'conv6_1', **pair)
    skips = ((5, conv5_1, 512), (4, conv4_1, 256), (3, conv3_1, 128), (2, pairs(c2, 'first'), 128),
             (1, pairs(c1, 'first'), 64), (0, pairs(flat, 'first'), 32))
    level = 6
    for next_level, skip, features in skips:    # six decoder levels (a loop over layers, not data)
      flow = torch_conv(2, 3, 1, 1, False, f'predict_flow{level}')(x)
      flow_up = ConvTranspose(2, name=f'upsampled_flow{level}_to_{next_level}')(flow)
      deconv = ConvTranspose(scaled(features, self.width), name=f'deconv{next_level}__0')(x)
      x = jnp.concatenate([skip, nn.leaky_relu(deconv, LEAKY_SLOPE), flow_up], axis=-1)
      level = next_level
    return torch_conv(2, 3, 1, 1, False, 'predict_flow0')(x)
