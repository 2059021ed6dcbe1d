"""grain input pipeline: T-frame sampling, crop/flip/jitter augmentation, dynamic-image targets, batching.

The rules are `fdp_jax.clip_rules`, which the on-device sampler (`fdp_jax.device_input`) runs too; here
they run on numpy, with the draws of a numpy Generator, and the host adds what only it does: PIL's resize,
registration (data.stabilise) and MOL's flow and landmark targets.

One record of the shared schema (`fdp_jax.schema`) becomes one example:
  frames         (T, S, S, 1) float32 in [-1, 1]   (x / 255 − 0.5) / 0.5, S = config.data.image_size; with
                                                    data.normalization 'released_per_split' then shifted
                                                    and scaled by the split's statistics (`split_statistics`);
                                                    with data.frame_reference 'clip_mean' or 'first', minus
                                                    that reference frame (`clip_rules.subtract_reference`); with
                                                    data.stabilise 'affine', each frame first registered
                                                    to the clip's mean frame (`preprocess.stabilise`)
  frame_mask     (T,) bool                          all True: sampling always yields T frames
  dynamic_image  (S, S) float32 in [0, 1]           the analytic dynamic image of the sampled frames
  label          () int32
  index          () int32                           record index in the corpus (maps back to sample_id)
  mask           () bool                            False only for padding in evaluation batches
With data.targets 'mol' (default 'mer' adds nothing), the MOL targets of the T − 1 frame pairs:
  flow           (T−1, S, S, 2) float32             (dx, dy) motion of each output pixel of sampled frame i
                                                    to sampled frame i+1, in output pixels: the stored
                                                    consecutive flows composed (`compose_flows`), cropped and
                                                    resized like the frames (and carried into the
                                                    registered frames with data.stabilise)
  landmarks      (T−1, 68, 2) float32               (x, y) of sampled frames 1 … T−1 (the second frame of
                                                    each pair) in output pixels (idem)
"""

from __future__ import annotations

from typing import Iterator, Sequence

import grain
import numpy as np
from PIL import Image
from scipy import ndimage

from fdp_jax import clip_rules
from fdp_jax.clip_rules import subtract_reference  # noqa: F401  (a public name of the host pipeline)
from fdp_jax.preprocess import stabilise


class SubsetSource:
  """A random-access view of some records of a source (one side of a cross-validation fold)."""

  def __init__(self, source: Sequence[dict], indices: Sequence[int]):
    self._source = source
    self._indices = np.asarray(indices, np.int64)

  def __len__(self) -> int:
    return len(self._indices)

  def __getitem__(self, i: int) -> dict:
    index = int(self._indices[i])
    return {**self._source[index], '_index': index}


