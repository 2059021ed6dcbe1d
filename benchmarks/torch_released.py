"""FDP and MOL as released, written again in PyTorch: whole-model parity checks of the JAX `released`
FDP and `MOL`, and a same-machine PyTorch training-step baseline of FDP.

  python benchmarks/torch_released.py                        # --check: JAX vs PyTorch, eval mode, batch 2
  python benchmarks/torch_released.py --check_train          # the same in training mode (no drop path)
  python benchmarks/torch_released.py --model=mol            # MOL (either check; --routing=xla too)
  python benchmarks/torch_released.py --time --steps=5       # PyTorch training step, batch 8, 8×64×64

The PyTorch FDP is built from the released architecture as documented, not from the JAX code, so that the
two are independent; its state_dict has exactly the released keys, order and shapes
(`tests/fixtures/official_state_dict_keys.json`, 438 tensors with the BatchNorms' num_batches_tracked).
PyTorch layouts throughout:
  frames (B, 8, 1, 64, 64) float32 → frame_rep on each frame in turn (the release: "each of the 8 frames is
  encoded separately", so in training every frame has its own BatchNorm statistics) → features (B, 8, 4096)
  → features.view(B, 1, 64, 64, 8) → mer (CLS_Net): logits (B, 5), feat (B, 8, 64, 64, 1)
  → dyimg_net (SegNet) on feat's 8 channels → sigmoid → dynamic image (B, 64, 64).
The release's CLS_Net ends with log_softmax; here the model returns the logits and the loss applies
log_softmax, so that logits compare directly with the JAX model's.

The PyTorch MOL (175 released tensors, same key order) is written from the architecture as
`fdp_jax/models/mol.py` documents it, the release's own loop over the 7 consecutive pairs included:
  frames (B, 8, 1, 128, 128) → for pair t: conv_stack on frames t and t+1 → (B, 128, 16, 16) each → F5C
  blocks FCC_1 + CCC_1 on frame t, FCC_2 + CCC_2 on frame t+1 → ldm_predictor on frame t+1's map:
  landmarks (B, 68, 2); flownet (FlowNetC with BatchNorm, frame t encoded before t+1) → flow (B, 2, 128, 128)
  → the 14 F5C maps stacked on a last axis (B, 128, 16, 16, 14) → mer_3dcnn → logits (B, 5).
So it is not independent of the JAX reading of the release; its conv stack, FCC, CCC and 3D-CNN head
reproduce the release's own outputs (`tests/fixtures/mol_*.npz`, checked by tests/test_torch_parity.py).

--check draws random variables for the JAX model (kernels, biases, BatchNorm scales and running
statistics, so that eval-mode BatchNorm and the biases are not identities), converts them with
`fdp_jax.models.released_weights.to_released_state_dict`, loads them here with strict=True, reads the PyTorch
state_dict back into the JAX variables with `fdp_jax.models.released_weights.variables_from_state_dict` (both
converters on the path) and compares, on the same random frames, every output — FDP: the frame features, the logits, the
log-probabilities, the dynamic image and SegNet's pre-sigmoid output; MOL: the logits, log-probabilities,
flow and landmarks — each as max|Δ| / max|PyTorch|. It exits 1 when any of them is above 1e-3.

--check_train does the same in training mode, with stochastic depth and dropout off on both sides (their
random draws cannot match): batch statistics instead of running ones (FDP per frame in the encoder; MOL per
pair in the F5C blocks and FlowNetC, per frame in FlowNetC's encoder). It also compares every BatchNorm's
running mean and variance after the step (PyTorch's call-by-call updates against `layers.TorchBatchNorm`'s
closed form), as max|Δ| / max|PyTorch| over all of them.

--time measures a full PyTorch training step of FDP (train mode, forward, NLL(log_softmax) + 100·MSE,
backward, Adam lr 1e-4 with coupled weight decay 1e-3) after one warm-up step, and prints one JSON line in
the style of benchmarks/train_step.py. PyTorch is imported only here and in the tests that use this file;
fdp_jax does not depend on it.
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


class MOLConvStack(nn.Module):
  """The released `conv_stack`: conv 1→8 k4 s2, 8→32 k3 s2, 32→64 k2 s2 pad 1, 64→128 k1, with biases and no
  activations; (N, 1, 128, 128) → (N, 128, 16, 16)."""

  def __init__(self):
    super().__init__()
    self.conv_stack = nn.Sequential(nn.Conv2d(1, 8, 4, 2), nn.Conv2d(8, 32, 3, 2), nn.Conv2d(32, 64, 2, 2, 1),
                                    nn.Conv2d(64, 128, 1))

  def forward(self, x):
    return self.conv_stack(x)


def circular_conv(x, kernel, bias, dim: int):
  """Depthwise cross-correlation of x (N, C, H, W) along `dim` (2: H, 3: W) with a kernel as long as the
  map there ((C, 1, L, 1) or (C, 1, 1, L)), over the map followed by itself minus its last element."""
  length = x.shape[dim]
  return F.conv2d(torch.cat([x, x.narrow(dim, 0, length - 1)], dim), kernel, bias, groups=x.shape[1])


class FCC(nn.Module):
  """The F5C's fully-connected convolution: x (N, 2·dim, H, W) → same, H, W ≤ meta_kernel.

  Halves x1, x2 take positional embeddings (pe_1 along H for x1, along W for x2) and a BatchNorm each; x1
  is convolved along H and x2 along W with the meta kernels cropped to the map (global, circular), pe_2
  added (along W to x1, along H to x2), then x1 convolved along W and x2 along H; each half adds itself
  as it entered. The FFN is built (its tensors are in the release's state_dict) but never called.
  """

  def __init__(self, dim: int = 64, meta_kernel: int = 32):
    super().__init__()
    self.dim = dim
    along = {'H': (meta_kernel, 1), 'W': (1, meta_kernel)}
    # Registration order is the released state_dict's: kernels, biases, positional embeddings, modules.
    for s in (1, 2):
      for a in 'HW':
        setattr(self, f'meta_kernel_{s}_{a}', nn.Parameter(0.02 * torch.randn(dim, 1, *along[a])))
    for s in (1, 2):
      for a in 'HW':
        setattr(self, f'meta_{s}_{a}_bias', nn.Parameter(torch.zeros(dim)))
    for s in (1, 2):
      for a in 'HW':
        setattr(self, f'meta_pe_{s}_{a}', nn.Parameter(0.02 * torch.randn(1, dim, *along[a])))
    self.pre_Norm_1 = nn.BatchNorm2d(dim)
    self.pre_Norm_2 = nn.BatchNorm2d(dim)
    # Only the FFN's tensors matter (ffn.0, .1, .4): it is never called, so its parameterless layers 2 and 3
    # are placeholders.
    self.ffn = nn.Sequential(nn.BatchNorm2d(2 * dim), nn.Conv2d(2 * dim, 2, 1), nn.Identity(), nn.Identity(),
                             nn.Conv2d(2, 2 * dim, 1))

  def forward(self, x):
    h, w = x.shape[2:]
    x1_in, x2_in = x[:, :self.dim], x[:, self.dim:]
    x1 = self.pre_Norm_1(x1_in + self.meta_pe_1_H[:, :, :h])
    x2 = self.pre_Norm_2(x2_in + self.meta_pe_1_W[:, :, :, :w])
    x1 = circular_conv(x1, self.meta_kernel_1_H[:, :, :h], self.meta_1_H_bias, 2)
    x2 = circular_conv(x2, self.meta_kernel_1_W[:, :, :, :w], self.meta_1_W_bias, 3)
    x1 = x1 + self.meta_pe_2_W[:, :, :, :w]
    x2 = x2 + self.meta_pe_2_H[:, :, :h]
    x1 = circular_conv(x1, self.meta_kernel_2_W[:, :, :, :w], self.meta_2_W_bias, 3)
    x2 = circular_conv(x2, self.meta_kernel_2_H[:, :, :h], self.meta_2_H_bias, 2)
    return torch.cat([x1 + x1_in, x2 + x2_in], 1)


class CCC(nn.Module):
  """The F5C's graph part on x (N, C, P): the P positions are nodes with C-channel features, each joined to
  its k most cosine-similar nodes (itself first). Returns the neighbour differences (N, C, P, k) and the
  edge features (N, C, P): for every channel's P-long signal x_c, max over the k neighbours j of
  ReLU(conv1(x_c) + conv2(d_c,j − x_c)), conv1 and conv2 Conv1d(1, P, kernel P)."""

  def __init__(self, positions: int = 256, k: int = 4):
    super().__init__()
    self.k = k
    self.conv1 = nn.Conv1d(1, positions, positions)
    self.conv2 = nn.Conv1d(1, positions, positions)

  @staticmethod
  def _per_channel(conv, x):
    n, c, p = x.shape
    return conv(x.reshape(n * c, 1, p)).reshape(n, c, p)

  def forward(self, x):
    unit = F.normalize(x, dim=1)
    index = torch.bmm(unit.transpose(1, 2), unit).topk(self.k, dim=-1).indices       # (N, P, k)
    neighbours = torch.stack([xi[:, idx] for xi, idx in zip(x, index)])                # (N, C, P, k)
    differences = neighbours - x[..., None]
    base = self._per_channel(self.conv1, x)
    edges = [F.relu(base + self._per_channel(self.conv2, differences[..., j] - x)) for j in range(self.k)]
    return differences, torch.stack(edges, -1).amax(-1)


class MER3DCNN(nn.Module):
  """The released `mer_3dcnn` on the 14 stacked F5C maps (N, 128, m, m, 14): Conv3d 128→32 k(2, 2, 5)
  s(2, 2, 1) → MaxPool3d 2 → dropout → flatten (2560 for m = 16) → Linear 256 → ReLU → dropout → Linear."""

  def __init__(self, num_classes: int = 5, dropout: float = 0.5, map_size: int = 16, steps: int = 14):
    super().__init__()
    self.conv3d = nn.Conv3d(128, 32, (2, 2, 5), (2, 2, 1))
    self.pool = nn.MaxPool3d(2)
    self.drop = nn.Dropout(dropout)
    self.fc1 = nn.Linear(32 * (map_size // 4) ** 2 * ((steps - 4) // 2), 256)
    self.fc2 = nn.Linear(256, num_classes)

  def forward(self, x):
    x = torch.flatten(self.drop(self.pool(self.conv3d(x))), 1)
    return self.fc2(self.drop(F.relu(self.fc1(x))))


class LandmarkHead(nn.Module):
  """The released `ldm_predictor`: an F5C map (N, 128, m, m) → conv 128→32 k3 (no padding) → ReLU →
  flatten (6272 for m = 16) → Linear 512 → ReLU → Linear 136 → (N, 68, 2)."""

  def __init__(self, map_size: int = 16):
    super().__init__()
    self.convldm = nn.Conv2d(128, 32, 3)
    self.fc1 = nn.Linear(32 * (map_size - 2) ** 2, 512)
    self.fc2 = nn.Linear(512, 136)

  def forward(self, x):
    x = torch.flatten(F.relu(self.convldm(x)), 1)
    return self.fc2(F.relu(self.fc1(x))).view(-1, 68, 2)


def correlation(a, b, patch: int = 21, dilation: int = 2):
  """FlowNetC's correlation by its definition (kernel 1, displacements ±20 in steps of 2, zero outside
  the map), divided by the channel count: a, b (N, C, H, W) → (N, 441, H, W), channel (dy index)·21 + dx
  index."""
  _, c, h, w = a.shape
  r = patch // 2 * dilation
  padded = F.pad(b, (r, r, r, r))
  out = [(a * padded[:, :, r + dy:r + dy + h, r + dx:r + dx + w]).sum(1)
         for dy in range(-r, r + 1, dilation) for dx in range(-r, r + 1, dilation)]
  return torch.stack(out, 1) / c


class FlowNetC(nn.Module):
  """The released `flownet`, FlowNetC with BatchNorm and LeakyReLU 0.1, on one pair: (frame a, frame b
  (N, 1, 128, 128), F5C maps fa, fb (N, 128, 16, 16)) → flow (N, 2, 128, 128) from a to b.

  conv1–conv3 encode a, then b; the correlation of their conv3 maps, conv_redir(conv3 of a) and both F5C
  maps are concatenated (32 + 441 + 128 + 128 = 729 channels) → conv3_1 … conv6_1; coarse to fine, each
  level predicts a flow, upsamples it (transposed conv), deconvolves the features and concatenates them
  with the encoder's map of the next level (frame a itself at full resolution); predict_flow0 ends it.
  """

  def __init__(self):
    super().__init__()
    for name, c_in, c_out, k, s in (('conv1', 1, 64, 6, 2), ('conv2', 64, 128, 4, 2), ('conv3', 128, 256, 2, 2),
                                    ('conv_redir', 256, 32, 1, 1), ('conv3_1', 729, 256, 3, 1),
                                    ('conv4', 256, 512, 3, 2), ('conv4_1', 512, 512, 3, 1),
                                    ('conv5', 512, 512, 3, 2), ('conv5_1', 512, 512, 3, 1),
                                    ('conv6', 512, 1024, 3, 2), ('conv6_1', 1024, 1024, 3, 1)):
      setattr(self, name, nn.Sequential(nn.Conv2d(c_in, c_out, k, s, (k - 1) // 2, bias=False),
                                        nn.BatchNorm2d(c_out), nn.LeakyReLU(0.1)))
    for level, c_in, c_out in ((5, 1024, 512), (4, 1026, 256), (3, 770, 128), (2, 386, 128), (1, 258, 64),
                               (0, 130, 32)):
      setattr(self, f'deconv{level}', nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                                                    nn.LeakyReLU(0.1)))
    for level, c_in in ((6, 1024), (5, 1026), (4, 770), (3, 386), (2, 258), (1, 130), (0, 35)):
      setattr(self, f'predict_flow{level}', nn.Conv2d(c_in, 2, 3, 1, 1, bias=False))
    for level in range(6, 0, -1):
      setattr(self, f'upsampled_flow{level}_to_{level - 1}', nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=False))

  def forward(self, a, b, fa, fb):
    c1a = self.conv1(a)
    c2a = self.conv2(c1a)
    c3a = self.conv3(c2a)
    c3b = self.conv3(self.conv2(self.conv1(b)))
    corr = F.leaky_relu(correlation(c3a, c3b), 0.1)
    conv3_1 = self.conv3_1(torch.cat([self.conv_redir(c3a), corr, fa, fb], 1))
    conv4_1 = self.conv4_1(self.conv4(conv3_1))
    conv5_1 = self.conv5_1(self.conv5(conv4_1))
    x = self.conv6_1(self.conv6(conv5_1))
    for level, skip in ((5, conv5_1), (4, conv4_1), (3, conv3_1), (2, c2a), (1, c1a), (0, a)):
      flow = getattr(self, f'predict_flow{level + 1}')(x)
      flow_up = getattr(self, f'upsampled_flow{level + 1}_to_{level}')(flow)
      x = torch.cat([skip, getattr(self, f'deconv{level}')(x), flow_up], 1)
    return self.predict_flow0(x)


class ReleasedMOLTorch(nn.Module):
  """MOL as released: frames (B, T, 1, S, S) float32, S = 128 → (logits (B, 5), flow (B, T−1, 2, S, S),
  landmarks (B, T−1, 68, 2)), one pair (t, t+1) at a time as the release loops. image_size sizes the layers
  that depend on it (CCC's positions, the heads' Linear inputs); 64 is the tests' small MOL."""

  def __init__(self, num_classes: int = 5, dropout: float = 0.5, knn: int = 4, image_size: int = 128):
    super().__init__()
    m = image_size // 8                    # the conv stack's map side: 16 for 128-px frames
    self.conv_stack = MOLConvStack()
    self.FCC_1 = FCC()
    self.FCC_2 = FCC()
    self.CCC_1 = CCC(m * m, knn)
    self.CCC_2 = CCC(m * m, knn)
    self.flownet = FlowNetC()
    self.mer_3dcnn = MER3DCNN(num_classes, dropout, m)
    self.ldm_predictor = LandmarkHead(m)

  @staticmethod
  def _f5c(fcc, ccc, x):
    x = fcc(x)
    n, c, h, w = x.shape
    _, edges = ccc(x.reshape(n, c, h * w))
    return x + edges.reshape(n, c, h, w)

  def forward(self, frames):
    collected, flows, landmarks = [], [], []
    for t in range(frames.shape[1] - 1):
      a, b = frames[:, t], frames[:, t + 1]
      fa = self._f5c(self.FCC_1, self.CCC_1, self.conv_stack(a))
      fb = self._f5c(self.FCC_2, self.CCC_2, self.conv_stack(b))
      collected += [fa, fb]
      landmarks.append(self.ldm_predictor(fb))
      flows.append(self.flownet(a, b, fa, fb))
    logits = self.mer_3dcnn(torch.stack(collected, -1))
    return logits, torch.stack(flows, 1), torch.stack(landmarks, 1)


