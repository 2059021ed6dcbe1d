"""Layers the model families share: PyTorch-compatible convolutions, BatchNorms and initialisers, stochastic
depth. Parameters are laid out as flax's own layers lay them out (conv kernels HWIO, BatchNorm 'scale',
'bias', 'mean', 'var'), so checkpoints and weight conversion never see which implementation ran.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Callable, Iterator, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# The released FDP initialises its frame encoder's conv / linear weights from a truncated normal with std
# 0.02 and biases at 0 (torch's trunc_normal_ cuts at ±2 absolute, i.e. ±100σ; flax at ±2σ: immaterial at
# std 0.02).
TRUNC_NORMAL_INIT = nn.initializers.truncated_normal(stddev=0.02)
# PyTorch's default init for conv and linear weights (kaiming_uniform with a = √5, i.e. U(±1/√fan_in)), which
# the release's other modules keep. Biases start at 0 here rather than at torch's U(±1/√fan_in).
TORCH_DEFAULT_INIT = nn.initializers.variance_scaling(1 / 3, 'fan_in', 'uniform')


def batch_norm(train: bool, name: str | None = None, groups: int | None = None,
               order: tuple[int, ...] | None = None) -> nn.Module:
  """A BatchNorm with PyTorch's momentum (torch 0.1 is flax 0.9) and eps (1e-5).

  groups None: flax's `nn.BatchNorm` (the paper design: one set of training statistics over the batch,
  biased running variance). groups g ≥ 1: `TorchBatchNorm`, PyTorch's semantics exactly, with the
  training statistics of g interleaved groups of the batch taken separately (the released FDP, whose
  encoder sees each frame of a clip in its own call; the released MOL, which runs pair by pair), and the
  running statistics updated by the groups' calls in `order` (default: each group once, in turn)."""
  if groups is None:
    if order is not None:
      raise ValueError('a BatchNorm update order needs groups')
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)
  return TorchBatchNorm(use_running_average=not train, groups=groups, order=order, name=name)


