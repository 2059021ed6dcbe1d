"""Many cross-validation folds at once: fold states stacked on a leading axis, the train and eval
steps vmapped over it, that axis sharded over the `fold` axis of a device mesh and, optionally, each fold's
batch over a `data` axis.

A run trains its folds in groups of K "slots" (`cv.parallel_folds`). Every array a group step sees has the
slot axis first: a TrainState whose leaves are (K, ...), batches (K, B, ...), per-slot RNG keys (K,). A slot
without a fold (the last group of a run whose fold count K does not divide) trains on an all-masked zero
batch and is dropped. K = 1 is sequential cross-validation through the same code, without a vmap (a vmap of
size 1 is measurably slower on XLA:CPU).

Multi-host: every process runs the same program; a process produces the batches of the slots its own
devices hold (`jax.make_array_from_callback` asks it for exactly those), and `to_host` gathers results so
that process 0 can write them.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from fdp_jax import device_input, train

# Fraction of a device's memory the auto group size may plan to fill (the rest: fragmentation, the input
# pipeline's device buffers, XLA's own scratch).
MEMORY_HEADROOM = 0.8


def initialize_distributed(cv_config) -> None:
  """`jax.distributed.initialize` when `cv.distributed`: the coordinator, process count and id from the
  config when given, otherwise from the environment (TPU pods, SLURM, Kubernetes set them). Must run before
  any JAX computation."""
  if not cv_config.distributed:
    return
  if jax.distributed.is_initialized():
    return
  kwargs = {}
  if cv_config.coordinator_address:
    kwargs = dict(coordinator_address=cv_config.coordinator_address,
                  num_processes=int(cv_config.num_processes), process_id=int(cv_config.process_id))
  if jax.config.jax_platforms in ('cpu',) or cv_config.cpu_collectives:
    # Cross-process collectives on CPU (tests, CPU clusters) need an implementation; gloo ships with jaxlib.
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(**kwargs)
  logging.info('jax.distributed: process %d of %d, %d local / %d global devices', jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())


def fold_axis_size(num_slots: int, data_parallel: int, device_count: int | None = None) -> int:
  """Devices along the `fold` axis: the largest divisor of K that fits beside the `data` axis (of the
  job's devices, or `device_count`)."""
  device_count = jax.device_count() if device_count is None else device_count
  available = device_count // data_parallel
  if available < 1:
    raise ValueError(f'cv.data_parallel={data_parallel} exceeds the {device_count} devices')
  return max(d for d in range(1, min(num_slots, available) + 1) if num_slots % d == 0)


def make_mesh(num_slots: int, data_parallel: int = 1, devices: Sequence | None = None) -> Mesh:
  """A (fold, data) mesh for groups of `num_slots` folds on the first fold·data of `devices` (default the
  job's; e.g. a TPU topology's devices to compile for ahead of time)."""
  devices = jax.devices() if devices is None else list(devices)
  folds = fold_axis_size(num_slots, data_parallel, len(devices))
  return Mesh(np.asarray(devices[:folds * data_parallel]).reshape(folds, data_parallel), ('fold', 'data'))


def balanced_group_size(num_folds: int, max_slots: int, multiple: int = 1) -> int:
  """The smallest K ≤ max_slots (a multiple of `multiple` where possible) that needs as few groups as
  max_slots does: 26 folds at most 16 at a time run as 2 × 13, not 16 + 10 (+6 idle slots)."""
  max_slots = max(1, min(max_slots, num_folds))
  groups = math.ceil(num_folds / max_slots)
  k = math.ceil(num_folds / groups)
  rounded = math.ceil(k / multiple) * multiple
  return rounded if rounded <= max_slots else k


def fold_groups(folds: Sequence, num_slots: int) -> list[list]:
  """Consecutive groups of `num_slots` folds; the last one padded with None (an idle slot)."""
  groups = [list(folds[i:i + num_slots]) for i in range(0, len(folds), num_slots)]
  if groups:
    groups[-1] += [None] * (num_slots - len(groups[-1]))
  return groups


# The sharding of a group step's arguments and results, declared per step as pytrees of these specs that
# mirror them (a spec on a subtree covers all its leaves, as in `jax.jit` and `jax.shard_map`).
SLOTS = P('fold')              # one entry per slot (states, keys, tables): the slot axis over `fold`
SLOT_BATCHES = P('fold', 'data')   # a batch per slot: slots over `fold`, each batch's examples over `data`
SHARED = P()                   # replicated: every slot sees it whole (the step number, the on-device corpus)


def _is_spec(x) -> bool:
  return isinstance(x, P)


def _sliced(spec: P) -> bool:
  """Whether a spec splits the slot axis (the argument is per slot) or leaves it whole (shared)."""
  return len(spec) > 0 and spec[0] == 'fold'


def over_slots(fn: Callable, num_slots: int, in_specs: tuple) -> Callable:
  """`fn` mapped over the leading slot axis of its arguments (but those whose spec in `in_specs` is
  `SHARED`, which every slot sees whole) and of its results (a vmap; for one slot an index and a re-stack,
  which XLA:CPU runs faster than a size-1 vmap)."""
  in_axes = jax.tree.map(lambda spec: 0 if _sliced(spec) else None, in_specs, is_leaf=_is_spec)
  if num_slots > 1:
    return jax.vmap(fn, in_axes=in_axes)

  def one(*args):
    args = jax.tree.map(lambda axis, a: a if axis is None else jax.tree.map(lambda x: x[0], a),
                        in_axes, args, is_leaf=lambda x: x is None)
    return jax.tree.map(lambda x: jnp.asarray(x)[None], fn(*args))
  return one


def fold_parallel(fn: Callable, mesh: Mesh, num_slots: int, in_specs: tuple, out_specs,
                  jit: Callable = jax.jit, **jit_kwargs) -> Callable:
  """`fn(*args)` of one fold, jitted for a group of `num_slots` folds on `mesh`: every argument and result
  whose spec is `SLOTS` or `SLOT_BATCHES` carries the slot axis first; `SHARED` ones are replicated and
  seen whole by every slot. `in_specs` (a tuple, one pytree prefix per argument) and `out_specs` (a pytree
  prefix of the results) are the jitted function's shardings. Each device of the `fold` axis maps `fn`
  over its own K / fold-devices slots (shard_map, manual over `fold` only, so a `data` axis is still
  partitioned by XLA). With one slot per device the device runs exactly the sequential step, so a fold
  trains bit for bit as it does alone. `jit`: `jax.jit` or a wrapper of it (`train.jit_init`)."""
  local = num_slots // mesh.shape['fold']
  # Without data parallelism the body is fully manual: XLA compiles it as written, so its numerics do
  # not depend on the mesh (with `data` left to the partitioner, 4 folds on 4 devices drifted from
  # sequential training by float rounding after one step).
  manual = {'fold'} if mesh.shape['data'] > 1 else {'fold', 'data'}
  body = jax.shard_map(over_slots(fn, local, in_specs), mesh=mesh, in_specs=_slot_part(in_specs),
                       out_specs=_slot_part(out_specs), axis_names=frozenset(manual), check_vma=False)
  return jit(body, in_shardings=_shardings(mesh, in_specs), out_shardings=_shardings(mesh, out_specs),
             **jit_kwargs)


def _slot_part(specs):
  """The specs as the body of `fold_parallel` sees them: split over the manual `fold` axis only (a `data`
  axis is the partitioner's)."""
  return jax.tree.map(lambda spec: SLOTS if _sliced(spec) else SHARED, specs, is_leaf=_is_spec)


def _shardings(mesh: Mesh, specs):
  return jax.tree.map(lambda spec: NamedSharding(mesh, spec), specs, is_leaf=_is_spec)


class DeviceCorpus(NamedTuple):
  """The corpus placed on the devices (`device_input.load_clips`): its arrays, replicated over the mesh,
  and on the host the length of every record's window (evaluation picks its frames there)."""
  arrays: dict
  lengths: np.ndarray


class FoldSteps(NamedTuple):
  """The jitted group steps of a run; all arrays carry the slot axis first."""
  init: Callable      # (keys (K,)) -> TrainState with (K, ...) leaves
  train: Callable     # (state, batch, step_keys (K,), step) -> (state, metrics (K,)); the state is donated
  eval: Callable      # (state, batch) -> {'probabilities' (K, B, C), 'prediction' (K, B), 'index', 'label',
                      #                    'mask' (K, B), + MOL's `metrics.MOL_CLIP_ERRORS`}
  mesh: Mesh
  num_slots: int
  options: train.StepOptions     # the family, loss weights, conv routing and compute dtype they run with
  # With the corpus on the device (`fdp_jax.device_input`): the corpus, its arrays replicated over the
  # mesh, and the steps that sample from them.
  corpus: 'DeviceCorpus | None' = None
  train_on_device: Callable | None = None   # (state, tables (K, …), step_keys, step, clips) -> (state, metrics)
  eval_on_device: Callable | None = None    # (state, tables, records (K, B), mask (K, B), positions (K, B, T),
                                            #  clips) -> like eval

  @property
  def state_sharding(self) -> NamedSharding:
    return NamedSharding(self.mesh, SLOTS)

  @property
  def batch_sharding(self) -> NamedSharding:
    return NamedSharding(self.mesh, SLOT_BATCHES)


# The on-device sampler's keys, derived from a fold's step key beside the steps' fold_in(step_key, s).
_SHUFFLE_KEY, _SAMPLE_KEY = 0xFFFFFFFF, 0xFFFFFFFE


def make_fold_steps(config, model, example_batch: dict, num_slots: int, devices: Sequence | None = None,
                    clips: dict | None = None) -> FoldSteps:
  """The train/eval/init steps of `fdp_jax.train` for groups of `num_slots` stacked folds of `config`, on
  their mesh of `devices` (default the job's; `make_mesh`): the one place the run's steps are jitted (the
  trainer, evaluation, ahead-of-time compilation and the benchmarks all use these). Conv routing and compute
  dtype 'auto' follow the devices' platform (`train.options_for`). `example_batch`: a training batch
  (arrays or shapes). With `clips` (`device_input.load_clips`), also the steps that sample the corpus on
  the device.

  The RNG of a fold's step s is fold_in(step_key, s), as in sequential training, so a fold trains the same
  in any group and any slot.
  """
  mesh = make_mesh(num_slots, int(config.cv.data_parallel), devices)
  options = train.options_for(config, mesh.devices.flat[0].platform)
  train_config, data_config = config.train, config.data
  shapes = {k: jax.ShapeDtypeStruct(np.shape(example_batch[k]), np.asarray(example_batch[k]).dtype)
            for k in ('frames', 'frame_mask')}
  batch_shapes = {k: jax.ShapeDtypeStruct(np.shape(v), np.asarray(v).dtype) for k, v in example_batch.items()}

  def init_one(key):
    state = train.create_train_state(model, train_config, shapes, key)
    return train.with_metric_sums(state, batch_shapes, options)

  def train_one(state, batch, key, step):
    return train.train_step(state, batch, jax.random.fold_in(key, step), options)

  def eval_one(state, batch):
    return dict(train.eval_step(state, batch, options), index=batch['index'], label=batch['label'],
                mask=batch['mask'])

  def group(fn, in_specs, out_specs, **jit_kwargs):
    return fold_parallel(fn, mesh, num_slots, in_specs, out_specs, **jit_kwargs)

  # (keys) -> state; (state, batch, keys, step) -> (state, metrics); (state, batch) -> outputs
  init = group(init_one, (SLOTS,), SLOTS, jit=train.jit_init)
  train_fn = group(train_one, (SLOTS, SLOT_BATCHES, SLOTS, SHARED), (SLOTS, SLOTS), donate_argnums=0)
  eval_fn = group(eval_one, (SLOTS, SLOT_BATCHES), SLOT_BATCHES)
  if clips is None:
    return FoldSteps(init, train_fn, eval_fn, mesh, num_slots, options)
  batch_size = int(train_config.batch_size)

  def train_device_one(state, table, key, step, clips):
    batch = device_input.train_batch(clips, table, jax.random.fold_in(key, _SHUFFLE_KEY),
                                     jax.random.fold_in(key, _SAMPLE_KEY), step, data_config, batch_size)
    return train_one(state, batch, key, step)

  def eval_device_one(state, table, records, mask, positions, clips):
    return eval_one(state, device_input.eval_batch(clips, table, records, mask, positions, data_config))

  # (state, tables, keys, step, clips) -> (state, metrics); (state, tables, records, mask, positions, clips)
  train_device_fn = group(train_device_one, (SLOTS, SLOTS, SLOTS, SHARED, SHARED), (SLOTS, SLOTS),
                          donate_argnums=0)
  eval_device_fn = group(eval_device_one, (SLOTS, SLOTS, SLOT_BATCHES, SLOT_BATCHES, SLOT_BATCHES, SHARED),
                         SLOT_BATCHES)
  corpus = DeviceCorpus(jax.device_put(clips, NamedSharding(mesh, SHARED)), np.asarray(clips['length']))
  return FoldSteps(init, train_fn, eval_fn, mesh, num_slots, options, corpus, train_device_fn, eval_device_fn)


def slot_keys(keys: Sequence[jax.Array], sharding: NamedSharding) -> jax.Array:
  """(K,) typed PRNG keys, one per slot, placed on the fold axis (every process computes all K)."""
  data = jax.random.key_data(jnp.stack(keys))
  impl = jax.random.key_impl(keys[0])
  raw = jax.make_array_from_callback(data.shape, sharding, lambda idx: np.asarray(data)[idx])
  return jax.random.wrap_key_data(raw, impl=impl)


def local_slots(sharding: NamedSharding, num_slots: int) -> list[int]:
  """The slots whose data this process's devices hold (all of them in a single-process run)."""
  slots = set()
  for index in sharding.addressable_devices_indices_map((num_slots,)).values():
    slots.update(range(num_slots)[index[0]])
  return sorted(slots)


def owned_slots(sharding: NamedSharding, num_slots: int) -> list[int]:
  """The slots this process answers for: those whose lowest-numbered feeding process it is (with data
  parallelism across hosts several processes feed one slot; one of them writes its files)."""
  owner: dict[int, int] = {}
  for device, index in sharding.devices_indices_map((num_slots,)).items():
    for s in range(num_slots)[index[0]]:
      owner[s] = min(owner.get(s, device.process_index), device.process_index)
  return sorted(s for s, p in owner.items() if p == jax.process_index())


def global_batch(per_slot: dict[int, dict], example: dict, sharding: NamedSharding, num_slots: int) -> dict:
  """Stacks this process's per-slot batches {slot: {key: (B, ...)}} into global (K, B, ...) arrays on
  `sharding`. Only the slots `local_slots` lists are read; keys follow `example`."""
  out = {}
  for key, value in example.items():
    shape = (num_slots,) + np.shape(value)

    def fetch(index, key=key):
      slots = range(num_slots)[index[0]]
      return np.stack([per_slot[s][key] for s in slots])[(slice(None),) + tuple(index[1:])]
    out[key] = jax.make_array_from_callback(shape, sharding, fetch)
  return out


def idle_batch(example: dict) -> dict:
  """A batch that trains nothing: zeros, every example masked out, full frame masks (no empty clips)."""
  batch = {k: np.zeros_like(v) for k, v in example.items()}
  batch['frame_mask'] = np.ones_like(example['frame_mask'])
  if 'class_weight' in batch:
    batch['class_weight'] = np.zeros_like(example['class_weight'])
  return batch


# How long a process waits at `to_host` (or before another cross-process collective) for the others, which
# may be compiling a step, evaluating or writing checkpoints. The collectives' own (Gloo) rendezvous allows
# only 30 s, and on a loaded host one process can lag another by more, so each is preceded by a barrier of
# the coordination service, whose deadline is ours to set. If a process dies, the others fail at the
# barrier after this time at the latest.
GATHER_BARRIER_TIMEOUT_S = 30 * 60
_gathers = [0]


def wait_for_all_processes() -> None:
  """A barrier across processes (the coordination service's, not a collective), each call its own: every
  process makes the same cross-process calls in the same order, so the n-th call of each meets the n-th of
  the others. Call it before a cross-process collective that one process may reach long after another."""
  from jax._src import distributed   # the client of jax.distributed.initialize; no public barrier exists
  _gathers[0] += 1
  distributed.global_state.client.wait_at_barrier(f'fdp_jax_gather_{_gathers[0]}',
                                                  GATHER_BARRIER_TIMEOUT_S * 1000)


def to_host(tree):
  """numpy copies of (possibly multi-process) global arrays, identical on every process. With several
  processes, they first meet at a barrier (`GATHER_BARRIER_TIMEOUT_S`)."""
  if any(isinstance(x, jax.Array) and not x.is_fully_addressable for x in jax.tree.leaves(tree)):
    wait_for_all_processes()

  def get(x):
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      return get(jax.random.key_data(x))
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)
  return jax.tree.map(get, tree)