# A narrower FDP for the tests: the released geometry (64-px frames, 8 frames, 4096-dim features, CLS_Net,
# SegNet's five stages) with every width and depth cut, so that both frameworks run it in seconds. Stage 0
# has two blocks (a stride-1 patch embedding that changes the width, then the identity one).
SMALL_FDP = {'stem_channels': (8, 8, 16), 'depths': (2, 1, 1, 1), 'channels': (24, 32, 32, 48),
             'segnet_channels': (8, 16, 16, 24, 24)}
# MOL's widths are fixed by the release; 64-px frames (8×8 F5C maps, 64 graph nodes) make it small.
SMALL_MOL_IMAGE = 64


def models(name: str, small: bool = False):
  """(JAX module, PyTorch model, frames' (T, H, W)) of released model `name` ('fdp' or 'mol'), released
  sizes unless `small`, with stochastic depth and dropout off on both sides (their random draws cannot
  match; eval mode does not use them)."""
  from fdp_jax.models.fdp_released import RELEASED_ENCODER, ReleasedFDP
  from fdp_jax.models.mol import MOL
  if name == 'fdp':
    sizes = SMALL_FDP if small else {}
    encoder = {k: v for k, v in sizes.items() if k != 'segnet_channels'}
    module = ReleasedFDP(encoder=dataclasses.replace(RELEASED_ENCODER, drop_path_rate=0.0, **encoder),
                         **({'segnet_channels': sizes['segnet_channels']} if small else {}))
    return module, ReleasedFDPTorch(drop_path_rate=0.0, **sizes), (8, 64, 64)
  if name == 'mol':
    size = SMALL_MOL_IMAGE if small else 128
    return MOL(dropout=0.0), ReleasedMOLTorch(dropout=0.0, image_size=size), (8, size, size)
  raise ValueError(f"unknown released model {name!r}: 'fdp' or 'mol'")


