"""Weight conversion between the released PyTorch models and their Linen counterparts: FDP
(`models.fdp_released.ReleasedFDP`) and MOL (`models.mol.MOL`).

  python -m fdp_jax.tools.convert --pth=released.pth --out=/path/to/converted       # PyTorch → orbax
  python -m fdp_jax.tools.convert --to_pth --checkpoint=/path/to/converted --out=again.pth   # orbax → PyTorch

The mapping itself (state_dict keys ↔ Linen paths and layouts) is `fdp_jax.models.released_weights`; this
program adds the files: .pth through PyTorch (an optional dependency, imported only here) and orbax checkpoints.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Mapping

from absl import app, flags, logging
import numpy as np
import orbax.checkpoint as ocp

from fdp_jax.models.released_weights import load_released, to_released_state_dict


def save_variables(directory: str, variables: Mapping[str, Any]) -> None:
  """Writes variables as an orbax checkpoint at `directory` (replacing one that is there)."""
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.abspath(directory), dict(variables), force=True)
  checkpointer.wait_until_finished()


def restore_variables(directory: str) -> dict[str, Any]:
  """The variables `save_variables` wrote, as numpy arrays."""
  return ocp.StandardCheckpointer().restore(os.path.abspath(directory))


def _import_torch():
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    sys.exit('Reading or writing a .pth file needs PyTorch, which fdp_jax does not depend on: '
             'pip install torch')
  return torch


def read_pth(path: str) -> dict[str, np.ndarray]:
  """A .pth file's state_dict as numpy arrays: a bare state_dict or {'state_dict': …}, with the
  'module.' prefix of nn.DataParallel removed. Exits with a message when PyTorch is missing."""
  torch = _import_torch()
  checkpoint = torch.load(path, map_location='cpu', weights_only=True)
  state_dict = checkpoint.get('state_dict', checkpoint)
  if state_dict and all(k.startswith('module.') for k in state_dict):
    state_dict = {k[len('module.'):]: v for k, v in state_dict.items()}
  return {k: v.detach().cpu().numpy() for k, v in state_dict.items()}


def write_pth(path: str, state_dict: Mapping[str, np.ndarray]) -> None:
  torch = _import_torch()
  torch.save({k: torch.from_numpy(np.asarray(v)) for k, v in state_dict.items()}, path)


def _define_flags() -> None:
  # Defined only when run as a program, so that importing the converter defines no flags.
  flags.DEFINE_string('pth', None, 'The released PyTorch weights (.pth) to convert.')
  flags.DEFINE_string('out', None, 'Output: an orbax checkpoint directory, or a .pth file with --to_pth.')
  flags.DEFINE_bool('to_pth', False, 'Convert an orbax checkpoint (--checkpoint) back to a .pth file.')
  flags.DEFINE_string('checkpoint', None, 'With --to_pth: the orbax checkpoint directory to convert.')
  flags.DEFINE_string('model', 'fdp', "Which released model: 'fdp' or 'mol'.")


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  f = flags.FLAGS
  if not f['verbosity'].present:
    logging.set_verbosity(logging.WARNING)        # orbax logs every step of a save at INFO
  if f.to_pth:
    if not (f.checkpoint and f.out):
      raise app.UsageError('--to_pth needs --checkpoint (an orbax directory) and --out (a .pth file)')
    write_pth(f.out, to_released_state_dict(restore_variables(f.checkpoint)))
  else:
    if not (f.pth and f.out):
      raise app.UsageError('needs --pth (the released .pth) and --out (a directory for the orbax checkpoint)')
    _, variables = load_released(f.model, read_pth(f.pth))
    save_variables(f.out, variables)
  print(f'Wrote {os.path.abspath(f.out)}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
