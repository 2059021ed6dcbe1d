"""FDP exactly as released: the `released` variant, which loads converted PyTorch weights.

  frames (B, 8, 64, 64, 1) ──frame_rep: LGFAT (LFA only) → BN → global average pool → Linear──▶ (B, 8, 4096)
  (B, 8, 4096) ──plain reshape, as torch's view──▶ volume (B, 64, 64, 8, 1)
  volume ──mer (CLSNet): Conv3d → "feat" (B, 64, 64, 1, 8); MaxPool3d → flatten → MLP──▶ logits (B, 5)
  feat ──dyimg_net (SegNet) → sigmoid──▶ dynamic image (B, 64, 64)

Unlike the paper design (`fdp.py`) there is no rank scorer: time is collapsed by the reshape and the CLSNet's
Conv3d, whose kernel spans the whole last axis of the volume. Layouts are channels-last (NHWC, NDHWC) with
the spatial axes in PyTorch's order, so every PyTorch tensor maps onto a JAX one by moving the channel axis
last. Submodule and parameter names follow the released state_dict (`frame_rep.features_3.mlp.conv1`,
`mer.fc1`, `dyimg_net.bn53d`), which `fdp_jax.models.released_weights` relies on.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from fdp_jax.models.layers import TORCH_DEFAULT_INIT, batch_norm, conv, conv_as_matmul, dense, xla_convs
from fdp_jax.models.lgfat import LGFAT, EncoderSpec

# The release re-initialises only its frame encoder (truncated normal); CLS_Net and SegNet keep PyTorch's
# default init.

# The release views the (B, 8, 4096) frame features as a (B, 1, 64, 64, 8) volume (D, H, W).
VOLUME_SHAPE = (64, 64, 8)

# SegNet's VGG16 encoder: convs per stage; the decoder mirrors it.
_SEGNET_DEPTHS = (2, 2, 3, 3, 3)


RELEASED_ENCODER = EncoderSpec(block_layout='released')


class FrameRep(LGFAT):
  """The released `frame_rep`: the LFA-only LGFAT, global average pool, then `proj_head.0` (Linear).

  x: (N, H, W, 1) → (N, feature_dim). A subclass rather than a wrapper so that the head sits beside the
  encoder's own submodules (`frame_rep.norm`, `frame_rep.proj_head_0`), as in the released state_dict.
  """
  spec: EncoderSpec = RELEASED_ENCODER
  feature_dim: int = 4096

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    if self.spec.block_layout != 'released':
      raise ValueError(f"the released frame_rep is LFA-only: block_layout must be 'released', got "
                       f'{self.spec.block_layout!r}')
    x = super().__call__(x, train=train)
    return dense(self.feature_dim, name='proj_head_0')(x.mean(axis=(1, 2)))


def released_volume(features: jax.Array) -> jax.Array:
  """PyTorch's `features.view(B, 1, 64, 64, 8)`, with the channel axis moved last.

  features: (B, T, D) with T·D = 64·64·8 → volume (B, 64, 64, 8, 1) NDHWC. A row-major reshape (torch's
  view), not a permutation: for T = 8, D = 4096, volume[b, 8t + f // 512, (f % 512) // 8, f % 8, 0] =
  features[b, t, f], i.e. rows 8t … 8t+7 of the 64×64 map hold frame t and the last spatial axis indexes
  feature dims mod 8. Time and features are interleaved; the release trains on exactly this.
  """
  b, t, d = features.shape
  if t * d != math.prod(VOLUME_SHAPE):
    raise ValueError(f'the release reshapes T·D = {t}·{d} frame features into a {VOLUME_SHAPE} volume, '
                     f'which needs T·D = {math.prod(VOLUME_SHAPE)}')
  return features.reshape(b, *VOLUME_SHAPE, 1)


class Conv3dAcrossLastAxis(nn.Module):
  """The released Conv3d 1→features, kernel (3, 3, W), padding (1, 1, 0), on a volume whose last spatial
  axis is exactly W long, so the kernel spans it and the output keeps one position there.

  volume (B, D, H, W, 1) → (B, D, H, 1, features). Parameters are those of `nn.Conv` for this conv —
  kernel DHWIO (3, 3, W, 1, features), flax's layout of torch's OIDHW, and a bias — but the product is
  computed as a 2-D conv over the 3×3 (D, H) neighbourhood with W as channels: on CPU one matrix product,
  which XLA:CPU runs far faster than its 3-D convolution.
  """
  features: int
  depth: int = VOLUME_SHAPE[2]

  @nn.compact
  def __call__(self, volume: jax.Array) -> jax.Array:
    w, c = volume.shape[3:]
    if (w, c) != (self.depth, 1):
      raise ValueError(f'expected a (B, D, H, {self.depth}, 1) volume, got {volume.shape}')
    kernel = self.param('kernel', TORCH_DEFAULT_INIT, (3, 3, w, 1, self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    # The spanned axis W becomes the channels of a 3×3 conv over (D, H): kernel (3, 3, W, 1, F) → HWIO.
    kernel = kernel.reshape(3, 3, w, self.features)
    if xla_convs():
      y = jax.lax.conv_general_dilated(volume[..., 0], kernel, (1, 1), ((1, 1), (1, 1)),
                                       dimension_numbers=('NHWC', 'HWIO', 'NHWC')) + bias
    else:
      y = conv_as_matmul(volume[..., 0], kernel) + bias
    return y[:, :, :, None, :]


class CLSNet(nn.Module):
  """The released MER head `mer` (CLS_Net).

  volume: (B, D, H, W, 1) NDHWC — PyTorch's (B, 1, D, H, W) with the channel last; released (B, 64, 64, 8,
  1). Conv3d 1→8, kernel (3, 3, 8), padding (1, 1, 0), with bias → feat (B, D, H, W − 7, 8), i.e. (B, 64,
  64, 1, 8) = PyTorch's (B, 8, 64, 64, 1); MaxPool3d (3, 3, 1) (stride = kernel, floor mode); flatten in
  PyTorch's (C, D, H, W) order (8·21·21·1 = 3528); Linear 256 → ReLU → Linear num_classes.
  Returns (logits (B, num_classes), feat).
  """
  num_classes: int = 5
  features: int = 8
  hidden: int = 256

  @nn.compact
  def __call__(self, volume: jax.Array) -> tuple[jax.Array, jax.Array]:
    feat = Conv3dAcrossLastAxis(self.features, name='conv3d')(volume)
    b, d, h, w, c = feat.shape
    # Non-overlapping 3×3×1 windows as crop + reshape + max (floor mode drops the 64th row and column).
    # A max over tied values would split its gradient where torch's picks one element; ties do not
    # occur in real-valued conv outputs.
    pooled = feat[:, :d // 3 * 3, :h // 3 * 3].reshape(b, d // 3, 3, h // 3, 3, w, c).max(axis=(2, 4))
    x = pooled.transpose(0, 4, 1, 2, 3).reshape(b, -1)
    x = nn.relu(nn.Dense(self.hidden, kernel_init=TORCH_DEFAULT_INIT, name='fc1')(x))
    return nn.Dense(self.num_classes, kernel_init=TORCH_DEFAULT_INIT, name='fc2')(x), feat


def max_pool_2x2_with_indices(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """PyTorch's max_pool2d(x, 2, 2, return_indices=True) on NHWC.

  x: (N, H, W, C), H and W even → (pooled (N, H/2, W/2, C), indices (N, H/2, W/2, C) int32). An index
  is the maximum's position inside its 2×2 window in row-major order (0 top-left, 1 top-right, 2
  bottom-left, 3 bottom-right) — PyTorch's flat per-channel position is (2i + k // 2)·W + 2j + k % 2.
  With ties the first maximum in that order wins, as in PyTorch.
  """
  n, h, w, c = x.shape
  if h % 2 or w % 2:
    raise ValueError(f'2×2 max-pool with indices needs even maps, got {h}×{w}')
  windows = x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4)
  windows = windows.reshape(n, h // 2, w // 2, c, 4)                 # window positions row-major
  indices = jnp.argmax(windows, axis=-1)
  # Selecting the argmax (not jnp.max) sends the whole gradient to that one element, as PyTorch does.
  pooled = jnp.where(indices[..., None] == jnp.arange(4), windows, 0).sum(axis=-1)
  return pooled, indices.astype(jnp.int32)


def max_unpool_2x2(x: jax.Array, indices: jax.Array) -> jax.Array:
  """PyTorch's max_unpool2d(x, indices, 2, 2) on NHWC: the inverse placement of `max_pool_2x2_with_indices`.

  x, indices: (N, h, w, C) → (N, 2h, 2w, C); each value goes to its window position `indices`, the other
  three positions of the window are 0.
  """
  n, h, w, c = x.shape
  windows = jnp.where(indices[..., None] == jnp.arange(4), x[..., None], 0)      # (N, h, w, C, 4)
  return windows.reshape(n, h, w, c, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(n, 2 * h, 2 * w, c)


class SegNet(nn.Module):
  """The released dynamic-image network `dyimg_net`; x: (N, H, W, C_in), H and W multiples of 32 →
  (N, H, W, out_channels) logits (no sigmoid).

  Encoder stage s = 1…5: convs `conv{s}{i}` (3×3, bias) + BatchNorm `bn{s}{i}` + ReLU, i = 1…depth (2, 2,
  3, 3, 3), then a 2×2 max-pool whose argmax indices are kept. Decoder stage s = 5…1: max-unpool at stage
  s's indices, then `conv{s}{i}d` + `bn{s}{i}d` + ReLU for i = depth…1; the last conv of a stage narrows
  to the previous stage's width, and `conv11d` (to out_channels) has no BatchNorm or ReLU.
  """
  out_channels: int = 1
  channels: Sequence[int] = (64, 128, 256, 512, 512)

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    def conv_bn_relu(x, width, name):
      x = conv(width, 3, use_bias=True, kernel_init=TORCH_DEFAULT_INIT, name=f'conv{name}')(x)
      return nn.relu(batch_norm(train, f'bn{name}', groups=1)(x))

    indices = []
    for s, (depth, width) in enumerate(zip(_SEGNET_DEPTHS, self.channels), start=1):
      for i in range(1, depth + 1):
        x = conv_bn_relu(x, width, f'{s}{i}')
      x, idx = max_pool_2x2_with_indices(x)
      indices.append(idx)
    for s in range(len(_SEGNET_DEPTHS), 0, -1):
      x = max_unpool_2x2(x, indices[s - 1])
      for i in range(_SEGNET_DEPTHS[s - 1], 0, -1):
        if (s, i) == (1, 1):
          x = conv(self.out_channels, 3, use_bias=True, kernel_init=TORCH_DEFAULT_INIT, name='conv11d')(x)
        else:
          x = conv_bn_relu(x, self.channels[s - 1] if i > 1 else self.channels[s - 2], f'{s}{i}d')
    return x


class ReleasedFDP(nn.Module):
  """FDP as released; defaults are the released sizes (85.3 M parameters).

  __call__(frames, frame_mask=None, *, train):
    frames: (B, T, 64, 64, 1) float32, T = 8 (T · feature_dim must be 64·64·8), normalised as the release
            does it (input pipeline).
  Returns {'logits': (B, num_classes), 'dynamic_image': (B, 64, 64) in [0, 1]}. All B·T frames go through the
  encoder in one call, but its BatchNorms behave as in the release, which encodes each frame in its own
  call: in training every frame index is normalised by its own batch statistics over the B clips and the
  running statistics take T successive PyTorch updates (`layers.TorchBatchNorm`, groups = T); SegNet's
  BatchNorms are PyTorch's too (groups = 1). In training, dropout and stochastic depth draw from the
  'dropout' RNG stream and BatchNorm statistics update (`mutable=['batch_stats']`); in eval the model is
  deterministic.
  """
  num_classes: int = 5
  encoder: EncoderSpec = RELEASED_ENCODER
  feature_dim: int = 4096
  segnet_channels: Sequence[int] = (64, 128, 256, 512, 512)

  @nn.compact
  def __call__(self, frames: jax.Array, frame_mask: jax.Array | None = None, *,
               train: bool) -> dict[str, jax.Array]:
    # frame_mask is accepted so the trainer can call every FDP alike, and ignored: the release always
    # encodes exactly 8 real frames (the input pipeline never pads frames).
    del frame_mask
    b, t = frames.shape[:2]
    features = FrameRep(self.encoder, bn_groups=t, feature_dim=self.feature_dim, name='frame_rep')(
        frames.reshape((b * t,) + frames.shape[2:]), train=train)
    logits, feat = CLSNet(self.num_classes, name='mer')(released_volume(features.reshape(b, t, -1)))
    # feat (B, 64, 64, 1, 8) is PyTorch's (B, 8, 64, 64, 1); its 8 channels are the SegNet's input image.
    dynamic_image = SegNet(1, tuple(self.segnet_channels), name='dyimg_net')(feat[:, :, :, 0], train=train)
    return {'logits': logits, 'dynamic_image': jax.nn.sigmoid(dynamic_image[..., 0])}