def check_state_dict_keys(model: nn.Module, name: str = 'fdp') -> int:
  """Raises ValueError unless the model's state_dict is released model `name`'s (keys, order, shapes,
  dtypes); returns its size."""
  with open(REFERENCE_KEYS) as f:
    expected = [(k, tuple(s), d) for k, s, d in json.load(f)[name]]
  actual = [(k, tuple(v.shape), str(v.dtype).removeprefix('torch.')) for k, v in model.state_dict().items()]
  if actual != expected:
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    raise ValueError(f'{name} state_dict differs from the release: missing {missing[:10]}, extra {extra[:10]}'
                     + (', same entries in another order' if not missing and not extra else ''))
  return len(actual)


def abstract_variables(module, frames: np.ndarray):
  """The shapes of the JAX module's variables (`jax.eval_shape` of `init`)."""
  import jax
  key = jax.random.key(0)
  return jax.eval_shape(lambda x: module.init({'params': key, 'dropout': key}, x, train=False), frames)


def random_variables(module, frames: np.ndarray, seed: int):
  """Variables of the JAX module with every leaf drawn here: kernels U(±1/√fan_in) (PyTorch's default
  scale; MOL's FCC meta kernels over their length), biases N(0, 0.02²), BatchNorm scales U(0.5, 1.5),
  running means N(0, 0.1²) and variances U(0.5, 2), MOL's positional embeddings N(0, 0.1²), so that
  eval-mode BatchNorm and every bias take part in the comparison. Shapes come from `abstract_variables`:
  the module's own initialisers (85 M parameters from JAX's RNG) would take about a minute on two CPU cores
  and leave the BatchNorms and biases trivial anyway."""
  import flax
  rng = np.random.default_rng(seed)

  def draw(name, shape):
    if name == 'kernel':
      return rng.uniform(-1, 1, shape) / np.sqrt(np.prod(shape[:-1]))
    if name.startswith('meta_kernel'):                 # (C, 1, L, 1) or (C, 1, 1, L), PyTorch's layout
      return rng.uniform(-1, 1, shape) / np.sqrt(np.prod(shape[1:]))
    if name == 'bias' or name.endswith('_bias'):
      return rng.normal(0, 0.02, shape)
    if name.startswith('meta_pe') or name == 'mean':
      return rng.normal(0, 0.1, shape)
    return {'var': lambda: rng.uniform(0.5, 2.0, shape), 'scale': lambda: rng.uniform(0.5, 1.5, shape)}[name]()
  flat = flax.traverse_util.flatten_dict(abstract_variables(module, frames))
  flat = {path: draw(path[-1], leaf.shape).astype(np.float32) for path, leaf in flat.items()}
  return flax.traverse_util.unflatten_dict(flat)