def stack_states(states: Sequence, sharding: NamedSharding):
  """Single-fold states (host or device) stacked on the slot axis and placed on `sharding`."""
  stacked = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *states)
  return jax.tree.map(
      lambda x: jax.make_array_from_callback(x.shape, sharding, lambda idx, x=x: x[idx]), stacked)


def per_device_bytes(compiled) -> int | None:
  """Peak bytes a compiled step needs on one device (arguments + outputs not aliased + temporaries)."""
  try:
    m = compiled.memory_analysis()
  except Exception:   # not every backend reports it
    return None
  if m is None:
    return None
  return int(m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
             + m.temp_size_in_bytes)


def auto_group_size(num_folds: int, data_parallel: int, measure: Callable[[int], int | None]) -> int:
  """`cv.parallel_folds=0`: as many folds as fit. One fold per fold-axis device on CPU (XLA:CPU runs the
  vmapped step's per-fold weights as grouped convolutions, slower than the folds one after another); on
  GPU/TPU, as many per device as `MEMORY_HEADROOM` of its memory holds, from the
  compiled step's memory analysis at one fold per device (`measure(K) -> bytes per device`)."""
  fold_devices = jax.device_count() // data_parallel
  per_device = 1
  device = jax.devices()[0]
  if device.platform != 'cpu':
    limit = (device.memory_stats() or {}).get('bytes_limit')
    need = measure(min(fold_devices, num_folds))
    if limit and need:
      per_device = max(1, int(MEMORY_HEADROOM * limit // need))
      logging.info('auto parallel_folds: %.2f GiB per fold on %s (limit %.1f GiB) -> %d folds per device',
                   need / 2**30, device.device_kind, limit / 2**30, per_device)
  return balanced_group_size(num_folds, per_device * fold_devices, multiple=fold_devices)
