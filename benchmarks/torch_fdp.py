"""FDP as released, written again in PyTorch (`ReleasedFDPTorch`): the reference that benchmarks/torch_parity.py
compares the JAX `released` FDP with, and that benchmarks/torch_step.py times.

It is built from the released architecture as documented, not from the JAX code, so that the two are
independent; its state_dict has exactly the released keys, order and shapes
(`tests/fixtures/official_state_dict_keys.json`, 438 tensors with the BatchNorms' num_batches_tracked).
PyTorch layouts throughout:
  frames (B, 8, 1, 64, 64) float32 → frame_rep on each frame in turn (the release: "each of the 8 frames is
  encoded separately", so in training every frame has its own BatchNorm statistics) → features (B, 8, 4096)
  → features.view(B, 1, 64, 64, 8) → mer (CLS_Net): logits (B, 5), feat (B, 8, 64, 64, 1)
  → dyimg_net (SegNet) on feat's 8 channels → sigmoid → dynamic image (B, 64, 64).
The release's CLS_Net ends with log_softmax; here the model returns the logits and the loss applies
log_softmax, so that logits compare directly with the JAX model's. PyTorch is imported only by the
benchmarks/torch_*.py files and the tests that use them; fdp_jax does not depend on it.
"""

import torch
import torch.nn.functional as F
from torch import nn

# A narrower FDP for the tests: the released geometry (64-px frames, 8 frames, 4096-dim features, CLS_Net,
# SegNet's five stages) with every width and depth cut, so that both frameworks run it in seconds. Stage 0
# has two blocks (a stride-1 patch embedding that changes the width, then the identity one).
SMALL_FDP = {'stem_channels': (8, 8, 16), 'depths': (2, 1, 1, 1), 'channels': (24, 32, 32, 48),
             'segnet_channels': (8, 16, 16, 24, 24)}


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
    # On the CPU even when the model is built on the meta device (the state_dict check needs no weights).
    rates = torch.linspace(0, drop_path_rate, sum(depths), device='cpu').tolist()
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
  [0, 1], frame features (B, 8, 4096), SegNet pre-sigmoid output (B, 64, 64)). The widths and depths
  default to the released ones (`SMALL_FDP` narrows them for the tests)."""

  def __init__(self, num_classes: int = 5, drop_path_rate: float = 0.1, stem_channels=(64, 32, 64),
               depths=(3, 4, 10, 3), channels=(96, 192, 384, 768), segnet_channels=(64, 128, 256, 512, 512)):
    super().__init__()
    self.frame_rep = FrameRep(stem_channels, depths, channels, drop_path_rate=drop_path_rate)
    self.mer = CLSNet(num_classes)
    self.dyimg_net = SegNet(8, 1, segnet_channels)

  def forward(self, frames):
    b, t = frames.shape[:2]
    features = torch.stack([self.frame_rep(frames[:, i]) for i in range(t)], dim=1)
    # A plain view, not a permutation: rows 8t…8t+7 of the 64×64 map hold frame t (as the release views it).
    logits, feat = self.mer(features.view(b, 1, 64, 64, 8))
    segnet_out = self.dyimg_net(feat[..., 0])[:, 0]
    return logits, torch.sigmoid(segnet_out), features, segnet_out