def jax_forward(name: str, module, variables, frames: np.ndarray, train: bool, routing: str):
  """The JAX model on frames (B, T, H, W, 1) under conv routing `routing`: (outputs, variables after the
  step). FDP's outputs: logits, log_probs, dynamic_image, features (B, 8, 4096), segnet_out (B, 64, 64);
  MOL's: logits, log_probs, flow (B, T−1, H, W, 2), landmarks (B, T−1, 68, 2). In training the variables
  after hold the updated running statistics."""
  import jax
  import jax.numpy as jnp
  from fdp_jax.models import layers

  def capture(mdl, method_name):
    return method_name == '__call__' and mdl.scope.path in (('frame_rep',), ('dyimg_net',))

  def apply(v, x):
    # The routing is read while tracing, inside the jitted function, as the trainer's step builders do.
    with layers.conv_routing(routing):
      return module.apply(v, x, train=train, capture_intermediates=capture if name == 'fdp' else False,
                          mutable=['intermediates', 'batch_stats'] if train else ['intermediates'])
  outputs, state = jax.jit(apply)(variables, jnp.asarray(frames))
  after = dict(variables, batch_stats=state['batch_stats']) if train else variables
  if name == 'fdp':
    inter = state['intermediates']
    b, t = frames.shape[:2]
    outputs = {**outputs,
               # FrameRep calls LGFAT.__call__ through super(): the last value sown is the encoder's output.
               'features': inter['frame_rep']['__call__'][-1].reshape(b, t, -1),
               'segnet_out': inter['dyimg_net']['__call__'][-1][..., 0]}
  else:
    outputs = dict(outputs)
  outputs['log_probs'] = jax.nn.log_softmax(outputs['logits'])
  return {k: np.asarray(v) for k, v in outputs.items()}, after


