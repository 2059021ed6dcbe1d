"""FDP as released, written again in PyTorch: a whole-model parity check of the JAX `released`
variant and a same-machine PyTorch training-step baseline.

  python benchmarks/torch_released.py                        # --check: JAX vs PyTorch, eval mode, batch 2
  python benchmarks/torch_released.py --check_train          # the same in training mode (no drop path)
  python benchmarks/torch_released.py --time --steps=5       # PyTorch training step, batch 8, 8×64×64

The PyTorch model is built from the released architecture as documented, not from the JAX code, so that the two are independent; its
state_dict has exactly the released keys, order and shapes (`tests/fixtures/official_state_dict_keys.json`,
438 tensors with the BatchNorms' num_batches_tracked). PyTorch layouts throughout:
  frames (B, 8, 1, 64, 64) float32 → frame_rep on each frame in turn (the release: "each of the 8 frames is
  encoded separately", so in training every frame has its own BatchNorm statistics) → features (B, 8, 4096)
  → features.view(B, 1, 64, 64, 8) → mer (CLS_Net): logits (B, 5), feat (B, 8, 64, 64, 1)
  → dyimg_net (SegNet) on feat's 8 channels → sigmoid → dynamic image (B, 64, 64).
The release's CLS_Net ends with log_softmax; here the model returns the logits and the loss applies
log_softmax, so that logits compare directly with the JAX model's.

--check draws random variables for the JAX model (kernels, biases, BatchNorm scales and running
statistics, so that eval-mode BatchNorm and the biases are not identities), converts them with
`fdp_jax.convert.to_released_state_dict`, loads them here with strict=True and compares, on the same random
frames, the frame features, the logits, the log-probabilities and the dynamic image (and SegNet's
pre-sigmoid output), each as max|Δ| / max|ref| with JAX as the reference. It exits 1 when any of them
is above 1e-3.

--check_train does the same in training mode, with stochastic depth off on both sides (their random draws
cannot match): batch statistics instead of running ones, per frame in the encoder. It also compares every
BatchNorm's running mean and variance after the step (PyTorch's frame-by-frame updates against
`layers.TorchBatchNorm`'s closed form), as max|Δ| / max|ref| over all of them.

--time measures a full PyTorch training step (train mode, forward, NLL(log_softmax) + 100·MSE, backward,
Adam lr 1e-4 with coupled weight decay 1e-3) after one warm-up step, and prints one JSON line in the style
of benchmarks/train_step.py. PyTorch is imported only here; fdp_jax does not depend on it.
"""

import argparse
import dataclasses
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

try:
  import torch  # noqa: E402
  import torch.nn.functional as F  # noqa: E402
  from torch import nn  # noqa: E402
except ImportError:
  sys.exit('benchmarks/torch_released.py needs PyTorch, which fdp_jax does not depend on: pip install torch')

REFERENCE_KEYS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests', 'fixtures',
                              'official_state_dict_keys.json')
TOLERANCE = 1e-3


def make_divisible(v: float, divisor: int) -> int:
  """The release's rounding: max(d, int(v + d/2) // d · d), plus d if that is below 0.9·v."""
  new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
  return new_v + divisor if new_v < 0.9 * v else new_v


class DropPath(nn.Module):
  """Stochastic depth (timm's drop_path): in training a whole example's branch is dropped with
  probability `rate` and kept ones are scaled by 1/(1 − rate); the identity in eval."""

  def __init__(self, rate: float):
    super().__init__()
    self.rate = rate

  def forward(self, x):
    if not self.training or self.rate == 0.0:
      return x
    keep_prob = 1.0 - self.rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep_prob)
    return x / keep_prob * mask


class ConvBNReLU(nn.Module):
  """Stem layer: conv3x3 (padding 1, no bias) + BatchNorm + ReLU; (N, C_in, H, W) → (N, out, H/s, W/s)."""

  def __init__(self, in_channels: int, out_channels: int, stride: int):
    super().__init__()
    self.conv = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
    self.norm = nn.BatchNorm2d(out_channels, eps=1e-5)

  def forward(self, x):
    return F.relu(self.norm(self.conv(x)))


