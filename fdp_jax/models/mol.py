"""MOL as released: F5C blocks (FCC + CCC) on a shared convolution stack, a FlowNetC-style flow
network, a landmark head and a 3D-CNN MER head, jointly trained on the 7 consecutive pairs of 8 frames.

Layouts are channels-last (NHWC); every tensor of the PyTorch release has a Linen counterpart whose path
spells its state_dict key with '__' for '.' before an index (`conv_stack/conv_stack__0/kernel` ↔
`conv_stack.conv_stack.0.weight`, see `fdp_jax.tools.convert`). The FCC's own tensors (meta kernels, biases,
positional embeddings) keep their PyTorch names and layouts. All pairs run as one batch: no Python loop
over frames, pairs, graph nodes or neighbours.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fdp_jax.models import layers

LEAKY_SLOPE = 0.1


def _conv(features: int, kernel: int, stride: int, padding: int, use_bias: bool, name: str) -> layers.Conv:
  return layers.Conv(features, kernel, stride, use_bias, layers.TORCH_DEFAULT_INIT, padding, name=name)


class Declared(nn.Module):
  """Creates tensors the release defines but never uses (the FCC's FFN), so that checkpoints round-trip.

  params / stats: {leaf name: shape}. Calling it computes nothing.
  """
  params: tuple[tuple[str, tuple[int, ...]], ...] = ()
  stats: tuple[tuple[str, tuple[int, ...]], ...] = ()

  @nn.compact
  def __call__(self) -> None:
    for name, shape in self.params:
      self.param(name, nn.initializers.ones if name == 'scale' else nn.initializers.zeros, shape)
    for name, shape in self.stats:
      self.variable('batch_stats', name, jnp.ones if name == 'var' else jnp.zeros, shape)


def scaled(channels: int, width: float) -> int:
  """A released channel count at `width` (1 = as released), at least 1."""
  return max(1, int(round(channels * width)))


class ConvStack(nn.Module):
  """conv 1→8 k4 s2, 8→32 k3 s2, 32→64 k2 s2 pad 1, 64→128 k1 (channels × width), no activations:
  (N, 128, 128, 1) → (N, 16, 16, 128·width); a side S gives maps of S/8."""
  width: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i, (features, k, s, p) in enumerate(((8, 4, 2, 0), (32, 3, 2, 0), (64, 2, 2, 1), (128, 1, 1, 0))):
      x = _conv(scaled(features, self.width), k, s, p, True, f'conv_stack__{i}')(x)
    return x


def circular_conv(x: jax.Array, kernel: jax.Array, axis: int) -> jax.Array:
  """Depthwise cross-correlation along `axis` (1 = H, 2 = W) of x (N, H, W, C) with a kernel (C, L), L the
  map's length on that axis, over the circularly padded map (the map followed by itself minus its last
  element): out[y] = Σ_i x[(y + i) mod L] · kernel[:, i]. A circulant matrix per channel, one einsum."""
  length = x.shape[axis]
  index = (np.arange(length)[None, :] - np.arange(length)[:, None]) % length      # [y, z] = (z − y) mod L
  circulant = kernel[:, index]                                                     # (C, L_out, L_in)
  if axis == 1:
    return jnp.einsum('cyz,nzwc->nywc', circulant, x)
  return jnp.einsum('cxz,nhzc->nhxc', circulant, x)


class FCC(nn.Module):
  """The F5C's fully-connected-convolution part: x (N, H, W, 2·dim) → same shape.

  Halves x1, x2 get positional embeddings (H for x1, W for x2) and a BatchNorm each; then x1 is convolved
  along H and x2 along W with meta kernels cropped to the map (global, circular), embeddings pe_2 added
  (W to x1, H to x2), x1 convolved along W and x2 along H; each half adds itself as it entered.
  bn_groups: the BatchNorms' interleaved statistic groups (`layers.TorchBatchNorm`): T − 1 on the
  clip-major pairs of B clips, as the release calls FCC once per pair; None: flax's BatchNorm.
  layer_scale: the branch (everything but the residual) multiplied per channel by a learned scale that
  starts at 0, so that the block starts as the identity (`MOL.f5c_layer_scale`); False: as released.
  """
  dim: int = 64
  meta_kernel: int = 32
  bn_groups: int | None = None
  layer_scale: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    _, h, w, c = x.shape
    d, m = self.dim, self.meta_kernel
    if c != 2 * d or h > m or w > m:
      raise ValueError(f'FCC({d}, meta {m}) needs (N, ≤{m}, ≤{m}, {2 * d}) input, got {x.shape}')
    init = nn.initializers.normal(0.02)
    kernel = {f'{s}_{a}': self.param(f'meta_kernel_{s}_{a}', init, (d, 1, m, 1) if a == 'H' else (d, 1, 1, m))
              for s in (1, 2) for a in ('H', 'W')}
    bias = {f'{s}_{a}': self.param(f'meta_{s}_{a}_bias', nn.initializers.zeros, (d,))
            for s in (1, 2) for a in ('H', 'W')}
    pe = {f'{s}_{a}': self.param(f'meta_pe_{s}_{a}', init, (1, d, m, 1) if a == 'H' else (1, d, 1, m))
          for s in (1, 2) for a in ('H', 'W')}
    Declared(params=(('scale', (c,)), ('bias', (c,))), stats=(('mean', (c,)), ('var', (c,))), name='ffn__0')()
    Declared(params=(('kernel', (1, 1, c, 2)), ('bias', (2,))), name='ffn__1')()
    Declared(params=(('kernel', (1, 1, 2, c)), ('bias', (c,))), name='ffn__4')()

    along_h = lambda k: k[:, 0, :h, 0]                                 # (d, h)  noqa: E731
    along_w = lambda k: k[:, 0, 0, :w]                                 # (d, w)  noqa: E731
    pe_h = lambda p: p[0, :, :h, 0].T[None, :, None, :]                # (1, h, 1, d)  noqa: E731
    pe_w = lambda p: p[0, :, 0, :w].T[None, None, :, :]                # (1, 1, w, d)  noqa: E731
    x1_in, x2_in = x[..., :d], x[..., d:]
    x1 = layers.batch_norm(train, 'pre_Norm_1', self.bn_groups)(x1_in + pe_h(pe['1_H']))
    x2 = layers.batch_norm(train, 'pre_Norm_2', self.bn_groups)(x2_in + pe_w(pe['1_W']))
    x1 = circular_conv(x1, along_h(kernel['1_H']), 1) + bias['1_H']
    x2 = circular_conv(x2, along_w(kernel['1_W']), 2) + bias['1_W']
    x1 = x1 + pe_w(pe['2_W'])
    x2 = x2 + pe_h(pe['2_H'])
    x1 = circular_conv(x1, along_w(kernel['2_W']), 2) + bias['2_W']
    x2 = circular_conv(x2, along_h(kernel['2_H']), 1) + bias['2_H']
    branch = jnp.concatenate([x1, x2], axis=-1)
    if self.layer_scale:
      branch = branch * self.param('layer_scale', nn.initializers.zeros, (c,))
    return branch + x


def cosine_knn(x: jax.Array, k: int) -> jax.Array:
  """x (N, P, C) node features → (N, P, k) indices of each node's k most cosine-similar nodes (itself
  first), most similar first. Similarities in float32 whatever x's dtype: bfloat16 rounding reorders
  near-ties."""
  if x.dtype != jnp.float32:
    x = x.astype(jnp.float32)
  unit = x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
  similarity = jnp.einsum('npc,nqc->npq', unit, unit)
  return jax.lax.top_k(similarity, k)[1]


class CCC(nn.Module):
  """The F5C's graph part: positions are nodes with C-channel features, k cosine neighbours.

  x: (N, P, C) → (neighbour differences (N, P, k, C), edge features (N, P, C)); for channel c the edge
  feature over positions is max_j ReLU(W1·x_c + b1 + W2·(d_c,j − x_c) + b2), W1, W2 P×P (the release's
  Conv1d with a P-long kernel over a P-long signal, kernels kept in that layout: (P, 1, P)).
  """
  k: int = 4

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    p = x.shape[1]
    w1 = Conv1dAsDense(p, name='conv1')
    w2 = Conv1dAsDense(p, name='conv2')
    neighbours = jax.vmap(lambda xi, idx: xi[idx])(x, cosine_knn(x, self.k))        # (N, P, k, C)
    differences = neighbours - x[:, :, None, :]
    base = w1(x)                                                                     # (N, P, C)
    edges = jax.nn.relu(base[:, :, None, :] + w2(differences - x[:, :, None, :], axis=1))
    return differences, edges.max(axis=2)


class Conv1dAsDense(nn.Module):
  """The release's Conv1d(1, P, kernel P) applied to each channel's P-long signal: a P×P dense map over
  the position axis. Kernel (P, 1, P) = Flax's Conv1d layout (width, in, out) of the PyTorch (out, in,
  width) weight. x: the position axis is `axis`, any other axes ride along."""
  features: int

  @nn.compact
  def __call__(self, x: jax.Array, axis: int = 1) -> jax.Array:
    p = x.shape[axis]
    kernel = self.param('kernel', layers.TORCH_DEFAULT_INIT, (p, 1, self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    moved = jnp.moveaxis(x, axis, -1)
    y = jnp.dot(moved, kernel[:, 0, :]) + bias
    return jnp.moveaxis(y, -1, axis)


class MER3DCNN(nn.Module):
  """The MER head on the 14 collected F5C maps: x (N, H, W, 14, C) (time last, as the release stacks it)
  → Conv3d C→32 k(2, 2, 5) s(2, 2, 1) → MaxPool3d 2 → dropout → Linear 2560→256 → ReLU → dropout →
  Linear classes (32 and 256 × width; 2560 is the flattened map of 16×16 F5C maps). The flatten follows
  PyTorch's channels-first order so converted weights apply."""
  num_classes: int = 5
  dropout: float = 0.5
  width: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = nn.Conv(scaled(32, self.width), (2, 2, 5), (2, 2, 1), 'VALID', kernel_init=layers.TORCH_DEFAULT_INIT, name='conv3d')(x)
    n, d, h, w, c = x.shape
    x = x[:, :d // 2 * 2, :h // 2 * 2, :w // 2 * 2].reshape(n, d // 2, 2, h // 2, 2, w // 2, 2, c).max((2, 4, 6))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    x = jnp.moveaxis(x, -1, 1).reshape(n, -1)
    x = jax.nn.relu(nn.Dense(scaled(256, self.width), name='fc1')(x))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(self.num_classes, name='fc2')(x)


LANDMARK_UNITS = ('pixels', 'centred')


class LandmarkHead(nn.Module):
  """ldm_predictor: a frame's F5C map (N, 16, 16, 128) → conv 128→32 k3 (no padding) → ReLU → Linear
  6272→512 → ReLU → Linear 136 (32 and 512 × width) → (N, 68, 2) (x, y) pixels of the `side`-px crop.

  units: what the last Linear's outputs are. 'pixels' (the release): the pixel coordinates themselves, so a
  freshly initialised head (outputs ≈ 0) starts every point at the crop's corner, 64–90 px from where faces
  are, and Adam's steps of ≈ lr per parameter need thousands of steps to get there. 'centred': offsets from
  the crop's centre in half-sides (a point = side/2 · (1 + output)), which starts every point inside the
  face and keeps the outputs in [−1, 1]. The loss and metrics see pixels either way."""
  width: float = 1.0
  units: str = 'pixels'
  side: int = 128

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.units not in LANDMARK_UNITS:
      raise ValueError(f'unknown landmark units {self.units!r}: use one of {LANDMARK_UNITS}')
    x = jax.nn.relu(_conv(scaled(32, self.width), 3, 1, 0, True, 'convldm')(x))
    n = x.shape[0]
    x = jnp.moveaxis(x, -1, 1).reshape(n, -1)                 # PyTorch's (C, H, W) flatten
    x = jax.nn.relu(nn.Dense(scaled(512, self.width), name='fc1')(x))
    points = nn.Dense(136, name='fc2')(x).reshape(n, 68, 2)
    if self.units == 'centred':
      points = (self.side / 2) * (1.0 + points)
    return points


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
    x = _conv(scaled(features, self.width), k, s, (k - 1) // 2, False, f'{name}__0')(x)
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
      flow = _conv(2, 3, 1, 1, False, f'predict_flow{level}')(x)
      flow_up = ConvTranspose(2, name=f'upsampled_flow{level}_to_{next_level}')(flow)
      deconv = ConvTranspose(scaled(features, self.width), name=f'deconv{next_level}__0')(x)
      x = jnp.concatenate([skip, nn.leaky_relu(deconv, LEAKY_SLOPE), flow_up], axis=-1)
      level = next_level
    return _conv(2, 3, 1, 1, False, 'predict_flow0')(x)


MER_REFERENCES = ('none', 'clip_mean')


def mer_reference(collected: jax.Array, rule: str) -> jax.Array:
  """The F5C maps the MER head reads, (B, h, w, 14, C): as they are ('none', the release), or minus their mean
  over the clip's 14 maps ('clip_mean'). Each map is dominated by the subject's face, which varies across
  subjects far more than a micro-expression moves it; what changes over the clip is the expression."""
  if rule == 'none':
    return collected
  if rule == 'clip_mean':
    return collected - collected.mean(axis=3, keepdims=True)
  raise ValueError(f'unknown model.mer_reference {rule!r}: use one of {MER_REFERENCES}')


class MOL(nn.Module):
  """MOL: frames (B, T, S, S, 1) → (logits (B, classes), flow (B, T−1, S, S, 2) pixels, landmarks
  (B, T−1, 68, 2) pixels). Pair t encodes frame t with FCC_1/CCC_1 and frame t+1 with FCC_2/CCC_2;
  the F5C maps are collected as [first(0), second(0), first(1), …] for the MER head; landmarks and flow
  are those of frame t+1 / from t to t+1.

  With the defaults this is MOL as released (S = 128, `fdp_jax.tools.convert` loads its weights). The other
  settings keep the structure and change its size or its training: width (every channel count × width),
  S (a multiple of 64, the FlowNet's coarsest stride, up to 256, where the F5C maps still fit the FCC's meta
  kernels), landmark_units, pair_batch_norm and correlation_patch (`LandmarkHead`, `FlowNet`), mer_reference
  (`mer_reference`)."""
  num_classes: int = 5
  dropout: float = 0.5
  knn: int = 4
  width: float = 1.0
  landmark_units: str = 'pixels'
  pair_batch_norm: bool = True
  correlation_patch: int = CORRELATION_PATCH
  mer_reference: str = 'none'
  mer_norm: bool = False
  f5c_layer_scale: bool = False

  @nn.compact
  def __call__(self, frames: jax.Array, frame_mask: jax.Array | None = None, *, train: bool):
    del frame_mask  # MOL always sees all T frames
    bsz, t, h, w, _ = frames.shape
    flat = frames.reshape(bsz * t, h, w, 1)
    maps = ConvStack(self.width, name='conv_stack')(flat)
    _, mh, mw, c = maps.shape
    maps = maps.reshape(bsz, t, mh, mw, c)
    pairs = bsz * (t - 1)
    first, second = maps[:, :-1].reshape(pairs, mh, mw, c), maps[:, 1:].reshape(pairs, mh, mw, c)

    def f5c(x, index):
      x = FCC(c // 2, bn_groups=t - 1 if self.pair_batch_norm else None, layer_scale=self.f5c_layer_scale,
              name=f'FCC_{index}')(x, train=train)
      _, edges = CCC(self.knn, name=f'CCC_{index}')(x.reshape(pairs, mh * mw, c))
      if self.f5c_layer_scale:
        edges = edges * self.param(f'CCC_{index}_layer_scale', nn.initializers.zeros, (c,))
      return x + edges.reshape(pairs, mh, mw, c)

    first, second = f5c(first, 1), f5c(second, 2)
    collected = jnp.stack([first.reshape(bsz, t - 1, mh, mw, c), second.reshape(bsz, t - 1, mh, mw, c)], 2)
    collected = jnp.moveaxis(collected.reshape(bsz, 2 * (t - 1), mh, mw, c), 1, 3)  # (B, mh, mw, 14, C)
    collected = mer_reference(collected, self.mer_reference)
    if self.mer_norm:
      collected = layers.batch_norm(train, 'mer_norm')(collected)
    logits = MER3DCNN(self.num_classes, self.dropout, self.width, name='mer_3dcnn')(collected, train=train)
    landmarks = LandmarkHead(self.width, self.landmark_units, h, name='ldm_predictor')(second)
    landmarks = landmarks.reshape(bsz, t - 1, 68, 2)
    flow = FlowNet(self.width, self.pair_batch_norm, self.correlation_patch, name='flownet')(frames, first, second,
                                                                                          train=train)
    return logits, flow.reshape(bsz, t - 1, h, w, 2), landmarks
