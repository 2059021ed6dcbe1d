"""The training state, the optimiser and the pure steps of one fold, for every model family.

`train_step(state, batch, rng, options) -> (state, metrics)` and `eval_step(state, batch, options) ->
outputs` have no Python side effects. The cross-validation trainer (`fdp_jax.cv.parallel`) jits them once
per run over its groups of folds, with the state donated; the RNG of step s is `fold_in(fold_key, s)`, so a
resumed fold sees the randomness it would have seen.

Mixed precision (`StepOptions.compute_dtype`): parameters, optimiser state and BatchNorm statistics stay
float32; a step casts the parameters and frames to the compute dtype, so activations and matrix work run in
it, and the model's outputs back to float32 for the losses and the softmax. BatchNorm statistics, attention
softmax and the rank-pooling sum are computed in float32 inside the models, and the designed FDP carries its
frame features in float32 from the encoder's output on (pooling differences near-identical frames).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from fdp_jax import families
from fdp_jax.models import layers

COMPUTE_DTYPES = ('auto', 'float32', 'bfloat16')


def resolve_compute_dtype(name: str, platform: str | None = None) -> str:
  """'float32' or 'bfloat16'; 'auto' is bfloat16 on TPU and GPU (their matrix units' fast type) and float32 on
  CPU (whose bfloat16 is slower than float32), following `platform` (default `jax.default_backend()`)."""
  if name not in COMPUTE_DTYPES:
    raise ValueError(f'unknown train.compute_dtype {name!r}: use one of {COMPUTE_DTYPES}')
  if name != 'auto':
    return name
  return 'float32' if (platform or jax.default_backend()) == 'cpu' else 'bfloat16'


class StepOptions(NamedTuple):
  """What a step needs besides its arguments, fixed when the steps are built (`options_for`)."""
  family: families.Family
  loss_weights: Any                # the family's loss weights (`Family.loss_weights`)
  ema_decay: float = 0.0           # > 0: the state keeps a moving average of the parameters
  conv_routing: str = 'cpu'        # 'cpu' | 'xla' (`layers.conv_routing`)
  compute_dtype: str = 'float32'   # 'float32' | 'bfloat16'
  log_every_steps: int = 0         # > 0: a state with `metric_sums` reports interval means (`train_step`)
  # (outputs, batch) → the family's scalars that show its auxiliary parts working (`Family.train_metrics`)
  train_metrics: Callable[[dict, dict], dict] | None = None


def options_for(config, platform: str | None = None) -> StepOptions:
  """The step options of a config on the devices of `platform` ('cpu', 'gpu', 'tpu'; default
  `jax.default_backend()`): `train.conv_routing` and `train.compute_dtype` 'auto' follow it."""
  compute_dtype = resolve_compute_dtype(config.train.compute_dtype, platform)
  family = families.family(config.model)
  return StepOptions(family, family.loss_weights(config), float(config.train.ema_decay),
                     layers.resolve_conv_routing(config.train.conv_routing, platform), compute_dtype,
                     int(config.train.log_every_steps), family.train_metrics(config.model))


def _in_compute_dtype(tree, dtype: str):
  """The floating-point leaves of `tree` in `dtype` (unchanged for float32, the stored dtype)."""
  if dtype == 'float32':
    return tree
  return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def _in_float32(tree):
  return jax.tree.map(lambda x: x.astype(jnp.float32) if x.dtype in (jnp.bfloat16, jnp.float16) else x, tree)


def apply_model(state: 'TrainState', params, batch: dict, options: StepOptions, **kwargs):
  """The family's output dict of `state.apply_fn` on the batch's frames, under the options' conv routing
  and compute dtype (outputs in float32); with `mutable`, (outputs, updated variables)."""
  variables = {'params': _in_compute_dtype(params, options.compute_dtype), 'batch_stats': state.batch_stats}
  with layers.conv_routing(options.conv_routing):
    out = state.apply_fn(variables, _in_compute_dtype(batch['frames'], options.compute_dtype),
                         batch['frame_mask'], **kwargs)
  if kwargs.get('mutable'):
    out, updates = out
    return _in_float32(out), updates
  return _in_float32(out)


class TrainState(train_state.TrainState):
  batch_stats: Any = None
  ema_params: Any = None   # with train.ema_decay > 0: the moving average of the parameters evaluation uses
  # {'steps': (), 'sums': {metric: ()}}: the metrics summed over the steps since the last logging point, so
  # that what is logged is every step's mean, not one batch's value (`with_metric_sums`, `train_step`).
  metric_sums: Any = None


def eval_params(state: TrainState):
  """The parameters a fold is scored (and predicts) with: their moving average when it is kept."""
  return state.params if state.ema_params is None else state.ema_params


def update_ema(ema_params, params, step: jax.Array, decay: float):
  """ema ← d·ema + (1 − d)·params with d = min(decay, (1 + step) / (10 + step)): the warm-up keeps the
  random initial parameters from weighing in the average of a short schedule (d^180 = 0.16 at 0.99)."""
  d = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
  return jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, ema_params, params)


def learning_rate_schedule(train_config) -> optax.Schedule:
  """Linear warm-up then cosine decay to `end_lr_factor`·lr over `num_steps`; or a constant rate."""
  lr = train_config.learning_rate
  if train_config.schedule == 'constant':
    return optax.constant_schedule(lr)
  if train_config.schedule == 'warmup_cosine':
    warmup = min(train_config.warmup_steps, max(train_config.num_steps - 1, 0))
    return optax.warmup_cosine_decay_schedule(
        0.0 if warmup else lr, lr, warmup, max(train_config.num_steps, warmup + 1),
        end_value=lr * train_config.end_lr_factor)
  raise ValueError(f"unknown train.schedule {train_config.schedule!r}: use 'constant' or 'warmup_cosine'")


def make_optimizer(train_config) -> optax.GradientTransformation:
  """'adamw': decoupled weight decay (AdamW); 'adam_l2': L2 added to the gradient, as torch.optim.Adam."""
  schedule = learning_rate_schedule(train_config)
  wd = train_config.weight_decay
  if train_config.optimizer == 'adamw':
    tx = optax.adamw(schedule, weight_decay=wd)
  elif train_config.optimizer == 'adam_l2':
    tx = optax.chain(optax.add_decayed_weights(wd), optax.adam(schedule))
  else:
    raise ValueError(f"unknown train.optimizer {train_config.optimizer!r}: use 'adamw' or 'adam_l2'")
  if train_config.grad_clip_norm:
    tx = optax.chain(optax.clip_by_global_norm(train_config.grad_clip_norm), tx)
  return tx


# Initialisation is compiled at LLVM optimisation level 1: it runs once per run, and its program (one
# threefry draw per parameter, hundreds of small fusions) compiles 2–3× faster there, with bitwise the same
# parameters (tests/test_train.py; timings in benchmarks/README.md).
INIT_COMPILER_OPTIONS = {'xla_backend_optimization_level': 1}


def jit_init(fn: Callable, **jit_kwargs) -> Callable:
  """`jax.jit(fn)` for an initialisation (e.g. `create_train_state`), with `INIT_COMPILER_OPTIONS`."""
  return jax.jit(fn, compiler_options=INIT_COMPILER_OPTIONS, **jit_kwargs)


def create_train_state(model: nn.Module, train_config, example_batch: dict, rng: jax.Array) -> TrainState:
  """Initialises parameters and optimiser state from `rng` (only the shapes of `example_batch` are used)."""
  frames = jnp.zeros(example_batch['frames'].shape, jnp.float32)
  mask = jnp.ones(example_batch['frame_mask'].shape, bool)
  variables = model.init({'params': rng}, frames, mask, train=False)
  ema = variables['params'] if train_config.ema_decay > 0 else None
  return TrainState.create(apply_fn=model.apply, params=variables['params'],
                           batch_stats=variables.get('batch_stats', flax.core.FrozenDict()),
                           tx=make_optimizer(train_config), ema_params=ema)


def with_metric_sums(state: TrainState, example_batch: dict, options: StepOptions) -> TrainState:
  """`state` with zero `metric_sums` for the metrics `train_step` returns on batches like `example_batch`
  (arrays or shapes; only their shapes are used). Inside a jitted initialisation this costs a trace, no
  compute."""
  shapes = jax.eval_shape(lambda s, b: train_step(s, b, jax.random.key(0), options)[1], state, example_batch)
  return state.replace(metric_sums={'steps': jnp.zeros((), jnp.float32),
                                    'sums': jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)})


def _interval_means(sums: dict, metrics: dict, step: jax.Array,
                    log_every: int | jax.Array) -> tuple[dict, dict]:
  """Adds a step's metrics to the sums, which restart at every multiple of `log_every` (the step after a
  logging point); returns the new sums and their means, what the host reads when it logs."""
  # Written for a traced `log_every` too, so one compiled step can be run at several logging intervals.
  restart = (log_every > 0) & (step % jnp.maximum(log_every, 1) == 0)
  keep = lambda total: jnp.where(restart, jnp.zeros_like(total), total)  # noqa: E731
  steps = keep(sums['steps']) + 1.0
  totals = jax.tree.map(lambda total, value: keep(total) + value, sums['sums'], metrics)
  return {'steps': steps, 'sums': totals}, jax.tree.map(lambda total: total / steps, totals)


def train_step(state: TrainState, batch: dict, rng: jax.Array, options: StepOptions) -> tuple[TrainState, dict]:
  """One optimiser step on a batch; returns the new state and scalar metrics (the family's loss terms,
  'accuracy', 'grad_norm' and the options' `train_metrics`). With a state that keeps `ema_params`, they follow
  the new parameters with the options' `ema_decay` (`update_ema`). With a state that keeps `metric_sums`
  (`with_metric_sums`; the cross-validation trainer's do), the metrics returned are the means over every step
  since the last multiple of `log_every_steps` — accumulated here, on the device, so logging every N steps
  costs one transfer every N steps and still sees every batch."""
  step = state.step

  def loss_fn(params):
    outputs, updates = apply_model(state, params, batch, options, train=True, rngs={'dropout': rng},
                                   mutable=['batch_stats'])
    terms = options.family.losses(outputs, batch, options.loss_weights)
    return terms['loss'], (terms, outputs, updates)

  grads, (terms, outputs, updates) = jax.grad(loss_fn, has_aux=True)(state.params)
  state = state.apply_gradients(grads=grads, batch_stats=updates['batch_stats'])
  if state.ema_params is not None:
    state = state.replace(ema_params=update_ema(state.ema_params, state.params, state.step, options.ema_decay))
  correct = (jnp.argmax(outputs['logits'], -1) == batch['label']) & batch['mask']
  metrics = dict(terms, accuracy=correct.sum() / jnp.maximum(batch['mask'].sum(), 1),
                 grad_norm=optax.tree.norm(grads))
  if options.train_metrics is not None:
    metrics.update(jax.lax.stop_gradient(options.train_metrics(outputs, batch)))
  if state.metric_sums is not None:
    sums, metrics = _interval_means(state.metric_sums, metrics, step, options.log_every_steps)
    state = state.replace(metric_sums=sums)
  return state, metrics


def eval_outputs(state: TrainState, batch: dict, options: StepOptions) -> dict:
  """The family's output dict (float32; 'logits' (B, C)) of a fold's model in eval mode: running BatchNorm
  statistics, the parameters it is scored with (`eval_params`)."""
  return apply_model(state, eval_params(state), batch, options, train=False)


def eval_step(state: TrainState, batch: dict, options: StepOptions) -> dict:
  """Class probabilities (B, C) and predictions (B,) in eval mode (`eval_outputs`), and the family's per-clip
  evaluation values (MOL: flow end-point error and landmark NME, `Family.eval_metrics`)."""
  outputs = eval_outputs(state, batch, options)
  probs = jax.nn.softmax(outputs['logits'].astype(jnp.float32), axis=-1)
  return {'probabilities': probs, 'prediction': jnp.argmax(probs, -1),
          **options.family.eval_metrics(outputs, batch)}
