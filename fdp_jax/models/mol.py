"""MOL as released: F5C blocks (FCC + CCC) on a shared convolution stack, a FlowNetC-style flow
network (`models.flownet`), a landmark head and a 3D-CNN MER head, jointly trained on the 7 consecutive pairs
of 8 frames.

Layouts are channels-last (NHWC); every tensor of the PyTorch release has a Linen counterpart whose path
spells its state_dict key with '__' for '.' before an index (`conv_stack/conv_stack__0/kernel` ↔
`conv_stack.conv_stack.0.weight`, see `fdp_jax.models.released_weights`). The FCC's own tensors (meta kernels, biases,
positional embeddings) keep their PyTorch names and layouts. All pairs run as one batch: no Python loop
over frames, pairs, graph nodes or neighbours.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fdp_jax.models import layers
from fdp_jax.models.flownet import CORRELATION_PATCH, FlowNet, scaled, torch_conv as _conv


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
  """MOL: frames (B, T, S, S, 1) → {'logits': (B, classes), 'flow': (B, T−1, S, S, 2) pixels, 'landmarks':
  (B, T−1, 68, 2) pixels}. Pair t encodes frame t with FCC_1/CCC_1 and frame t+1 with FCC_2/CCC_2;
  the F5C maps are collected as [first(0), second(0), first(1), …] for the MER head; landmarks and flow
  are those of frame t+1 / from t to t+1.

  With the defaults this is MOL as released (S = 128, `fdp_jax.models.released_weights` loads its weights). The other
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
  def __call__(self, frames: jax.Array, frame_mask: jax.Array | None = None, *, train: bool) -> dict:
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
    return {'logits': logits, 'flow': flow.reshape(bsz, t - 1, h, w, 2), 'landmarks': landmarks}
