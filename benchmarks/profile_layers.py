"""Per-layer forward+backward time of the released FDP's (or MOL's) training step, on this machine.

  python benchmarks/profile_layers.py               # FDP: batch 8 clips × 8 frames of 64×64, float32
  python benchmarks/profile_layers.py --batch=4 --repeats=3
  python benchmarks/profile_layers.py --model=mol   # MOL: batch 2 clips × 8 frames of 128×128

Each piece (stem, every encoder stage, the frame-feature head, CLS_Net, SegNet) is jitted alone as
value-and-grad with respect to its parameters *and* its input, in training mode, at the shape it sees inside
the whole model, so the table shows where a training step spends its time (the pieces' sum is close to the
full step of `benchmarks/train_step.py --models=released`). XLA:CPU has shapes where its convolutions are
pathologically slow (tiny maps with wide channels), which is what this table is for.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fdp_jax import host_memory  # noqa: E402

if __name__ == '__main__':
  host_memory.reexec_with_huge_pages()   # what launch.py does, so the numbers are what a run gets


def piece(apply):
  """A module whose call is `apply(x, train)`, with the submodules `apply` builds: a piece that is part of a
  module, or a module called with other arguments."""
  import flax.linen as nn

  class Piece(nn.Module):
    @nn.compact
    def __call__(self, x, *, train):
      return apply(x, train)

  return Piece()


def pieces(batch: int, frames: int):
  """(name, module, input shape) for every piece of the released FDP."""
  import flax.linen as nn

  from fdp_jax.models import fdp_released, layers, lgfat

  n = batch * frames

  class Stem(nn.Module):
    @nn.compact
    def __call__(self, x, *, train):
      for i, (width, stride) in enumerate([(64, 2), (32, 1), (64, 1), (64, 2)]):
        x = layers.ConvBNReLU(width, stride, name=f'stem_{i}')(x, train=train)
      return x

  class Stage(nn.Module):
    width: int
    depth: int
    stride: int

    @nn.compact
    def __call__(self, x, *, train):
      for j in range(self.depth):
        x = lgfat.LFABlock(self.width, self.stride if j == 0 else 1, 0.1, 3, 0.0, name=f'block_{j}')(
            x, train=train)
      return x

  class FeatureHead(nn.Module):
    @nn.compact
    def __call__(self, x, *, train):
      x = layers.batch_norm(train, 'norm')(x)
      return layers.dense(4096, name='proj_head_0')(x.mean(axis=(1, 2)))


  return [
      ('stem (4 conv3x3, 64×64 → 16×16)', Stem(), (n, 64, 64, 1)),
      ('stage 1: 3 LFA, 96 ch, 16×16', Stage(96, 3, 1), (n, 16, 16, 64)),
      ('stage 2: 4 LFA, 192 ch, 8×8', Stage(192, 4, 2), (n, 16, 16, 96)),
      ('stage 3: 10 LFA, 384 ch, 4×4', Stage(384, 10, 2), (n, 8, 8, 192)),
      ('stage 4: 3 LFA, 768 ch, 2×2', Stage(768, 3, 2), (n, 4, 4, 384)),
      ('BN + pool + Linear 768→4096', FeatureHead(), (n, 2, 2, 768)),
      ('CLS_Net (Conv3d, pool, MLP)', piece(lambda x, train: fdp_released.CLSNet()(x)[0]), (batch, 64, 64, 8, 1)),
      ('SegNet (dyimg_net)', fdp_released.SegNet(), (batch, 64, 64, 8)),
  ]


def mol_pieces(batch: int, frames: int, width: float = 1.0, size: int = 128):
  """(name, module, input shape) for every piece of MOL (its 7 pairs batched) at `width` and frame `size`
  (1, 128: as released)."""
  import jax.numpy as jnp

  from fdp_jax.models import flownet, mol

  pairs = batch * (frames - 1)
  m, c = size // 8, mol.scaled(128, width)

  def flow(x, train):
    f5c = jnp.zeros((pairs, m, m, c), x.dtype)
    return flownet.FlowNet(width)(x, f5c, f5c, train=train)

  return [
      ('conv stack (every frame)', piece(lambda x, train: mol.ConvStack(width)(x)), (batch * frames, size, size, 1)),
      ('FCC (one of the two, every pair)', mol.FCC(c // 2), (pairs, m, m, c)),
      ('CCC (one of the two, every pair)',
       piece(lambda x, train: mol.CCC()(x.reshape(x.shape[0], -1, x.shape[-1]))[1]), (pairs, m, m, c)),
      ('MER 3D-CNN', mol.MER3DCNN(width=width), (batch, m, m, 2 * (frames - 1), c)),
      ('landmark head', piece(lambda x, train: mol.LandmarkHead(width)(x)), (pairs, m, m, c)),
      ('FlowNetC (every pair)', piece(flow), (batch, frames, size, size, 1)),
  ]


def time_piece(module, shape, repeats: int) -> float:
  import jax
  import jax.numpy as jnp

  x = jax.random.normal(jax.random.key(0), shape)
  variables = module.init({'params': jax.random.key(1), 'dropout': jax.random.key(2)}, x, train=False)

  def loss(params, x):
    out, _ = module.apply({**variables, 'params': params}, x, train=True, rngs={'dropout': jax.random.key(3)},
                          mutable=['batch_stats'])
    return jnp.mean(jnp.square(out))

  grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
  jax.block_until_ready(grad(variables['params'], x))
  best = float('inf')
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(grad(variables['params'], x))
    best = min(best, time.perf_counter() - t0)
  return best


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--model', default='fdp', choices=('fdp', 'mol'))
  p.add_argument('--batch', type=int, default=None, help='default: 8 (fdp), 2 (mol)')
  p.add_argument('--frames', type=int, default=8)
  p.add_argument('--repeats', type=int, default=5)
  p.add_argument('--mol_width', type=float, default=1.0, help='MOL: model.width (1: released)')
  p.add_argument('--mol_size', type=int, default=128, help='MOL: frame side (128: released)')
  a = p.parse_args()
  import jax
  batch = a.batch or (8 if a.model == 'fdp' else 2)
  table = pieces(batch, a.frames) if a.model == 'fdp' else mol_pieces(batch, a.frames, a.mol_width, a.mol_size)
  rows = [(name, time_piece(module, shape, a.repeats)) for name, module, shape in table]
  total = sum(t for _, t in rows)
  size = 64 if a.model == 'fdp' else a.mol_size
  width = '' if a.model == 'fdp' or a.mol_width == 1 else f' at width {a.mol_width:g}'
  print(f'\nreleased {a.model.upper()}{width}, batch {batch}×{a.frames}×{size}², forward+backward, best of {a.repeats}, '
        f'{jax.devices()[0].device_kind}')
  print('| piece | ms | share |\n|---|---:|---:|')
  for name, t in rows:
    print(f'| {name} | {t * 1000:.0f} | {t / total:.0%} |')
  print(f'| **sum** | **{total * 1000:.0f}** | |')


if __name__ == '__main__':
  main()
