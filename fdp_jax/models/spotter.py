"""The spotter: expression scores of a snippet of a long video, from the motion inside it.

A snippet is 2K+1 consecutive frames centred on the frame being scored; the input pipeline samples T of
them and subtracts the snippet's first sampled frame (`data.frame_reference='first'`), so what reaches the
network is how the face has moved since the snippet began — the appearance of the subject is gone. Each
difference frame goes through a small strided conv stack (shared over time) to a vector that keeps a coarse
map of *where* the face moved (eyes, brows, mouth: a blink and a brow raise differ by place, not by
amount); a temporal conv over the T vectors sees *how* it moved (a micro-expression rises and falls inside
the snippet, a macro-expression fills it, a head drift is a smooth ramp everywhere); a linear head scores
the classes none / micro / macro.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from fdp_jax.models import layers


class Spotter(nn.Module):
  """frames (B, T, S, S, 1), frame_mask (B, T) → {'logits': (B, num_classes)}."""
  num_classes: int = 3
  channels: Sequence[int] = (16, 32, 64)
  map_side: int = 4          # the conv stack's output is pooled to map_side² cells, flattened
  hidden: int = 128
  temporal_kernel: int = 3
  dropout: float = 0.1

  @nn.compact
  def __call__(self, frames: jax.Array, frame_mask: jax.Array, train: bool = False) -> dict:
    b, t, s = frames.shape[:3]
    x = frames.reshape((b * t, s, s, frames.shape[-1]))
    for i, c in enumerate(self.channels):
      x = layers.ConvBNReLU(c, stride=2, name=f'conv{i}')(x, train=train)
    side = x.shape[1]
    if side > self.map_side:
      w = side // self.map_side
      x = nn.avg_pool(x, (w, w), (w, w))
    x = layers.dense(self.hidden, name='frame_embed')(x.reshape((b, t, -1)))
    x = nn.relu(x)
    x = nn.Conv(self.hidden, (self.temporal_kernel,), padding='SAME', name='temporal')(x)
    x = nn.relu(x)
    weight = frame_mask.astype(x.dtype)[..., None]
    pooled = jnp.concatenate([(x * weight).sum(1) / jnp.maximum(weight.sum(1), 1.0),
                              jnp.where(weight > 0, x, -jnp.inf).max(1)], axis=-1)
    pooled = nn.Dropout(self.dropout, deterministic=not train)(pooled)
    return {'logits': layers.dense(self.num_classes, name='head')(pooled).astype(jnp.float32)}
