"""The corpus on the device: a corpus whose frames fit in a fraction of one device's memory is placed there
once, and every training batch is sampled, augmented and normalised inside the jitted step from the
step's PRNG key — no host pipeline between steps. The on-device twin of `fdp_jax.input_pipeline`, which
stays the path for corpora that do not fit, for MOL's flow and landmark targets, and the reference.

The rules are the host pipeline's, the same functions (`fdp_jax.clip_rules`) run on jnp: T frames per clip
by `data.frame_sampling`, a random crop of side round(S0·crop_scale) resized to `image_size` (bilinear,
antialiased), a horizontal flip with probability ½, (x/255 − 0.5)/0.5, the split statistics of
`released_per_split`, the frame reference, and the analytic dynamic image as target; the draws come from
jax.random. Training draws its records epoch by epoch, each epoch a fresh permutation of the fold's training
records. Evaluation gathers the frames the host's index rules chose (`eval_frame_indices`), so its batches
are the host's.

State is the PRNG key and the step: a resumed fold draws exactly what an uninterrupted one drew.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fdp_jax import clip_rules, input_pipeline

ON_DEVICE = ('auto', 'always', 'never')


def stored_bytes(index, data_config) -> int:
  """Bytes the on-device corpus takes (`data_sources.CorpusIndex`): every record's sampling window of uint8
  frames, padded to the longest."""
  lengths = index.window_lengths if data_config.window == 'onset_offset' else index.num_frames
  return int(len(index)) * int(np.max(lengths)) * int(np.prod(index.frame_shape))


def use_device_input(data_config, index, device) -> bool:
  """Whether a run samples on the device: `data.on_device` 'always' / 'never', or 'auto': on TPU and GPU,
  for FDP's targets, when the stored windows take at most `data.device_share` of the device's memory.
  On CPU 'auto' keeps the host pipeline (the device's memory is the host's, and the host pipeline is the
  reference the CPU results were measured with)."""
  choice = data_config.on_device
  if choice not in ON_DEVICE:
    raise ValueError(f'unknown data.on_device {choice!r}: use one of {ON_DEVICE}')
  if data_config.targets != 'mer' or data_config.stabilise != 'none':
    if choice == 'always':
      raise ValueError("data.on_device='always' needs data.targets 'mer' and data.stabilise 'none': MOL's "
                       'flow targets are composed, and frames registered, on the host')
    return False
  if choice != 'auto':
    return choice == 'always'
  if device.platform == 'cpu':
    return False
  limit = (device.memory_stats() or {}).get('bytes_limit')
  return bool(limit) and stored_bytes(index, data_config) <= float(data_config.device_share) * limit


def load_clips(source: Sequence[dict], data_config) -> dict[str, np.ndarray]:
  """Every record's sampling window (`data.window`), padded to the longest: {'frames': (N, L, S0, S0)
  uint8, 'length': (N,) int32 frames in each window, 'label': (N,) int32}."""
  transform = input_pipeline.ClipTransform(data_config, train=False)
  windows, labels = [], []
  for i in range(len(source)):
    record = source[i]
    start, stop = transform.window(record)
    windows.append(np.asarray(record['frames'])[start:stop, :, :, 0])
    labels.append(int(record['label']))
  longest = max(len(w) for w in windows)
  frames = np.zeros((len(windows), longest) + windows[0].shape[1:], np.uint8)
  for i, window in enumerate(windows):
    frames[i, :len(window)] = window
  return {'frames': frames, 'length': np.asarray([len(w) for w in windows], np.int32),
          'label': np.asarray(labels, np.int32)}


def fold_table(train_indices: np.ndarray, class_weight: np.ndarray, normalization, num_records: int,
               active: bool = True) -> dict[str, np.ndarray]:
  """What a slot's on-device sampling needs of its fold: the training records padded to `num_records`,
  their count, the class weights (C,), the normalisation (shift, scale) and whether the slot trains."""
  padded = np.zeros((num_records,), np.int32)
  padded[:len(train_indices)] = train_indices
  shift, scale = normalization if normalization is not None else (0.0, 1.0)
  return {'train_indices': padded, 'num_train': np.int32(len(train_indices)),
          'class_weight': np.asarray(class_weight, np.float32),
          'normalization': np.asarray([shift, scale], np.float32), 'active': np.bool_(active)}


def idle_table(num_records: int, num_classes: int) -> dict[str, np.ndarray]:
  """The table of a slot without a fold: it samples record 0 and trains on nothing (every clip masked)."""
  return fold_table(np.zeros((1,), np.int32), np.zeros((num_classes,), np.float32), None, num_records,
                    active=False)


def _frame_positions(n: jax.Array, num_frames: int, rule: str, u: jax.Array | None) -> jax.Array:
  """(T,) int32 indices into a window of n frames (`clip_rules.frame_positions`); u: (T,) uniforms in [0, 1)
  for temporal jitter ('segments': the point in each segment; 'released': u[0] the offset's), or None for the
  rule's evaluation frames."""
  if u is None:
    return clip_rules.frame_positions(n, num_frames, rule, xp=jnp)
  offset = clip_rules.released_offset(u[0], n, num_frames, jnp) if rule == 'released' else 0
  return clip_rules.frame_positions(n, num_frames, rule, u, offset, jnp)


def _crop_and_resize(frames: jax.Array, y: jax.Array, x: jax.Array, crop: int, size: int) -> jax.Array:
  """(T, S0, S0) uint8 → the (crop × crop) window at (y, x), resized to size × size: float32 grey levels,
  rounded to whole levels as the host's uint8 resize leaves them."""
  window = jax.lax.dynamic_slice(frames, (0, y, x), (frames.shape[0], crop, crop)).astype(jnp.float32)
  if crop == size:
    return window
  resized = jax.image.resize(window, (frames.shape[0], size, size), 'bilinear', antialias=True)
  return clip_rules.grey_levels(resized, jnp)


def _example(clips: dict, record: jax.Array, positions: jax.Array, y, x, flip, table: dict, data_config) -> dict:
  s0 = clips['frames'].shape[-1]
  crop = clip_rules.crop_side(s0, data_config.crop_scale)
  frames = _crop_and_resize(clips['frames'][record][positions], y, x, crop, data_config.image_size)
  frames = clip_rules.flip_horizontally(frames, flip, jnp)
  normalization = None
  if data_config.normalization != 'standard':
    normalization = table['normalization'][0], table['normalization'][1]
  model_frames, dynamic_image = clip_rules.model_frames(frames, data_config, normalization, jnp)
  label = clips['label'][record]
  return {'frames': model_frames, 'frame_mask': jnp.ones((data_config.num_frames,), bool),
          'dynamic_image': dynamic_image, 'label': label, 'index': record.astype(jnp.int32),
          'mask': table['active'], 'class_weight': table['class_weight'][label]}


def train_batch(clips: dict, table: dict, shuffle_key: jax.Array, sample_key: jax.Array, step: jax.Array,
                data_config, batch_size: int) -> dict:
  """The training batch (B, ...) of step `step` for one fold, as `input_pipeline.train_iterator` makes it
  (plus its 'class_weight'). Records: position p = step·B + j of the fold's stream is record
  perm_e[p mod n] of epoch e = p // n, each epoch's permutation drawn from fold_in(shuffle_key, e) (B ≤ n:
  a batch spans at most two epochs). Everything else random comes from fold_in(sample_key, step)."""
  clips, table = jax.tree.map(jnp.asarray, (clips, table))
  n = table['num_train']
  width = table['train_indices'].shape[0]
  positions = step * batch_size + jnp.arange(batch_size)
  epochs, within = positions // n, positions % n

  def permutation(epoch):
    u = jax.random.uniform(jax.random.fold_in(shuffle_key, epoch), (width,))
    return jnp.argsort(jnp.where(jnp.arange(width) < n, u, 2.0))   # the n real records first, shuffled

  first = epochs[0]
  perms = jnp.stack([permutation(first), permutation(first + 1)])
  records = table['train_indices'][perms[epochs - first, within]]

  keys = jax.random.split(jax.random.fold_in(sample_key, step), batch_size)
  s0 = clips['frames'].shape[-1]
  crop = clip_rules.crop_side(s0, data_config.crop_scale)
  t = data_config.num_frames

  def one(record, key):
    k_time, k_y, k_x, k_flip = jax.random.split(key, 4)
    u = jax.random.uniform(k_time, (t,)) if data_config.temporal_jitter else None
    positions = _frame_positions(clips['length'][record], t, data_config.frame_sampling, u)
    y = jax.random.randint(k_y, (), 0, s0 - crop + 1)
    x = jax.random.randint(k_x, (), 0, s0 - crop + 1)
    flip = data_config.horizontal_flip & (jax.random.uniform(k_flip) < 0.5)
    return _example(clips, record, positions, y, x, flip, table, data_config)
  return jax.vmap(one)(records, keys)


def eval_frame_indices(lengths: np.ndarray, data_config, position: float | None) -> np.ndarray:
  """(N, T) int32: the frames evaluation takes of every window (view `position`; None: the rule's own),
  by the host's `input_pipeline.sample_frame_indices`, so device and host evaluate the same frames."""
  return np.stack([input_pipeline.sample_frame_indices(int(n), data_config.num_frames,
                                                       data_config.frame_sampling, None, position)
                   for n in lengths]).astype(np.int32)


def eval_batch(clips: dict, table: dict, records: jax.Array, mask: jax.Array, positions: jax.Array,
               data_config) -> dict:
  """An evaluation batch (B, ...) of `records` (B,) with their frame indices `positions` (B, T) and the
  centred crop: what `input_pipeline.eval_batches` makes of them. Padding rows (mask False) are record 0."""
  clips, table = jax.tree.map(jnp.asarray, (clips, table))
  s0 = clips['frames'].shape[-1]
  offset = clip_rules.centred_corner(s0, clip_rules.crop_side(s0, data_config.crop_scale))

  def one(record, index, valid):
    example = _example(clips, record, index, offset, offset, False, dict(table, active=valid), data_config)
    return {k: v for k, v in example.items() if k != 'class_weight'}
  return jax.vmap(one)(records, positions, mask)
