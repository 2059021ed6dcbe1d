"""The released PyTorch models' weights as Linen variables and back: FDP (`models.fdp_released.ReleasedFDP`)
and MOL (`models.mol.MOL`). The command line is `fdp_jax.tools.convert`; PyTorch itself is needed only there,
to read and write .pth files.

Linen paths mirror the state_dict keys: an index in a key is appended to its module's name, with '_' in
FDP (`frame_rep.features.3.mlp.conv1.weight` ↔ params/frame_rep/features_3/mlp/conv1/kernel) and with
'__' in MOL, whose own names end in digits (`FCC_1.ffn.0.weight` ↔ params/FCC_1/ffn__0/scale). Leaves:
  weight of a conv / linear       ↔ params …/kernel: OIHW → HWIO, OIDHW → DHWIO, (out, in) → (in, out)
  weight, bias of a BatchNorm     ↔ params …/scale, …/bias;   other biases ↔ params …/bias
  running_mean, running_var       ↔ batch_stats …/mean, …/var
  any other parameter             ↔ params …/<the same name>, in PyTorch's layout (MOL's FCC meta kernels)
  num_batches_tracked (int64, ()) ↔ num_batches_tracked/<the BatchNorm's module path>
Flax's BatchNorm has no update counter, so the counters live in a collection of their own: `apply` ignores
it, JAX training does not advance it, and `to_released_state_dict` writes it back (0 where it is absent),
which makes PyTorch → JAX → PyTorch exact. The expected keys and shapes come from the Linen module's own
variables, so every key of a state_dict is consumed exactly once or reported.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any, Callable, Mapping

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fdp_jax.models.fdp_released import ReleasedFDP
from fdp_jax.models.mol import MOL

COUNTERS = 'num_batches_tracked'

# (Linen collection, leaf) → PyTorch leaf name.
_TORCH_LEAF = {('params', 'kernel'): 'weight', ('params', 'scale'): 'weight', ('params', 'bias'): 'bias',
               ('batch_stats', 'mean'): 'running_mean', ('batch_stats', 'var'): 'running_var'}
# PyTorch's order of a module's tensors (parameters, then buffers), used to order the keys written back.
_LEAF_ORDER = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')


@dataclasses.dataclass(frozen=True)
class _Entry:
  """Where one state_dict tensor lives among the Linen variables, and how its layout differs."""
  collection: str
  path: tuple[str, ...]
  torch_shape: tuple[int, ...]
  to_torch: tuple[int, ...] | None      # axis permutation Linen → PyTorch (kernels only)
  dtype: np.dtype


def _fdp_module(path: tuple[str, ...]) -> str:
  """('frame_rep', 'features_3', 'mlp') → 'frame_rep.features.3.mlp'."""
  return '.'.join(re.sub(r'_(\d+)$', r'.\1', name) for name in path)


def _mol_module(path: tuple[str, ...]) -> str:
  """('FCC_1', 'ffn__0') → 'FCC_1.ffn.0'."""
  return '.'.join(name.replace('__', '.') for name in path)


@dataclasses.dataclass(frozen=True)
class ReleasedWeights:
  """One released PyTorch model: its Linen module at the released sizes, how a Linen module path spells its
  PyTorch module, and the frames `init` traces it with, (1, T, S, S, 1)."""
  name: str                                        # 'fdp' | 'mol' (the converter's --model)
  module: Callable[[], nn.Module]
  torch_module: Callable[[tuple[str, ...]], str]
  input_shape: tuple[int, ...]


FDP_WEIGHTS = ReleasedWeights('fdp', ReleasedFDP, _fdp_module, (1, 8, 64, 64, 1))
MOL_WEIGHTS = ReleasedWeights('mol', MOL, _mol_module, (1, 8, 128, 128, 1))
RELEASED = {weights.name: weights for weights in (FDP_WEIGHTS, MOL_WEIGHTS)}


def model_of(variables: Mapping[str, Any]) -> str:
  """Which released model a variables tree belongs to ('mol' has the FCC/CCC blocks)."""
  return 'mol' if 'FCC_1' in variables.get('params', {}) else 'fdp'


def _kernel_to_torch(ndim: int) -> tuple[int, ...]:
  """Permutation of a Linen kernel's axes into PyTorch's: (in, out) → (out, in); (*spatial, I, O) →
  (O, I, *spatial)."""
  return (1, 0) if ndim == 2 else (ndim - 1, ndim - 2, *range(ndim - 2))


def _layout(variables: Mapping[str, Any], counters: bool = True, model: str | None = None
            ) -> dict[str, _Entry]:
  """state_dict key → _Entry for every leaf of variables['params'] and variables['batch_stats'] (arrays
  or ShapeDtypeStructs), plus one num_batches_tracked per BatchNorm when `counters`. `model` ('fdp' or
  'mol') picks the naming; by default it is read off the variables."""
  layout = {}
  torch_module = RELEASED[model or model_of(variables)].torch_module
  tree = {c: variables[c] for c in ('params', 'batch_stats') if c in variables}
  for (collection, *path), leaf in flax.traverse_util.flatten_dict(tree).items():
    *module, name = path
    if (collection, name) in _TORCH_LEAF:
      torch_name = _TORCH_LEAF[collection, name]
    elif collection == 'params':
      torch_name = name                              # a named parameter, kept in PyTorch's layout
    else:
      raise ValueError(f'no PyTorch counterpart for {collection}/{"/".join(path)}')
    prefix = torch_module(tuple(module))
    to_torch = _kernel_to_torch(len(leaf.shape)) if name == 'kernel' else None
    shape = tuple(leaf.shape[i] for i in to_torch) if to_torch else tuple(leaf.shape)
    layout[f'{prefix}.{torch_name}' if prefix else torch_name] = _Entry(
        collection, tuple(path), shape, to_torch, np.dtype(leaf.dtype))
    if counters and collection == 'batch_stats' and name == 'mean':
      layout[f'{prefix}.num_batches_tracked'] = _Entry(COUNTERS, tuple(module), (), None, np.dtype(np.int64))
  return layout


def variables_from_state_dict(abstract_variables: Mapping[str, Any], state_dict: Mapping[str, Any], *,
                              num_batches_tracked: bool = True, model: str | None = None) -> dict[str, Any]:
  """A PyTorch state_dict as the Linen variables of a module.

  abstract_variables: the module's variables or their shapes (`jax.eval_shape` of `init`), which say what
  the state_dict must hold. state_dict: key → array (numpy or anything `np.asarray` takes), in PyTorch
  layouts. num_batches_tracked: whether the BatchNorms' counters are in it (PyTorch ≥ 0.4.1 state_dicts;
  the reference fixtures were saved without them). model: 'fdp' or 'mol' naming (default: read off the
  variables; give it for a piece of a model, e.g. one FCC block).
  Returns {'params', 'batch_stats'[, 'num_batches_tracked']} of numpy arrays. Raises ValueError listing
  every missing key, unexpected key and wrong shape or dtype kind.
  """
  layout = _layout(abstract_variables, num_batches_tracked, model)
  arrays = {key: np.asarray(value) for key, value in state_dict.items()}
  problems = [f'missing: {k}' for k in layout if k not in arrays]
  problems += [f'unexpected: {k}' for k in arrays if k not in layout]
  for key in layout.keys() & arrays.keys():
    entry, value = layout[key], arrays[key]
    if value.shape != entry.torch_shape:
      problems.append(f'wrong shape: {key} is {value.shape}, expected {entry.torch_shape}')
    elif value.dtype.kind != entry.dtype.kind:
      problems.append(f'wrong dtype: {key} is {value.dtype}, expected {entry.dtype}')
  if problems:
    raise ValueError(f'state_dict does not match the model ({len(problems)} problems):\n  '
                     + '\n  '.join(sorted(problems)))

  flat = {}
  for key, entry in layout.items():
    value = arrays[key]
    if entry.to_torch:
      value = value.transpose(np.argsort(entry.to_torch))
    flat[(entry.collection, *entry.path)] = np.array(value, dtype=entry.dtype, order='C')
  return flax.traverse_util.unflatten_dict(flat)


def to_released_state_dict(variables: Mapping[str, Any], model: str | None = None) -> dict[str, np.ndarray]:
  """The inverse of `variables_from_state_dict` / `load_released`: Linen variables → PyTorch state_dict.

  Writes every parameter and running statistic in PyTorch's layout and dtype, and one int64
  num_batches_tracked per BatchNorm: the value kept in variables['num_batches_tracked'], or 0 for a
  BatchNorm without one (e.g. variables trained from scratch in JAX). Keys are ordered module by module
  (indices numerically), each module's tensors in PyTorch's order.
  """
  counters = flax.traverse_util.flatten_dict(variables.get(COUNTERS, {}))
  state_dict = {}
  for key, entry in _layout(variables, model=model).items():
    if entry.collection == COUNTERS:
      state_dict[key] = np.asarray(counters.get(entry.path, 0), np.int64)
      continue
    node = variables[entry.collection]
    for name in entry.path:
      node = node[name]
    value = np.asarray(node)
    if entry.to_torch:
      value = value.transpose(entry.to_torch)
    state_dict[key] = np.array(value, order='C')

  def order(key):
    module, leaf = key.rsplit('.', 1)
    rank = _LEAF_ORDER.index(leaf) if leaf in _LEAF_ORDER else -1   # named parameters first, as in PyTorch
    return [(int(p), '') if p.isdigit() else (-1, p) for p in module.split('.')], rank, leaf
  return {key: state_dict[key] for key in sorted(state_dict, key=order)}


def released_model(name: str) -> nn.Module:
  """The Linen module of a released model, at the released sizes."""
  if name not in RELEASED:
    raise ValueError(f"unknown released model {name!r}: the converter knows 'fdp' and 'mol'")
  return RELEASED[name].module()


def load_released(name: str, state_dict: Mapping[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
  """The released PyTorch model's state_dict (all 438 tensors for 'fdp', 175 for 'mol'; PyTorch layouts)
  → (module, variables) with `module.apply(variables, frames, train=False)` ready to run: FDP returns
  {'logits', 'dynamic_image'}, MOL {'logits', 'flow' (B, 7, 128, 128, 2), 'landmarks' (B, 7, 68, 2)}."""
  module = released_model(name)
  frames = jax.ShapeDtypeStruct(RELEASED[name].input_shape, jnp.float32)
  abstract = jax.eval_shape(functools.partial(module.init, train=False), jax.random.key(0), frames)
  return module, variables_from_state_dict(abstract, state_dict)
