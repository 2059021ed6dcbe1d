"""The rules that turn a clip's sampling window into a model input, written once for both executors: the host
pipeline (`fdp_jax.input_pipeline`, numpy, `xp=np`) and the on-device sampler (`fdp_jax.device_input`,
jax.numpy under jit, `xp=jnp`). Each executor draws its own randomness (a numpy Generator on the host,
jax.random on the device) and passes the draws in, so a rule here never draws.

The rules: which T frames of a window ('segments' / 'released', `frame_positions`), the crop's geometry
(`crop_side`, `centred_corner`), resized frames as whole grey levels (`grey_levels`), the horizontal flip
(`flip_horizontally`), and the model's frames — (x / 255 − 0.5) / 0.5, a split's (shift, scale), the frame
reference — with the dynamic-image target (`model_frames`). The resize itself stays with each executor (PIL
on the host, `jax.image.resize` on the device); both interpolate in float32 and round by `grey_levels`.
"""

from __future__ import annotations

import numpy as np

from fdp_jax.preprocess.dynamic_image import arp_coefficients


def frame_positions(n, num_frames: int, rule: str, fraction=0.5, offset=0, xp=np):
  """(T,) int32 indices into a window of n frames (an int, or a () int32 array under jit), chronological.

  rule 'segments': the window is cut into T equal segments and each segment gives its frame at `fraction`
    ((T,) or () in [0, 1)): ½ in evaluation, a uniform draw per segment in training (temporal jitter),
    (v + ½) / V for evaluation view v of V.
  rule 'released': the released code's i·(n // T) + `offset` (0 ≤ offset < n // T: 0 in evaluation, a uniform
    draw in training — MOL's "every temporal offset" augmentation — or `released_offset` for a view). A window
    shorter than T repeats frames: ⌊i·n / T⌋.
  """
  if rule == 'segments':
    # The point inside each segment keeps each executor's arithmetic (the host's float64 segment edges, the
    # device's float32 (i + fraction)·n / T): the two round differently in the last bit, which the floor can
    # expose, and each path's results were measured with its own.
    if xp is np:
      edges = np.arange(num_frames + 1) * (n / num_frames)
      point = edges[:-1] + fraction * (edges[1:] - edges[:-1])
    else:
      point = (xp.arange(num_frames, dtype=xp.float32) + fraction) * n.astype(xp.float32) / num_frames
    return xp.clip(xp.floor(point), 0, n - 1).astype(xp.int32)
  if rule == 'released':
    step = n // num_frames
    i = xp.arange(num_frames, dtype=xp.int32)
    return xp.where(step == 0, i * n // num_frames, i * step + offset).astype(xp.int32)
  raise ValueError(f"unknown frame sampling rule {rule!r}: use 'segments' or 'released'")


def released_offset(fraction, n, num_frames: int, xp=np):
  """The released rule's offset at `fraction` in [0, 1) of a window of n frames: ⌊fraction · (n // T)⌋, kept
  below n // T where float rounding would reach it; () int32."""
  step = n // num_frames
  return xp.minimum(xp.floor(fraction * step), step - 1).astype(xp.int32)


def crop_side(stored_size: int, crop_scale: float) -> int:
  """The side of the square crop taken of S0-px stored frames."""
  return int(round(stored_size * crop_scale))


def centred_corner(stored_size: int, crop: int) -> int:
  """The top (= left) coordinate of the evaluation crop: centred, rounded towards the top left."""
  return (stored_size - crop) // 2


def grey_levels(resized, xp=np):
  """Resized frames (float32, interpolated from uint8) → the nearest whole grey levels 0..255, float32."""
  return xp.clip(xp.round(resized), 0, 255)


def flip_horizontally(frames, flip, xp=np):
  """frames (T, S, S) mirrored left–right where `flip` (a bool, or () bool under jit) holds."""
  return xp.where(flip, frames[:, :, ::-1], frames)


def subtract_reference(frames, rule: str, gain: float = 1.0):
  """frames (T, S, S) minus a reference frame of the same clip: 'none' (the frames as they are, the
  paper's input), 'clip_mean' (each pixel's mean over the T sampled frames) or 'first' (the first sampled
  frame). Subtracting a reference of the same clip removes the subject's appearance — which varies far
  more than 1–2 px of facial motion — and leaves the motion, before the first layer sees the frames.
  The difference is multiplied by `gain` (the residual motion is a few grey levels). numpy or jnp frames."""
  if rule == 'none':
    return frames
  if rule == 'clip_mean':
    return (frames - frames.mean(axis=0, keepdims=True)) * np.float32(gain)
  if rule == 'first':
    return (frames - frames[:1]) * np.float32(gain)
  raise ValueError(f"unknown data.frame_reference {rule!r}: use 'none', 'clip_mean' or 'first'")


def dynamic_image_target(frames01, xp=np):
  """(T, S, S) float32 in [0, 1] → the released dynamic-image target (S, S) float32 in [0, 1]: the raw
  dynamic image (approximate rank pooling) min-max scaled and truncated to whole levels 0..255, / 255; all
  zeros for a clip without motion. numpy computes it in float64 as `preprocess.dynamic_image.dynamic_image_uint8`
  does (the raw image rounded to float32 on the way), jnp in float32: the two can be a level apart."""
  dtype = np.float64 if xp is np else xp.float32
  coefficients = xp.asarray(arp_coefficients(frames01.shape[0]), dtype)
  raw = xp.tensordot(coefficients, frames01.astype(dtype), axes=(0, 0)).astype(xp.float32).astype(dtype)
  lo, hi = raw.min(), raw.max()
  levels = xp.floor((raw - lo) * (255.0 / xp.maximum(hi - lo, 1e-12)))
  levels = xp.where(hi - lo <= 1e-12, 0.0, xp.clip(levels, 0, 255))
  return levels.astype(xp.float32) / 255.0


def model_frames(grey, data_config, normalization=None, xp=np):
  """grey (T, S, S) grey levels 0..255 (uint8 or float32) → (frames (T, S, S, 1) float32: (x / 255 − 0.5) / 0.5,
  then (· − shift) / scale for a split's `normalization` (shift, scale) (None: none), then minus
  `data.frame_reference` × `data.reference_gain`; dynamic-image target (S, S) float32 of the grey frames)."""
  frames01 = grey.astype(xp.float32) / 255.0
  normalised = (frames01 - 0.5) / 0.5
  if normalization is not None:
    shift, scale = normalization
    normalised = (normalised - xp.asarray(shift, xp.float32)) / xp.asarray(scale, xp.float32)
  normalised = subtract_reference(normalised, data_config.frame_reference,
                                  data_config.reference_gain)
  return normalised[..., None], dynamic_image_target(frames01, xp)
