"""Whole-model parity of the JAX `released` FDP and `MOL` with their PyTorch renderings
(benchmarks/torch_fdp.py, benchmarks/torch_mol.py), at the released sizes.

  python benchmarks/torch_parity.py                        # --check: JAX vs PyTorch, eval mode, batch 2
  python benchmarks/torch_parity.py --check_train          # the same in training mode (no drop path)
  python benchmarks/torch_parity.py --model=mol            # MOL (either check; --routing=xla too)

--check draws random variables for the JAX model (kernels, biases, BatchNorm scales and running
statistics, so that eval-mode BatchNorm and the biases are not identities), converts them with
`fdp_jax.models.released_weights.to_released_state_dict`, loads them into the PyTorch model with strict=True, reads the
PyTorch state_dict back into the JAX variables with `fdp_jax.models.released_weights.variables_from_state_dict` (both
converters on the path) and compares, on the same random frames, every output — FDP: the frame features, the
logits, the log-probabilities, the dynamic image and SegNet's pre-sigmoid output; MOL: the logits,
log-probabilities, flow and landmarks — each as max|Δ| / max|PyTorch|. It exits 1 when any of them is above
1e-3.

--check_train does the same in training mode, with stochastic depth and dropout off on both sides (their
random draws cannot match): batch statistics instead of running ones (FDP per frame in the encoder; MOL per
pair in the F5C blocks and FlowNetC, per frame in FlowNetC's encoder). It also compares every BatchNorm's
running mean and variance after the step (PyTorch's call-by-call updates against `layers.TorchBatchNorm`'s
closed form), as max|Δ| / max|PyTorch| over all of them.
"""

import argparse
import dataclasses
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch_setup  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from torch_fdp import SMALL_FDP, ReleasedFDPTorch  # noqa: E402
from torch_mol import SMALL_MOL_IMAGE, ReleasedMOLTorch  # noqa: E402

REFERENCE_KEYS = os.path.join(torch_setup.REPO, 'tests', 'fixtures', 'official_state_dict_keys.json')
TOLERANCE = 1e-3


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


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  mode = p.add_mutually_exclusive_group()
  mode.add_argument('--check', action='store_true', help='JAX vs PyTorch parity in eval mode (the default)')
  mode.add_argument('--check_train', action='store_true', help='the same parity in training mode')
  p.add_argument('--model', choices=('fdp', 'mol'), default='fdp', help='which released model to check')
  p.add_argument('--routing', choices=('auto', 'cpu', 'xla'), default='auto', help="the JAX model's conv routing")
  p.add_argument('--batch', type=int, default=2)
  p.add_argument('--seed', type=int, default=0)
  a = p.parse_args()
  sys.exit(check(a.model, a.batch, a.seed, train=a.check_train, routing=a.routing))


if __name__ == '__main__':
  main()