class PatchEmbed(nn.Module):
  """stride 2: 2×2 average pool (ceil mode, padding not counted) + 1×1 conv (no bias) + BatchNorm; stride 1
  with in ≠ out: 1×1 conv + BatchNorm; otherwise the identity (no parameters)."""

  def __init__(self, in_channels: int, out_channels: int, stride: int):
    super().__init__()
    self.identity = stride == 1 and in_channels == out_channels
    if not self.identity:
      self.avgpool = (nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False) if stride == 2
                      else nn.Identity())
      self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
      self.norm = nn.BatchNorm2d(out_channels, eps=1e-5)

  def forward(self, x):
    return x if self.identity else self.norm(self.conv(self.avgpool(x)))


class MHCA(nn.Module):
  """The released multi-head convolutional attention: one dense 3×3 conv (groups 1, no bias)."""

  def __init__(self, channels: int):
    super().__init__()
    self.group_conv3x3 = nn.Conv2d(channels, channels, 3, 1, 1, groups=1, bias=False)

  def forward(self, x):
    return self.group_conv3x3(x)


class ConvMLP(nn.Module):
  """1×1 conv (bias) → ReLU → dropout → 1×1 conv (bias) → dropout; (N, C, H, W) → (N, C, H, W)."""

  def __init__(self, channels: int, hidden: int, dropout: float):
    super().__init__()
    self.conv1 = nn.Conv2d(channels, hidden, 1)
    self.conv2 = nn.Conv2d(hidden, channels, 1)
    self.drop = nn.Dropout(dropout)

  def forward(self, x):
    return self.drop(self.conv2(self.drop(F.relu(self.conv1(x)))))


class LFABlock(nn.Module):
  """Local feature-aware block: x = PatchEmbed(x); x += DropPath(MHCA(x)); x += DropPath(MLP(BN(x)))."""

  def __init__(self, in_channels: int, out_channels: int, stride: int, drop_path: float,
               mlp_ratio: float = 3, dropout: float = 0.0):
    super().__init__()
    self.patch_embed = PatchEmbed(in_channels, out_channels, stride)
    self.mhca = MHCA(out_channels)
    self.attention_path_dropout = DropPath(drop_path)
    self.norm = nn.BatchNorm2d(out_channels, eps=1e-5)
    self.mlp = ConvMLP(out_channels, make_divisible(out_channels * mlp_ratio, 32), dropout)
    self.mlp_path_dropout = DropPath(drop_path)

  def forward(self, x):
    x = self.patch_embed(x)
    x = x + self.attention_path_dropout(self.mhca(x))
    return x + self.mlp_path_dropout(self.mlp(self.norm(x)))


class FrameRep(nn.Module):
  """The released frame encoder: stem, LFA-only stages (the released loop never builds the GFA blocks),
  BatchNorm, global average pool, Linear; frames (N, 1, 64, 64) → (N, feature_dim)."""

  def __init__(self, stem_channels=(64, 32, 64), depths=(3, 4, 10, 3), channels=(96, 192, 384, 768),
               drop_path_rate: float = 0.1, dropout: float = 0.0, feature_dim: int = 4096):
    super().__init__()
    c0, c1, c2 = stem_channels
    self.stem = nn.Sequential(ConvBNReLU(1, c0, 2), ConvBNReLU(c0, c1, 1), ConvBNReLU(c1, c2, 1),
                              ConvBNReLU(c2, c2, 2))
    rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
    blocks, in_channels = [], c2
    for stage, (depth, width) in enumerate(zip(depths, channels)):
      for j in range(depth):
        stride = 2 if stage > 0 and j == 0 else 1
        blocks.append(LFABlock(in_channels, width, stride, rates[len(blocks)], dropout=dropout))
        in_channels = width
    self.features = nn.Sequential(*blocks)
    self.norm = nn.BatchNorm2d(in_channels, eps=1e-5)
    self.avgpool = nn.AdaptiveAvgPool2d(1)
    self.proj_head = nn.Sequential(nn.Linear(in_channels, feature_dim))
    self.apply(_init_frame_rep)

  def forward(self, x):
    x = self.norm(self.features(self.stem(x)))
    return self.proj_head(torch.flatten(self.avgpool(x), 1))


def _init_frame_rep(module: nn.Module) -> None:
  """The release's init: conv / linear truncated normal std 0.02, bias 0; norms weight 1, bias 0."""
  if isinstance(module, (nn.Conv2d, nn.Linear)):
    nn.init.trunc_normal_(module.weight, std=0.02)
    if module.bias is not None:
      nn.init.zeros_(module.bias)
  elif isinstance(module, nn.BatchNorm2d):
    nn.init.ones_(module.weight)
    nn.init.zeros_(module.bias)