def torch_forward(name: str, model: nn.Module, frames: np.ndarray) -> dict:
  """The PyTorch model on frames (B, T, H, W, 1), in its current mode: the outputs of `jax_forward`, in
  the same layouts."""
  with torch.no_grad():
    outputs = model(torch.from_numpy(frames).permute(0, 1, 4, 2, 3))
  if name == 'fdp':
    outputs = dict(zip(('logits', 'dynamic_image', 'features', 'segnet_out'), outputs))
  else:
    outputs = dict(zip(('logits', 'flow', 'landmarks'), outputs))
    outputs['flow'] = outputs['flow'].permute(0, 1, 3, 4, 2)
  outputs['log_probs'] = F.log_softmax(outputs['logits'], -1)
  return {k: v.numpy() for k, v in outputs.items()}


def relative_errors(actual: np.ndarray, reference: np.ndarray) -> np.ndarray:
  """|actual − reference| / max|reference|, elementwise."""
  if actual.shape != reference.shape:
    raise ValueError(f'shape {actual.shape} against the reference {reference.shape}')
  return np.abs(actual - reference) / np.max(np.abs(reference))


def parity(name: str, batch: int, seed: int, modes=('eval', 'train'), routing: str = 'auto',
           small: bool = False) -> dict:
  """The JAX model against the PyTorch rendering on the same random variables, in each of `modes` ('eval',
  'train'; eval first: a PyTorch training forward updates the running statistics). Returns {mode: (errors,
  ref_max_abs)}: errors {output: |JAX − PyTorch| / max|PyTorch| elementwise}, in training with
  'running_stats' (every BatchNorm's running mean and variance after the step, each relative to its own
  max, all together) added; ref_max_abs {output: max|PyTorch|}. Training frames brighten over the clip,
  so that per-frame statistics differ from pooled ones."""
  from fdp_jax.models.released_weights import to_released_state_dict, variables_from_state_dict
  module, model, (t, h, w) = models(name, small)
  rng = np.random.default_rng(seed)
  frames = rng.uniform(-1, 1, (batch, t, h, w, 1)).astype(np.float32)
  drawn = to_released_state_dict(random_variables(module, frames, seed))
  model.load_state_dict({k: torch.from_numpy(v) for k, v in drawn.items()}, strict=True)
  # The PyTorch state_dict, read back through the converter, is what the JAX model runs on.
  variables = variables_from_state_dict(abstract_variables(module, frames),
                                        {k: v.numpy() for k, v in model.state_dict().items()})
  results = {}
  for mode in sorted(modes, key=('eval', 'train').index):
    train = mode == 'train'
    x = frames
    if train:
      x = (frames * 0.5 + np.linspace(-0.4, 0.4, t)[None, :, None, None, None]).astype(np.float32)
    jax_outputs, after = jax_forward(name, module, variables, x, train, routing)
    reference = torch_forward(name, model.train(train), x)
    errors = {k: relative_errors(jax_outputs[k], v) for k, v in reference.items()}
    if train:
      after = to_released_state_dict(after)
      torch_state = model.state_dict()
      errors['running_stats'] = np.concatenate([
          relative_errors(after[k], torch_state[k].numpy()).ravel()
          for k in after if k.endswith(('running_mean', 'running_var'))])
    results[mode] = errors, {k: float(np.max(np.abs(v))) for k, v in reference.items()}
  return results


