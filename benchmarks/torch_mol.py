"""MOL as released, written again in PyTorch (`ReleasedMOLTorch`, 175 released tensors in the released key
order): the reference that benchmarks/torch_parity.py compares the JAX `MOL` with.

It is written from the architecture as `fdp_jax/models/mol.py` documents it, the release's own loop over the
7 consecutive pairs included:
  frames (B, 8, 1, 128, 128) → for pair t: conv_stack on frames t and t+1 → (B, 128, 16, 16) each → F5C
  blocks FCC_1 + CCC_1 on frame t, FCC_2 + CCC_2 on frame t+1 → ldm_predictor on frame t+1's map:
  landmarks (B, 68, 2); flownet (FlowNetC with BatchNorm, frame t encoded before t+1) → flow (B, 2, 128, 128)
  → the 14 F5C maps stacked on a last axis (B, 128, 16, 16, 14) → mer_3dcnn → logits (B, 5).
So it is not independent of the JAX reading of the release; its conv stack, FCC, CCC and 3D-CNN head
reproduce the release's own outputs (`tests/fixtures/mol_*.npz`, checked by tests/test_torch_parity.py).
"""

import torch
import torch.nn.functional as F
from torch import nn

# MOL's widths are fixed by the release; 64-px frames (8×8 F5C maps, 64 graph nodes) make it small.
SMALL_MOL_IMAGE = 64


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