class CLSNet(nn.Module):
  """The released MER head `mer`. volume (B, 1, 64, 64, 8) → (logits (B, 5), feat (B, 8, 64, 64, 1)).

  Conv3d 1→8, kernel (3, 3, 8), padding (1, 1, 0): the kernel spans the last axis, so feat keeps one
  position there. MaxPool3d (3, 3, 1) → (B, 8, 21, 21, 1) → flatten 3528 → Linear 256 → ReLU → Linear.
  """

  def __init__(self, num_classes: int = 5, features: int = 8, hidden: int = 256):
    super().__init__()
    self.conv3d = nn.Conv3d(1, features, (3, 3, 8), padding=(1, 1, 0))
    self.pool = nn.MaxPool3d((3, 3, 1))
    self.fc1 = nn.Linear(features * 21 * 21, hidden)
    self.fc2 = nn.Linear(hidden, num_classes)

  def forward(self, volume):
    feat = self.conv3d(volume)
    x = torch.flatten(self.pool(feat), 1)
    return self.fc2(F.relu(self.fc1(x))), feat


SEGNET_DEPTHS = (2, 2, 3, 3, 3)


class SegNet(nn.Module):
  """The released `dyimg_net`: (B, in, H, W) → (B, out, H, W) pre-sigmoid.

  VGG16 encoder: stage s has `conv{s}{i}` (3×3, bias) + `bn{s}{i}` + ReLU, then max_pool2d(2, 2) keeping
  the indices; the decoder mirrors it (max_unpool2d at stage s's indices, `conv{s}{i}d` + `bn{s}{i}d` +
  ReLU for i = depth…1, the last conv of a stage narrowing to the previous width); `conv11d` → out
  channels has no BatchNorm or ReLU.
  """

  def __init__(self, in_channels: int = 8, out_channels: int = 1, channels=(64, 128, 256, 512, 512)):
    super().__init__()
    self.channels = channels
    width = in_channels
    for s, (depth, out) in enumerate(zip(SEGNET_DEPTHS, channels), start=1):
      for i in range(1, depth + 1):
        self._conv_bn(f'{s}{i}', width, out)
        width = out
    for s in range(len(SEGNET_DEPTHS), 0, -1):
      for i in range(SEGNET_DEPTHS[s - 1], 0, -1):
        if (s, i) == (1, 1):
          self.conv11d = nn.Conv2d(width, out_channels, 3, padding=1)
        else:
          out = channels[s - 1] if i > 1 else channels[s - 2]
          self._conv_bn(f'{s}{i}d', width, out)
          width = out

  def _conv_bn(self, name: str, in_channels: int, out_channels: int) -> None:
    # Registered conv first, then its BatchNorm, which is the order of the released state_dict.
    setattr(self, f'conv{name}', nn.Conv2d(in_channels, out_channels, 3, padding=1))
    setattr(self, f'bn{name}', nn.BatchNorm2d(out_channels, momentum=0.1))

  def _conv_bn_relu(self, x, name: str):
    return F.relu(getattr(self, f'bn{name}')(getattr(self, f'conv{name}')(x)))

  def forward(self, x):
    indices = []
    for s, depth in enumerate(SEGNET_DEPTHS, start=1):
      for i in range(1, depth + 1):
        x = self._conv_bn_relu(x, f'{s}{i}')
      x, idx = F.max_pool2d(x, 2, 2, return_indices=True)
      indices.append(idx)
    for s in range(len(SEGNET_DEPTHS), 0, -1):
      x = F.max_unpool2d(x, indices[s - 1], 2, 2)
      for i in range(SEGNET_DEPTHS[s - 1], 0, -1):
        x = self.conv11d(x) if (s, i) == (1, 1) else self._conv_bn_relu(x, f'{s}{i}d')
    return x


class ReleasedFDPTorch(nn.Module):
  """FDP as released. frames (B, 8, 1, 64, 64) float32 → (logits (B, 5), dynamic image (B, 64, 64) in
  [0, 1], frame features (B, 8, 4096), SegNet pre-sigmoid output (B, 64, 64))."""

  def __init__(self, num_classes: int = 5, drop_path_rate: float = 0.1):
    super().__init__()
    self.frame_rep = FrameRep(drop_path_rate=drop_path_rate)
    self.mer = CLSNet(num_classes)
    self.dyimg_net = SegNet(8, 1)

  def forward(self, frames):
    b, t = frames.shape[:2]
    features = torch.stack([self.frame_rep(frames[:, i]) for i in range(t)], dim=1)
    # A plain view, not a permutation: rows 8t…8t+7 of the 64×64 map hold frame t (as the release views it).
    logits, feat = self.mer(features.view(b, 1, 64, 64, 8))
    segnet_out = self.dyimg_net(feat[..., 0])[:, 0]
    return logits, torch.sigmoid(segnet_out), features, segnet_out