def check(name: str, batch: int, seed: int, train: bool = False, routing: str = 'auto') -> int:
  """Parity of the PyTorch rendering with the JAX model at the released sizes; returns the exit code."""
  num_keys = check_state_dict_keys(models(name)[1], name)
  mode = 'train' if train else 'eval'
  errors, ref_max_abs = parity(name, batch, seed, (mode,), routing)[mode]
  # FDP: the dynamic image sits near 0.5 where the sigmoid is flat, so SegNet's pre-sigmoid output is gated too.
  worst = max(float(v.max()) for v in errors.values())
  print(json.dumps({'model': name, 'mode': 'check_train' if train else 'check', 'batch': batch,
                    'routing': routing, 'state_dict_keys_matched': num_keys,
                    'max_rel_err': {k: float(f'{v.max():.3g}') for k, v in errors.items()},
                    # A flipped max-pool winner in SegNet moves a few values (benchmarks/README.md): it shows in
                    # the maximum, not in the median.
                    'median_rel_err': {k: float(f'{np.median(v):.3g}') for k, v in errors.items()},
                    'ref_max_abs': {k: float(f'{v:.3g}') for k, v in ref_max_abs.items()},
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
  p.add_argument('--model', choices=('fdp', 'mol'), default='fdp', help='which released model to check')
  p.add_argument('--routing', choices=('auto', 'cpu', 'xla'), default='auto', help="the JAX model's conv routing")
  p.add_argument('--batch', type=int, default=None, help='default 2 for --check, 8 for --time')
  p.add_argument('--steps', type=int, default=5)
  p.add_argument('--seed', type=int, default=0)
  a = p.parse_args()
  if a.time:
    if a.model != 'fdp':
      p.error('--time times the released FDP only')
    print(json.dumps(time_train_step(a.batch or 8, 8, 64, a.steps, a.seed)))
  else:
    sys.exit(check(a.model, a.batch or 2, a.seed, train=a.check_train, routing=a.routing))


if __name__ == '__main__':
  main()
