"""The dynamic-image decoder: FDP's auxiliary task reconstructs the clip's dynamic image.

Where the release runs a 29 M-parameter SegNet on its reshaped features, the paper design decodes the
pooled dynamic representation directly: a light upsampling path sized so that the last map matches the
input frames (e.g. 8×8 → 64×64 in three steps for the small config, 2×2 → 64×64 in five for the released
widths).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax

from fdp_jax.models.layers import ConvBNReLU, conv


class DynamicImageDecoder(nn.Module):
  """Dynamic representation (B, h, w, C) → dynamic image (B, H, W) float32 in [0, 1].

  One step per entry of `decoder_channels`: ×2 bilinear resize, then conv3x3 + BatchNorm + ReLU to that
  width; H = h·2^k, W = w·2^k with k = len(decoder_channels), and H, W must equal `image_size`. A 1×1
  conv to one channel and a sigmoid finish (the target is the uint8 dynamic image divided by 255).
  Resize-then-conv rather than a stride-2 transposed conv avoids checkerboard artefacts in a target that
  is smooth almost everywhere.
  """
  decoder_channels: Sequence[int]
  image_size: int

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    for i, width in enumerate(self.decoder_channels):
      b, h, w, c = x.shape
      x = jax.image.resize(x, (b, 2 * h, 2 * w, c), method='bilinear')
      x = ConvBNReLU(width, name=f'up_{i}')(x, train=train)
    if x.shape[1:3] != (self.image_size, self.image_size):
      raise ValueError(f'decoder output {x.shape[1:3]} != image_size {self.image_size}: the feature map '
                       f'is {x.shape[1] >> len(self.decoder_channels)} px and there are '
                       f'{len(self.decoder_channels)} ×2 steps')
    x = conv(1, 1, use_bias=True, name='to_image')(x)
    return jax.nn.sigmoid(x[..., 0])