def check_state_dict_keys(model: nn.Module) -> int:
  """Asserts the model's state_dict is the released one (keys, order, shapes, dtypes); returns its size."""
  with open(REFERENCE_KEYS) as f:
    expected = [(k, tuple(s), d) for k, s, d in json.load(f)['fdp']]
  actual = [(k, tuple(v.shape), str(v.dtype).removeprefix('torch.')) for k, v in model.state_dict().items()]
  if actual != expected:
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    sys.exit(f'state_dict differs from the release: missing {missing[:10]}, extra {extra[:10]}'
             + (', same entries in another order' if not missing and not extra else ''))
  return len(actual)


def random_variables(module, frames: np.ndarray, seed: int):
  """Variables of the JAX module with every leaf drawn here: kernels U(±1/√fan_in) (PyTorch's default
  scale), biases N(0, 0.02²), BatchNorm scales U(0.5, 1.5), running means N(0, 0.1²) and variances
  U(0.5, 2), so that eval-mode BatchNorm and every bias take part in the comparison. Shapes come from
  `jax.eval_shape` of `init`: the module's own initialisers (85 M parameters from JAX's RNG) would take
  about a minute on two CPU cores and leave the BatchNorms and biases trivial anyway."""
  import flax
  import jax
  key = jax.random.key(seed)
  abstract = jax.eval_shape(lambda x: module.init({'params': key, 'dropout': key}, x, train=False), frames)
  rng = np.random.default_rng(seed)
  draw = {'mean': lambda shape: rng.normal(0, 0.1, shape), 'var': lambda shape: rng.uniform(0.5, 2.0, shape),
          'scale': lambda shape: rng.uniform(0.5, 1.5, shape), 'bias': lambda shape: rng.normal(0, 0.02, shape),
          'kernel': lambda shape: rng.uniform(-1, 1, shape) / np.sqrt(np.prod(shape[:-1]))}
  flat = flax.traverse_util.flatten_dict(abstract)
  flat = {path: draw[path[-1]](leaf.shape).astype(np.float32) for path, leaf in flat.items()}
  return flax.traverse_util.unflatten_dict(flat)


def jax_forward(frames: np.ndarray, seed: int, train: bool = False):
  """The JAX released model on frames (B, 8, 64, 64, 1): (outputs, state_dict, state_dict after). outputs
  holds logits, dynamic image, frame features (B, 8, 4096) and SegNet's pre-sigmoid output (B, 64, 64);
  in training (no drop path) the second state_dict holds the updated running statistics."""
  import jax
  import jax.numpy as jnp
  from fdp_jax.convert import to_released_state_dict
  from fdp_jax.models.fdp_released import RELEASED_ENCODER, ReleasedFDP

  # The released sizes; drop path only matters in training.
  module = ReleasedFDP(encoder=dataclasses.replace(RELEASED_ENCODER, drop_path_rate=0.0))
  variables = random_variables(module, frames, seed)

  def capture(mdl, method_name):
    return method_name == '__call__' and mdl.scope.path in (('frame_rep',), ('dyimg_net',))
  apply = jax.jit(lambda v, x: module.apply(v, x, train=train, capture_intermediates=capture,
                                            mutable=['intermediates', 'batch_stats'] if train else
                                            ['intermediates']))
  (logits, dynamic_image), state = apply(variables, jnp.asarray(frames))
  after = dict(variables, batch_stats=state['batch_stats']) if train else variables
  inter = state['intermediates']
  b, t = frames.shape[:2]
  outputs = {'logits': logits, 'log_probs': jax.nn.log_softmax(logits), 'dynamic_image': dynamic_image,
             # FrameRep calls LGFAT.__call__ through super(): the last value sown is the encoder's output.
             'features': inter['frame_rep']['__call__'][-1].reshape(b, t, -1),
             'segnet_out': inter['dyimg_net']['__call__'][-1][..., 0]}
  return ({k: np.asarray(v) for k, v in outputs.items()}, to_released_state_dict(variables),
          to_released_state_dict(after))


def relative_error(actual: np.ndarray, reference: np.ndarray) -> float:
  if actual.shape != reference.shape:
    raise ValueError(f'shape {actual.shape} against the reference {reference.shape}')
  return float(np.max(np.abs(actual - reference)) / np.max(np.abs(reference)))


