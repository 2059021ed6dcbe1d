"""Pure train/eval steps for FDP and MOL and the loop that trains one cross-validation fold.

`train_step(state, batch, rng) -> (state, metrics)` and `eval_step(state, batch) -> outputs` have no Python
side effects; `make_steps` jits them (and the initialisation) once per run — every fold has the same shapes —
with the state donated. The RNG
of step s is `fold_in(fold_key, s)`, so a resumed fold sees the randomness it would have seen.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from fdp_jax.models import output_dict, rank_pooling


class TrainState(train_state.TrainState):
  batch_stats: Any = None
  ema_params: Any = None   # with train.ema_decay > 0: the moving average of the parameters evaluation uses


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
  if train_config.get('grad_clip_norm'):
    tx = optax.chain(optax.clip_by_global_norm(train_config.grad_clip_norm), tx)
  return tx


# Initialisation is compiled at LLVM optimisation level 1: it runs once per run, and its program (one
# threefry draw per parameter, hundreds of small fusions) compiled at the default level took 12.7 s for the
# test config, 14.1 s for the small and 27–28 s for the released FDP and MOL, against 5.5, 5.4, 16.2 and
# 9.1 s at level 1 — with bitwise the same parameters for every model config (tests/test_train.py).
INIT_COMPILER_OPTIONS = {'xla_backend_optimization_level': 1}


def jit_init(fn: Callable, **jit_kwargs) -> Callable:
  """`jax.jit(fn)` for an initialisation (e.g. `create_train_state`), with `INIT_COMPILER_OPTIONS`."""
  return jax.jit(fn, compiler_options=INIT_COMPILER_OPTIONS, **jit_kwargs)


def create_train_state(model: nn.Module, train_config, example_batch: dict, rng: jax.Array) -> TrainState:
  """Initialises parameters and optimiser state from `rng` (only the shapes of `example_batch` are used)."""
  frames = jnp.zeros(example_batch['frames'].shape, jnp.float32)
  mask = jnp.ones(example_batch['frame_mask'].shape, bool)
  variables = model.init({'params': rng}, frames, mask, train=False)
  ema = variables['params'] if train_config.get('ema_decay', 0.0) > 0 else None
  return TrainState.create(apply_fn=model.apply, params=variables['params'],
                           batch_stats=variables.get('batch_stats', flax.core.FrozenDict()),
                           tx=make_optimizer(train_config), ema_params=ema)


def fdp_losses(outputs: dict, batch: dict, loss_config) -> dict[str, jax.Array]:
  """Per-term losses (SPEC §3): CE on labels, MSE on the dynamic image, ranking loss on the scores.

  Padding examples (batch['mask'] False) contribute nothing. An optional batch['class_weight'] (B,) scales
  each example's cross-entropy (the class-balancing weight of its label, see `balanced_class_weights`).
  """
  weight = batch['mask'].astype(jnp.float32)
  denom = jnp.maximum(weight.sum(), 1.0)
  ce = optax.softmax_cross_entropy_with_integer_labels(outputs['logits'], batch['label'])
  if 'class_weight' in batch:
    ce = ce * batch['class_weight']
  mse = jnp.mean(jnp.square(outputs['dynamic_image'] - batch['dynamic_image']), axis=(1, 2))
  frame_mask = batch['frame_mask'] & batch['mask'][:, None]
  rank = rank_pooling.ranking_loss(outputs['rank_scores'], frame_mask, loss_config.rank_temperature)
  terms = {
      'loss_mer': (ce * weight).sum() / denom,
      'loss_dynamic_image': (mse * weight).sum() / denom,
      'loss_rank': rank,
  }
  terms['loss'] = (loss_config.mer * terms['loss_mer'] + loss_config.dynamic_image * terms['loss_dynamic_image']
                   + loss_config.rank * terms['loss_rank'])
  return terms


def interpupil_distance(landmarks: jax.Array) -> jax.Array:
  """(..., 68, 2) → (...,): distance between the eye centres (means of points 36–41 and 42–47)."""
  return jnp.linalg.norm(landmarks[..., 36:42, :].mean(-2) - landmarks[..., 42:48, :].mean(-2), axis=-1)


def mol_losses(outputs: dict, batch: dict, loss_config) -> dict[str, jax.Array]:
  """MOL's terms (SPEC §4): CE + w_flow · MSE(flow) averaged over the T−1 pairs + w_ldm · L1 landmark error
  over the inter-pupil distance, per landmark (the release's Σ L1 / IPD / (B·68)) and averaged over pairs.

  Padding examples contribute nothing; batch['class_weight'] scales the cross-entropy as for FDP.
  """
  weight = batch['mask'].astype(jnp.float32)
  denom = jnp.maximum(weight.sum(), 1.0)
  ce = optax.softmax_cross_entropy_with_integer_labels(outputs['logits'], batch['label'])
  if 'class_weight' in batch:
    ce = ce * batch['class_weight']
  flow_mse = jnp.mean(jnp.square(outputs['flow'] - batch['flow']), axis=(1, 2, 3, 4))             # (B,)
  target = batch['landmarks']
  ipd = jnp.maximum(interpupil_distance(target), 1e-3)                                              # (B, T−1)
  l1 = jnp.abs(outputs['landmarks'] - target).sum(-1).mean(-1) / ipd                                # (B, T−1)
  terms = {
      'loss_mer': (ce * weight).sum() / denom,
      'loss_flow': (flow_mse * weight).sum() / denom,
      'loss_landmarks': (l1.mean(-1) * weight).sum() / denom,
  }
  terms['loss'] = (loss_config.mer * terms['loss_mer'] + loss_config.flow * terms['loss_flow']
                   + loss_config.landmarks * terms['loss_landmarks'])
  return terms


def losses(outputs: dict, batch: dict, loss_config) -> dict[str, jax.Array]:
  """The loss terms of whichever model produced `outputs` (MOL's have a flow)."""
  return (mol_losses if 'flow' in outputs else fdp_losses)(outputs, batch, loss_config)


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
  """(C,) float32 inverse-frequency weights N / (C · n_c) of a training set's labels, so that every class
  carries the same total weight and the mean weight over the training examples is 1 (the loss keeps its
  scale). A class absent from the training set gets weight 0 (it has no examples to weigh)."""
  counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes).astype(np.float64)
  present = counts > 0
  weights = np.zeros(num_classes)
  weights[present] = counts.sum() / (present.sum() * counts[present])
  return weights.astype(np.float32)


def train_step(state: TrainState, batch: dict, rng: jax.Array, loss_config,
               ema_decay: float = 0.0) -> tuple[TrainState, dict]:
  """One optimiser step on a batch; returns the new state and scalar metrics. With a state that keeps
  `ema_params`, they follow the new parameters with `ema_decay` (`update_ema`)."""

  def loss_fn(params):
    outputs, updates = state.apply_fn(
        {'params': params, 'batch_stats': state.batch_stats}, batch['frames'], batch['frame_mask'],
        train=True, rngs={'dropout': rng}, mutable=['batch_stats'])
    outputs = output_dict(outputs, batch['frames'])
    terms = losses(outputs, batch, loss_config)
    return terms['loss'], (terms, outputs, updates)

  grads, (terms, outputs, updates) = jax.grad(loss_fn, has_aux=True)(state.params)
  state = state.apply_gradients(grads=grads, batch_stats=updates['batch_stats'])
  if state.ema_params is not None:
    state = state.replace(ema_params=update_ema(state.ema_params, state.params, state.step, ema_decay))
  correct = (jnp.argmax(outputs['logits'], -1) == batch['label']) & batch['mask']
  metrics = dict(terms, accuracy=correct.sum() / jnp.maximum(batch['mask'].sum(), 1),
                 grad_norm=optax.tree.norm(grads))
  return state, metrics


def eval_step(state: TrainState, batch: dict) -> dict:
  """Class probabilities (B, C) and predictions (B,) in eval mode (running BatchNorm statistics); for MOL
  also each clip's flow end-point error (mean over pixels and pairs, in pixels) and landmark NME (mean
  error over the inter-pupil distance) when the batch carries those targets."""
  outputs = state.apply_fn({'params': eval_params(state), 'batch_stats': state.batch_stats},
                           batch['frames'], batch['frame_mask'], train=False)
  outputs = output_dict(outputs, batch['frames'])
  probs = jax.nn.softmax(outputs['logits'].astype(jnp.float32), axis=-1)
  result = {'probabilities': probs, 'prediction': jnp.argmax(probs, -1)}
  if 'flow' in outputs and 'flow' in batch:
    result['flow_epe'] = jnp.linalg.norm(outputs['flow'] - batch['flow'], axis=-1).mean((1, 2, 3))
    error = jnp.linalg.norm(outputs['landmarks'] - batch['landmarks'], axis=-1).mean(-1)
    result['landmark_nme'] = (error / jnp.maximum(interpupil_distance(batch['landmarks']), 1e-3)).mean(-1)
  return result


class Steps(NamedTuple):
  """The jitted functions of a run, compiled once and shared by every fold (all folds have one shape)."""
  init: Callable      # (rng) -> TrainState
  train: Callable     # (state, batch, rng) -> (state, metrics); the state is donated
  eval: Callable      # (state, batch) -> {'probabilities', 'prediction'}


def make_steps(model: nn.Module, train_config, loss_config, example_batch: dict) -> Steps:
  shapes = {k: jax.ShapeDtypeStruct(np.shape(example_batch[k]), np.asarray(example_batch[k]).dtype)
            for k in ('frames', 'frame_mask')}
  init = jit_init(lambda rng: create_train_state(model, train_config, shapes, rng))
  train = jax.jit(functools.partial(train_step, loss_config=loss_config,
                                    ema_decay=train_config.get('ema_decay', 0.0)), donate_argnums=0)
  return Steps(init, train, jax.jit(eval_step))


def predict(eval_fn: Callable, state: TrainState, batches) -> dict[str, np.ndarray]:
  """Runs `eval_fn` over padded batches; returns unpadded record indices, labels, predictions, probs."""
  out = {'index': [], 'label': [], 'prediction': [], 'probabilities': []}
  for batch in batches:
    res = jax.device_get(eval_fn(state, batch))
    keep = np.asarray(batch['mask'])
    for key in ('index', 'label'):
      out[key].append(np.asarray(batch[key])[keep])
    for key, value in res.items():        # prediction, probabilities (+ flow_epe, landmark_nme for MOL)
      out.setdefault(key, []).append(np.asarray(value)[keep])
  return {k: np.concatenate(v) for k, v in out.items()}
