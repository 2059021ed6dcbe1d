"""Ahead-of-time compilation of a run's fold-parallel steps for devices this machine does not have: a TPU
topology described by libtpu (`jax.experimental.topologies`), compiled on the CPU host. What the compiler
reports per device — memory, FLOPs, bytes accessed — says whether a config fits a chip and bounds its step
time from below before any TPU is rented (`benchmarks/tpu_compile.py`).

Needs `libtpu` (`pip install "jax[tpu]==<the installed jax version>"`); nothing else in the package does.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import time
from typing import Sequence

import jax
import numpy as np

from fdp_jax import families, input_pipeline
from fdp_jax.cv import parallel


def tpu_devices(topology: str) -> list:
  """The compile-only devices of a TPU topology, e.g. 'v5e:2x2' (4 chips) or 'v6e:1x1' (1 chip). Raises
  RuntimeError when libtpu is not installed."""
  if importlib.util.find_spec('libtpu') is None:   # present only with jax[tpu]
    raise RuntimeError(f'compiling for TPUs needs libtpu: pip install "jax[tpu]=={jax.__version__}"')
  from jax.experimental import topologies
  kwargs = {}
  if topology.endswith(':1x1'):      # libtpu's default host holds 2x2 chips; a single chip is a 1x1x1 host
    kwargs['chips_per_host_bounds'] = (1, 1, 1)
  return list(topologies.get_topology_desc(topology_name=topology, platform='tpu', **kwargs).devices)


@dataclasses.dataclass(frozen=True)
class StepCost:
  """What XLA reports for one compiled step, per device."""
  flops: float | None            # floating-point operations (a multiply-add is 2)
  bytes_accessed: float | None   # bytes read and written from device memory
  argument_bytes: int
  output_bytes: int
  alias_bytes: int               # outputs written over donated arguments
  temp_bytes: int
  compile_s: float

  @property
  def memory_bytes(self) -> int:
    """Device memory the step needs: arguments, outputs not aliased to them, temporaries."""
    return self.argument_bytes + self.output_bytes - self.alias_bytes + self.temp_bytes


def step_cost(lowered) -> StepCost:
  start = time.perf_counter()
  compiled = lowered.compile()
  seconds = time.perf_counter() - start
  costs = compiled.cost_analysis()
  if isinstance(costs, (list, tuple)):   # older jax: one dict per computation
    costs = costs[0] if costs else {}
  costs = costs or {}
  memory = compiled.memory_analysis()
  return StepCost(costs.get('flops'), costs.get('bytes accessed'), int(memory.argument_size_in_bytes),
                  int(memory.output_size_in_bytes), int(memory.alias_size_in_bytes),
                  int(memory.temp_size_in_bytes), seconds)


def _abstract(tree, sharding):
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding), tree)


def compile_group_steps(config, devices: Sequence, folds_per_device: int = 1
                        ) -> tuple[parallel.FoldSteps, StepCost, StepCost]:
  """Compiles the train and eval steps of a group of folds exactly as the trainer builds them
  (`cv.parallel.make_fold_steps`), with `folds_per_device` folds on each device of the `fold` axis; conv
  routing and compute dtype 'auto' follow the devices' platform. Returns the steps and the train and eval
  steps' costs per device."""
  data_parallel = int(config.cv.data_parallel)
  num_slots = folds_per_device * (len(devices) // data_parallel)
  model = families.build_model(config.model, config.data.num_classes, config.data.image_size)
  example = input_pipeline.example_shapes(config.data, config.train.batch_size)
  fsteps = parallel.make_fold_steps(config, model, example, num_slots, devices)
  state_sharding, batch_sharding = fsteps.state_sharding, fsteps.batch_sharding
  keys = jax.ShapeDtypeStruct((num_slots,), jax.random.key(0).dtype, sharding=state_sharding)
  state = _abstract(jax.eval_shape(fsteps.init, keys), state_sharding)
  train_batch = dict(example, class_weight=np.zeros((config.train.batch_size,), np.float32))
  train_batch = {k: jax.ShapeDtypeStruct((num_slots,) + v.shape, v.dtype, sharding=batch_sharding)
                 for k, v in train_batch.items()}
  step = jax.ShapeDtypeStruct((), np.int32)
  train_cost = step_cost(fsteps.train.lower(state, train_batch, keys, step))
  eval_example = input_pipeline.example_shapes(config.data, config.eval.batch_size)
  eval_batch = {k: jax.ShapeDtypeStruct((num_slots,) + v.shape, v.dtype, sharding=batch_sharding)
                for k, v in eval_example.items()}
  eval_cost = step_cost(fsteps.eval.lower(state, eval_batch))
  return fsteps, train_cost, eval_cost