def check(batch: int, seed: int, train: bool = False) -> int:
  """Parity of the PyTorch model with the JAX `released` variant in eval (or training) mode; returns the
  exit code."""
  rng = np.random.default_rng(seed)
  frames = rng.uniform(-1, 1, (batch, 8, 64, 64, 1)).astype(np.float32)
  if train:   # frames that differ in brightness over time, so per-frame statistics differ from pooled ones
    frames = (frames * 0.5 + np.linspace(-0.4, 0.4, 8)[None, :, None, None, None]).astype(np.float32)
  reference, state_dict, after = jax_forward(frames, seed, train)
  model = ReleasedFDPTorch(drop_path_rate=0.0)
  num_keys = check_state_dict_keys(model)
  model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state_dict.items()}, strict=True)
  model.train(train)
  with torch.no_grad():
    logits, dynamic_image, features, segnet_out = model(torch.from_numpy(frames).permute(0, 1, 4, 2, 3))
  ours = {'logits': logits, 'log_probs': F.log_softmax(logits, -1), 'dynamic_image': dynamic_image,
          'features': features, 'segnet_out': segnet_out}
  errors = {k: relative_error(v.numpy(), reference[k]) for k, v in ours.items()}
  if train:   # every BatchNorm's running statistics after the step, all together
    running = [k for k in after if k.endswith(('running_mean', 'running_var'))]
    torch_state = model.state_dict()
    errors['running_stats'] = max(relative_error(torch_state[k].numpy(), np.asarray(after[k]))
                                  for k in running)
  # The dynamic image sits near 0.5 where the sigmoid is flat, so SegNet's pre-sigmoid output is gated too.
  worst = max(errors.values())
  print(json.dumps({'mode': 'check_train' if train else 'check', 'batch': batch,
                    'state_dict_keys_matched': num_keys,
                    'max_rel_err': {k: float(f'{v:.3g}') for k, v in errors.items()},
                    'ref_max_abs': {k: float(f'{np.max(np.abs(v)):.3g}') for k, v in reference.items()},
                    'tolerance': TOLERANCE, 'ok': worst <= TOLERANCE}))
  return 0 if worst <= TOLERANCE else 1


def time_train_step(batch: int, frames: int, image: int, num_steps: int, seed: int) -> dict:
  """Milliseconds per full PyTorch training step of the released model on random data."""
  torch.manual_seed(seed)
  model = ReleasedFDPTorch().train()
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-3)
  clips = torch.rand(batch, frames, 1, image, image) * 2 - 1
  target = torch.rand(batch, image, image)
  labels = torch.randint(0, 5, (batch,))

  def step():
    optimizer.zero_grad(set_to_none=True)
    logits, dynamic_image, _, _ = model(clips)
    loss = F.nll_loss(F.log_softmax(logits, -1), labels) + 100 * F.mse_loss(dynamic_image, target)
    loss.backward()
    optimizer.step()
    return loss.item()

  t0 = time.perf_counter()
  step()
  warmup_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  for _ in range(num_steps):
    loss = step()
  dt = (time.perf_counter() - t0) / num_steps
  return {
      'model': 'released_torch', 'framework': f'torch {torch.__version__}', 'device': 'cpu',
      'threads': torch.get_num_threads(), 'batch': batch, 'frames': frames, 'image': image,
      'params': sum(p.numel() for p in model.parameters()), 'warmup_s': round(warmup_s, 1),
      'step_ms': round(dt * 1000, 1), 'clips_per_s': round(batch / dt, 2), 'loss': round(loss, 4),
      'peak_rss_mib': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
  }


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  mode = p.add_mutually_exclusive_group()
  mode.add_argument('--check', action='store_true', help='JAX vs PyTorch parity (the default)')
  mode.add_argument('--check_train', action='store_true', help='the same parity in training mode')
  mode.add_argument('--time', action='store_true', help='PyTorch training-step throughput')
  p.add_argument('--batch', type=int, default=None, help='default 2 for --check, 8 for --time')
  p.add_argument('--steps', type=int, default=5)
  p.add_argument('--seed', type=int, default=0)
  a = p.parse_args()
  if a.time:
    print(json.dumps(time_train_step(a.batch or 8, 8, 64, a.steps, a.seed)))
  else:
    sys.exit(check(a.batch or 2, a.seed, train=a.check_train))


if __name__ == '__main__':
  main()