def sample_frame_indices(window_length: int, num_frames: int, rule: str,
                         rng: np.random.Generator | None = None,
                         position: float | None = None) -> np.ndarray:
  """Indices (T,) int64 into a window of `window_length` frames, chronological, by `clip_rules.frame_positions`.

  With an rng (training), the draws: a uniform point in each segment ('segments', temporal jitter) or a
  random offset j < n // T ('released'). Without, the rule's evaluation frames, or those of evaluation view
  `position` in [0, 1) (`eval.num_views`): where in each segment ('segments') or which offset
  ⌊position · (n // T)⌋ ('released') to take.
  """
  n, t = window_length, num_frames
  if n < 1:
    raise ValueError('empty frame window')
  fraction, offset = 0.5 if position is None else position, 0
  if rule == 'segments' and rng is not None:
    fraction = rng.random(t)
  elif rule == 'released' and n >= t:
    if rng is not None:
      offset = int(rng.integers(n // t))
    elif position is not None:
      offset = clip_rules.released_offset(position, n, t)
  return clip_rules.frame_positions(n, t, rule, fraction, offset).astype(np.int64)


def _resize(frames: np.ndarray, size: int) -> np.ndarray:
  """(T, h, w) uint8 or float32 → (T, size, size) of the same dtype, bilinear (PIL, antialiased when
  shrinking). uint8 frames are interpolated in float32 and rounded to the nearest grey level (PIL's own
  uint8 path rounds by fixed-point approximations, a level off on a fifth of the pixels), which is what the
  on-device input computes too (`device_input`)."""
  if frames.shape[1:] == (size, size):
    return frames
  resized = np.stack([np.asarray(Image.fromarray(f.astype(np.float32)).resize((size, size), Image.BILINEAR))
                      for f in frames])
  if frames.dtype == np.uint8:
    return clip_rules.grey_levels(resized).astype(np.uint8)
  return resized


def compose_flows(flows: np.ndarray) -> np.ndarray:
  """The motion (S, S, 2) (dx, dy) from frame 0 to frame k, given the k consecutive flows (k, S, S, 2)
  (flows[i]: frame i → i+1). F_{a→c}(p) = F_{a→b}(p) + F_{b→c}(p + F_{a→b}(p)): each next flow is read,
  bilinearly, where the motion so far has carried the pixel (clamped to the border). k = 0 gives zeros."""
  flows = np.asarray(flows, np.float32)
  total = np.zeros(flows.shape[1:], np.float32) if len(flows) == 0 else flows[0].copy()
  if len(flows) > 1:
    ys, xs = np.mgrid[:flows.shape[1], :flows.shape[2]].astype(np.float32)
  for step in flows[1:]:
    where = np.stack([ys + total[..., 1], xs + total[..., 0]])
    total += np.stack([ndimage.map_coordinates(step[..., c], where, order=1, mode='nearest')
                       for c in range(2)], axis=-1)
  return total


def _resize_flow(flow: np.ndarray, size: int) -> np.ndarray:
  """(P, h, h, 2) → (P, size, size, 2): each component resized like the frames (`_resize`), the vectors
  scaled by size / h so that they stay in output pixels."""
  h = flow.shape[1]
  if h == size:
    return flow
  flow = np.ascontiguousarray(flow, np.float32)
  return np.stack([_resize(flow[..., c], size) for c in range(2)], axis=-1) * np.float32(size / h)


class ClipTransform:
  """Record → example dict (see module docstring). `train=True` enables the random augmentations;
  `normalization` (shift, scale) maps the [-1, 1] frames to (x − shift) / scale."""

  def __init__(self, data_config, train: bool, normalization: tuple[float, float] | None = None,
               view_position: float | None = None):
    self.cfg = data_config
    self.train = train
    self.normalization = normalization
    self.view_position = view_position     # evaluation: where in each segment to sample (None: the rule's)
    self.targets = data_config.targets
    self.stabilise = data_config.stabilise
    if self.stabilise not in stabilise.STABILISE:
      raise ValueError(f'unknown data.stabilise {self.stabilise!r}: use one of {stabilise.STABILISE}')
    if self.targets not in ('mer', 'mol'):
      raise ValueError(f"unknown data.targets {self.targets!r}: use 'mer' or 'mol'")
    if self.targets == 'mol' and data_config.horizontal_flip:
      # A flip would also have to swap the left/right iBUG-68 indices; the released MOL recipe never flips.
      raise ValueError("data.horizontal_flip is not supported with data.targets 'mol' (landmark targets); "
                       'the released MOL recipe does not flip')

  def window(self, record: dict) -> tuple[int, int]:
    if self.cfg.window == 'onset_offset':
      return int(record['onset']), int(record['offset']) + 1
    if self.cfg.window == 'whole':
      return 0, int(np.shape(record['frames'])[0])
    raise ValueError(f"unknown data.window {self.cfg.window!r}: use 'onset_offset' or 'whole'")

  def __call__(self, record: dict, rng: np.random.Generator | None = None) -> dict:
    cfg = self.cfg
    if self.targets == 'mol' and record.get('flow') is None:
      raise ValueError("data.targets 'mol' needs stored flow, and this builder config has no flow: use a "
                       "'*_144_flow' config of a licensed corpus or the synthetic_me 'mol' / 'tiny' config")
    start, stop = self.window(record)
    use_rng = rng if (self.train and cfg.temporal_jitter) else None
    idx = start + sample_frame_indices(stop - start, cfg.num_frames, cfg.frame_sampling, use_rng,
                                       None if self.train else self.view_position)
    frames = np.asarray(record['frames'])[idx, :, :, 0]                      # (T, S0, S0) uint8
    s0 = frames.shape[1]
    crop = clip_rules.crop_side(s0, cfg.crop_scale)
    if self.train and crop < s0:
      y, x = rng.integers(0, s0 - crop + 1, size=2)
    else:
      y = x = clip_rules.centred_corner(s0, crop)
    frames = _resize(frames[:, y:y + crop, x:x + crop], cfg.image_size)
    frames = clip_rules.flip_horizontally(frames, self.train and cfg.horizontal_flip and rng.random() < 0.5)
    warps = None
    if self.stabilise == 'affine':
      frames, warps = stabilise.register_to_clip_mean(frames)
    model_frames, dynamic_image = clip_rules.model_frames(frames, cfg, self.normalization)
    example = {
        'frames': model_frames,
        'frame_mask': np.ones((cfg.num_frames,), bool),
        'dynamic_image': dynamic_image,
        'label': np.int32(record['label']),
        'index': np.int32(record['_index']),
        'mask': np.bool_(True),
    }
    if self.targets == 'mol':
      targets = self.mol_targets(record, idx, y, x, crop)
      if warps is not None:
        targets = {'flow': stabilise.carry_flow(targets['flow'], warps),
                   'landmarks': stabilise.carry_points(targets['landmarks'], warps[1:])}
      example.update(targets)
    return example

  def mol_targets(self, record: dict, idx: np.ndarray, y: int, x: int, crop: int) -> dict:
    """The flow (T−1, S, S, 2) between consecutive sampled frames idx (T,) and the landmarks (T−1, 68, 2)
    of sampled frames 1 … T−1, through the frames' crop at (y, x) of side `crop` and resize to S."""
    size, stored = self.cfg.image_size, np.asarray(record['flow'])
    flow = np.zeros((len(idx) - 1,) + stored.shape[1:], np.float32)
    for i in range(len(idx) - 1):
      flow[i] = compose_flows(stored[idx[i]:idx[i + 1]])
    flow = _resize_flow(flow[:, y:y + crop, x:x + crop], size)
    # Pixel centres map as in the frames' resize: (u + 0.5) · size / crop − 0.5 (a pure shift at size == crop).
    landmarks = np.asarray(record['landmarks'], np.float32)[idx[1:]] - np.array([x, y], np.float32)
    landmarks = (landmarks + 0.5) * np.float32(size / crop) - 0.5
    return {'flow': flow.astype(np.float32), 'landmarks': landmarks.astype(np.float32)}


def split_statistics(source: Sequence[dict], indices: Sequence[int], data_config) -> tuple[float, float]:
  """The released per-split normalisation: (shift, scale) of one split — the mean of all its
  [-1, 1] frames (the evaluation sampling, no augmentation), and the maximum of the frames once shifted.

  The release computes these on each split separately, the test split included; that uses the held-out
  subject's own statistics (transductive), which is why it is an option of the released recipe only.
  """
  transform, split = ClipTransform(data_config, train=False), SubsetSource(source, indices)
  frames = [transform(split[i])['frames'] for i in range(len(split))]
  shift = sum(float(f.sum(dtype=np.float64)) for f in frames) / sum(f.size for f in frames)
  high = max(float(f.max()) for f in frames) - shift
  if not high > 0:
    raise ValueError('released per-split normalisation: the split is constant, nothing to scale by')
  return shift, high


NORMALIZATIONS = ('standard', 'released_per_split')


def normalization_for(source: Sequence[dict], indices: Sequence[int], data_config):
  """The (shift, scale) a split's frames get under `data.normalization`, or None ('standard')."""
  rule = data_config.normalization
  if rule == 'standard':
    return None
  if rule == 'released_per_split':
    return split_statistics(source, indices, data_config)
  raise ValueError(f"unknown data.normalization {rule!r}: use one of {NORMALIZATIONS}")


def example_shapes(data_config, batch_size: int) -> dict[str, np.ndarray]:
  """Zero arrays with the shapes and dtypes of a batch (B, ...) (for initialising a model); with
  data.targets 'mol' also the flow (B, T−1, S, S, 2) and landmark (B, T−1, 68, 2) targets."""
  t, s = data_config.num_frames, data_config.image_size
  shapes = {'frames': np.zeros((batch_size, t, s, s, 1), np.float32),
            'frame_mask': np.ones((batch_size, t), bool),
            'dynamic_image': np.zeros((batch_size, s, s), np.float32),
            'label': np.zeros((batch_size,), np.int32), 'index': np.zeros((batch_size,), np.int32),
            'mask': np.ones((batch_size,), bool)}
  if data_config.targets == 'mol':
    shapes['flow'] = np.zeros((batch_size, t - 1, s, s, 2), np.float32)
    shapes['landmarks'] = np.zeros((batch_size, t - 1, 68, 2), np.float32)
  return shapes


def _stack(examples: Sequence[dict]) -> dict:
  return {k: np.stack([e[k] for e in examples]) for k in examples[0]}


def train_iterator(source: Sequence[dict], indices: Sequence[int], data_config, batch_size: int,
                   seed: int, num_threads: int = 2,
                   normalization: tuple[float, float] | None = None) -> Iterator[dict]:
  """Endless shuffled, augmented batches (B, ...) of the given records; reshuffled every epoch."""
  if len(indices) == 0:
    raise ValueError('a training fold has no samples')
  transform = ClipTransform(data_config, train=True, normalization=normalization)
  ds = (grain.MapDataset.source(SubsetSource(source, indices)).seed(seed).shuffle().repeat()
        .random_map(transform).batch(batch_size, drop_remainder=True, batch_fn=_stack))
  options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=2 * batch_size)
  return iter(ds.to_iter_dataset(options))


def view_positions(num_views: int) -> list[float | None]:
  """Evaluation views: 1 → the sampling rule's own frames; V > 1 → positions (v + ½)/V in each segment."""
  if num_views < 1:
    raise ValueError(f'eval.num_views must be ≥ 1, got {num_views}')
  return [None] if num_views == 1 else [(v + 0.5) / num_views for v in range(num_views)]


def eval_batches(source: Sequence[dict], indices: Sequence[int], data_config, batch_size: int,
                 normalization: tuple[float, float] | None = None,
                 view_position: float | None = None) -> Iterator[dict]:
  """Deterministic batches covering every record once; the last is padded with mask=False examples."""
  transform = ClipTransform(data_config, train=False, normalization=normalization,
                            view_position=view_position)
  ds = grain.MapDataset.source(SubsetSource(source, indices)).map(transform)
  batch: list[dict] = []
  for example in ds:
    batch.append(example)
    if len(batch) == batch_size:
      yield _stack(batch)
      batch = []
  if batch:
    pad = {k: np.zeros_like(v) for k, v in batch[0].items()}
    pad['frame_mask'] = np.ones_like(batch[0]['frame_mask'])
    yield _stack(batch + [pad] * (batch_size - len(batch)))