class TorchBatchNorm(nn.Module):
  """PyTorch's BatchNorm (1d/2d, momentum 0.1, eps 1e-5) over the last axis, as `groups` successive calls.

  x: (N, ..., C), N a multiple of `groups`. In training, the examples n with the same n mod groups form a
  group that is normalised by its own mean and (biased) variance over those examples and every axis but
  the last, exactly as if PyTorch had been called on each group in turn; the running statistics then take
  those calls' updates in group order, in closed form, r ← 0.9^g·r + Σ_k 0.1·0.9^(g−1−k)·s_k, with the
  *unbiased* group variance for the running variance as PyTorch keeps it. `order` names the calls when
  they are not each group once in turn: a group called twice with the same input (the release's FlowNet
  encodes frame t as the second frame of pair t−1 and again as the first of pair t) appears twice, and
  the update is r ← 0.9^L·r + Σ_j 0.1·0.9^(L−1−j)·s_order[j] over the L calls. For (B·T, H, W, C) frames of
  B clips stored clip-major, groups = T gives each frame index its own statistics, as the release's one
  encoder call per frame does; groups = 1 is one PyTorch call. In eval, the running statistics.
  Variables are those of `nn.BatchNorm` (params 'scale', 'bias'; batch_stats 'mean', 'var'), so
  checkpoints and weight conversion do not see which one a model uses.
  """
  use_running_average: bool
  groups: int = 1
  order: tuple[int, ...] | None = None   # the groups' calls in sequence; None: 0, 1, …, groups − 1
  momentum: float = 0.9
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    scale = self.param('scale', nn.initializers.ones, (c,))
    bias = self.param('bias', nn.initializers.zeros, (c,))
    running_mean = self.variable('batch_stats', 'mean', lambda: jnp.zeros((c,), jnp.float32))
    running_var = self.variable('batch_stats', 'var', lambda: jnp.ones((c,), jnp.float32))
    if self.use_running_average:
      return ((x.astype(jnp.float32) - running_mean.value) * (scale * jax.lax.rsqrt(running_var.value + self.epsilon))
              + bias).astype(x.dtype)
    n, g = x.shape[0], self.groups
    if n % g:
      raise ValueError(f'a batch of {n} cannot be split into {g} interleaved BatchNorm groups')
    # Per-example moments first, then per group (one reduction over (N/g, g, M, C) measured slower).
    per_example = x.reshape(n, -1, c).astype(jnp.float32)                # (N, M, C), statistics in float32
    count = n // g * per_example.shape[1]
    mean = per_example.mean(axis=1).reshape(n // g, g, c).mean(axis=0)  # (g, C)
    mean_square = jnp.square(per_example).mean(axis=1).reshape(n // g, g, c).mean(axis=0)
    var = jnp.maximum(mean_square - jnp.square(mean), 0.0)              # biased, as the batch uses it
    gain = scale * jax.lax.rsqrt(var + self.epsilon)
    # (x − mean)·gain + bias, not x·gain + (bias − mean·gain): the latter cancels when |mean| ≫ std.
    y = (x.reshape(n // g, g, -1, c).astype(jnp.float32) - mean[:, None]) * gain[:, None] + bias
    y = y.astype(x.dtype)
    if not self.is_initializing():
      decay, weights = update_weights(self.momentum, g, self.order)
      running_mean.value = decay * running_mean.value + (weights[:, None] * mean).sum(0)
      running_var.value = decay * running_var.value + (weights[:, None] * var * (count / max(count - 1, 1))).sum(0)
    return y.reshape(x.shape)


def update_weights(momentum: float, groups: int, order: Sequence[int] | None = None) -> tuple[float, np.ndarray]:
  """(decay, per-group weights) of L successive PyTorch running-statistic updates, the j-th with the
  statistics of group order[j]: r ← decay·r + Σ_k weights[k]·s_k, decay = m^L and each call j adding
  (1 − m)·m^(L−1−j) to its group's weight (m = flax's momentum, 0.9 for PyTorch's 0.1)."""
  order = tuple(range(groups)) if order is None else tuple(order)
  if not order or set(order) != set(range(groups)):   # a group out of range is a member of neither set
    raise ValueError(f'a BatchNorm update order must call every one of the {groups} groups (and only '
                     f'those) at least once, got {order}')
  weights = np.zeros(groups, np.float64)
  for j, k in enumerate(order):
    weights[k] += (1 - momentum) * momentum ** (len(order) - 1 - j)
  return momentum ** len(order), weights.astype(np.float32)


# Which k×k convs (k > 1) go to XLA's convolution rather than one matrix product (`uses_xla_conv`): on
# XLA:CPU the convolution's weight gradient is several times slower than the product for wide convs, while
# for narrow ones (a prediction conv to ≤ 4 outputs, stride-1 convs ≤ 32 wide) the product's k²-wide copy
# of the input costs more. Measurements: benchmarks/README.md, train_step.py, "Adopted changes".
# On TPUs and GPUs every conv goes to XLA's convolution, their fastest kernel (the MXU, cuDNN): the
# product's k² copies of each activation only add memory traffic there.
_XLA_CONV_MAX_FEATURES = 4
_XLA_CONV_MAX_WIDTH = 32

# 'cpu': the routing above; 'xla': every conv in XLA's convolution; 'auto': 'cpu' on CPU devices, 'xla' on
# TPU and GPU devices.
CONV_ROUTINGS = ('auto', 'cpu', 'xla')
_routing = contextvars.ContextVar('fdp_jax_conv_routing', default='auto')


def resolve_conv_routing(routing: str, platform: str | None = None) -> str:
  """'cpu' or 'xla' for a routing name; 'auto' follows `platform` (default: `jax.default_backend()`)."""
  if routing not in CONV_ROUTINGS:
    raise ValueError(f'unknown conv routing {routing!r} (train.conv_routing): use one of {CONV_ROUTINGS}')
  if routing != 'auto':
    return routing
  return 'cpu' if (platform or jax.default_backend()) == 'cpu' else 'xla'


@contextlib.contextmanager
def conv_routing(routing: str, platform: str | None = None) -> Iterator[None]:
  """Within it, `Conv` and the other convolutions of the models route as `routing` (`CONV_ROUTINGS`). The
  step builders (`fdp_jax.train`) enter it inside the functions they jit, so a compiled step's routing is
  fixed by how it was built; outside any, 'auto' holds."""
  token = _routing.set(resolve_conv_routing(routing, platform))
  try:
    yield
  finally:
    _routing.reset(token)


def xla_convs() -> bool:
  """True when the routing in force sends every conv to XLA's convolution."""
  return resolve_conv_routing(_routing.get()) == 'xla'


def uses_xla_conv(kernel_size: int, stride: int, in_features: int, features: int) -> bool:
  """Whether `Conv` runs a conv through XLA's convolution (True) or as one matrix product (False), under
  the routing in force (`conv_routing`)."""
  if xla_convs():
    return True
  if kernel_size == 1:
    return False
  return features <= _XLA_CONV_MAX_FEATURES or (
      stride == 1 and max(in_features, features) <= _XLA_CONV_MAX_WIDTH)


class Conv(nn.Module):
  """A k×k conv with PyTorch's symmetric padding (k // 2 unless `padding` is given), as one matrix product.

  x: (N, H, W, C_in) → (N, ⌊(H + 2p − k)/s⌋ + 1, …, features). Parameters are those of `nn.Conv` (kernel
  (k, k, C_in, features) HWIO, optional bias), so checkpoints and weight conversion do not see the
  difference. On CPU a conv is one matrix product — the k² shifted (strided) views of the padded input
  concatenated on the channel axis and multiplied by the reshaped kernel — unless `uses_xla_conv` routes
  it to XLA's convolution (the narrowest convs): XLA:CPU's convolution runs far below its matrix product's
  rate on most shapes of these models, its weight gradient above all. On TPU and GPU every conv is XLA's
  (`conv_routing`). Flax 'SAME' padding would also differ from PyTorch for stride 2 on even inputs.
  """
  features: int
  kernel_size: int
  stride: int = 1
  use_bias: bool = False
  kernel_init: Callable = TRUNC_NORMAL_INIT
  padding: int | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, s = self.kernel_size, self.stride
    kernel = self.param('kernel', self.kernel_init, (k, k, x.shape[-1], self.features))
    p = k // 2 if self.padding is None else self.padding
    if uses_xla_conv(k, s, x.shape[-1], self.features):
      if x.dtype != kernel.dtype:   # e.g. float32 maps into a bfloat16 conv: computed in the wider type
        dtype = jnp.result_type(x, kernel)
        x, kernel = x.astype(dtype), kernel.astype(dtype)
      y = jax.lax.conv_general_dilated(x, kernel, (s, s), ((p, p), (p, p)),
                                       dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
      return y + self.param('bias', nn.initializers.zeros, (self.features,)) if self.use_bias else y
    y = conv_as_matmul(x, kernel, s, p)
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, (self.features,))
    return y


def conv_as_matmul(x: jax.Array, kernel: jax.Array, stride: int = 1, padding: int | None = None
                   ) -> jax.Array:
  """A k×k conv with PyTorch's symmetric padding (k // 2 by default) as one matrix product (no bias).

  x: (N, H, W, C), kernel: (k, k, C, F) HWIO → (N, ⌊(H + 2p − k)/s⌋ + 1, …, F). The k² shifted (strided)
  views of the padded input are concatenated on the channel axis, in (i, j, c) order, and multiplied by
  the reshaped kernel.
  """
  k, _, c, features = kernel.shape
  p = k // 2 if padding is None else padding
  if p:
    x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  _, h, w, _ = x.shape
  ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
  taps = [x[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride, :]
          for i in range(k) for j in range(k)]
  columns = taps[0] if len(taps) == 1 else jnp.concatenate(taps, axis=-1)   # (N, ho, wo, k·k·C)
  return jnp.dot(columns, kernel.reshape(k * k * c, features))


def conv(features: int, kernel: int, *, stride: int = 1, use_bias: bool = False,
         kernel_init: Callable = TRUNC_NORMAL_INIT, name: str | None = None) -> Conv:
  """A conv with PyTorch's padding and, by default, the release's frame-encoder init (truncated normal
  std 0.02, bias 0)."""
  return Conv(features, kernel, stride, use_bias, kernel_init, name=name)


def dense(features: int, *, name: str | None = None) -> nn.Dense:
  """A linear layer with the release's init (truncated normal std 0.02, bias 0)."""
  return nn.Dense(features, kernel_init=TRUNC_NORMAL_INIT, bias_init=nn.initializers.zeros, name=name)


class DropPath(nn.Module):
  """Stochastic depth: drops a residual branch for whole examples.

  x: (N, ...) → (N, ...). In training each example keeps the branch with probability 1 − rate (mask drawn
  from the 'dropout' RNG stream) and the kept ones are scaled by 1/(1 − rate); in eval it is the identity.
  """
  rate: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    if not train or self.rate == 0.0:
      return x
    keep_prob = 1.0 - self.rate
    keep = jax.random.bernoulli(self.make_rng('dropout'), keep_prob, (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(keep, x / keep_prob, 0.0)


class ConvBNReLU(nn.Module):
  """conv3x3 (padding 1, no bias: the BatchNorm supplies the shift) + BatchNorm + ReLU.

  x: (N, H, W, C_in) → (N, H/stride, W/stride, out_channels).
  """
  out_channels: int
  stride: int = 1
  bn_groups: int | None = None    # `batch_norm`'s groups

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = conv(self.out_channels, 3, stride=self.stride, name='conv')(x)
    return nn.relu(batch_norm(train, 'norm', self.bn_groups)(x))
