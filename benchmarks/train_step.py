"""FDP and MOL training-step throughput and peak memory.

  python benchmarks/train_step.py                        # small, paper_large and released, batch 8, 8×64×64
  python benchmarks/train_step.py --models=released --batch=8 --steps=5
  python benchmarks/train_step.py --models=mol           # MOL as released, batch 2 (--mol_batch), 8×128×128
  python benchmarks/train_step.py --models=small --xla_conv_widths=0,32   # conv routings, interleaved

Models: `small` (paper design, CPU size: the synthetic default), `paper_large` (paper design at the
released widths/depths, GFA blocks included) and `released` (FDP exactly as released: LFA-only encoder,
4096-d frame features, CLS_Net, SegNet; the released loss weights), `mol` (MOL as released with its loss:
CE + flow MSE + landmark L1, on random flow/landmark targets). Each runs in its own process so its
peak resident memory (CPU) or peak device memory (GPU/TPU, from `memory_stats`) is its own. Times exclude
compilation: one warm-up step, then `--steps` timed steps of the trainer's own jitted step for one fold
(`fdp_jax.cv.parallel.make_fold_steps`: forward, backward, optimiser update). The machine's matrix-product
rate is printed before and after, so that runs on different days (or a busy machine) can be told apart, and
so is XLA's count of a step's floating-point operations (`gflop_per_step`), which with that rate bounds the
step time from below.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fdp_jax import host_memory  # noqa: E402

if __name__ == '__main__':
  host_memory.reexec_with_huge_pages()   # what launch.py does, so the numbers are what a run gets


def build_step(name: str, batch: int, frames: int, image: int, pooling: str, compute_dtype: str = 'auto'):
  """The compiled train step of model `name` on a random batch: (step, state, batch, step keys, parameter
  count, compile seconds). The step is the trainer's own, for a group of one fold (`make_fold_steps`): its
  arguments carry a slot axis of 1, and it is called `step(state, batch, keys, np.int32(i))`.
  `compute_dtype`: `train.compute_dtype` ('auto': bfloat16 on TPU/GPU, float32 on CPU)."""
  import jax
  import numpy as np

  from configs import fdp_sizes, synthetic
  from fdp_jax.cv import parallel
  from fdp_jax.families import build_model

  if name == 'released':
    from configs import released_recipe
    config = released_recipe.released_config('synthetic_me', 'default', 5)
  elif name == 'mol':
    from configs import mol_recipe
    config = mol_recipe.mol_config('synthetic_me', 'mol', 5)
  else:
    config = synthetic.get_config()
    config.model = fdp_sizes.fdp_model({'small': 'small', 'paper_large': 'released'}[name])
    config.model.temporal_pooling = pooling
  config.data.image_size = image
  config.train.compute_dtype = compute_dtype
  model = build_model(config.model, config.data.num_classes, image)
  rng = np.random.default_rng(0)
  batch_np = {
      'frames': rng.uniform(-1, 1, (batch, frames, image, image, 1)).astype(np.float32),
      'frame_mask': np.ones((batch, frames), bool),
      'dynamic_image': rng.uniform(0, 1, (batch, image, image)).astype(np.float32),
      'label': rng.integers(0, 5, batch).astype(np.int32),
      'mask': np.ones((batch,), bool),
      'index': np.arange(batch, dtype=np.int32),
      'class_weight': np.ones((batch,), np.float32),   # the trainer's batches always carry it
  }
  if name == 'mol':   # flow and landmark targets of the 7 frame pairs
    batch_np['flow'] = rng.normal(0, 1, (batch, frames - 1, image, image, 2)).astype(np.float32)
    batch_np['landmarks'] = rng.uniform(20, 108, (batch, frames - 1, 68, 2)).astype(np.float32)
  fsteps = parallel.make_fold_steps(config, model, batch_np, 1)
  batch_dev = jax.device_put({k: v[None] for k, v in batch_np.items()}, fsteps.batch_sharding)
  state = fsteps.init(parallel.slot_keys([jax.random.key(0)], fsteps.state_sharding))
  keys = parallel.slot_keys([jax.random.key(1)], fsteps.state_sharding)
  params = sum(x.size for x in jax.tree.leaves(state.params))
  t0 = time.perf_counter()
  step_fn = fsteps.train.lower(state, batch_dev, keys, np.int32(0)).compile()
  return step_fn, state, batch_dev, keys, params, time.perf_counter() - t0


def seconds_per_step(step_fn, state, batch, keys, num_steps: int) -> float:
  """Mean seconds of `num_steps` steps of a compiled `build_step` step, after one warm-up step."""
  import jax
  import numpy as np
  state, m = step_fn(state, batch, keys, np.int32(0))
  jax.block_until_ready(m)
  start = time.perf_counter()
  for i in range(num_steps):
    state, m = step_fn(state, batch, keys, np.int32(i + 1))
  jax.block_until_ready(m)
  return (time.perf_counter() - start) / num_steps


def measure(name: str, batch: int, frames: int, image: int, num_steps: int, pooling: str) -> dict:
  import jax

  step_fn, state, batch_dev, keys, params, compile_s = build_step(name, batch, frames, image, pooling)
  gflop = step_gflop(step_fn)
  dt = seconds_per_step(step_fn, state, batch_dev, keys, num_steps)
  dev = jax.devices()[0]
  stats = dev.memory_stats() if hasattr(dev, 'memory_stats') else None
  peak = (stats or {}).get('peak_bytes_in_use')
  return {
      'model': name, 'temporal_pooling': pooling, 'device': str(dev.device_kind), 'batch': batch,
      'frames': frames, 'image': image, 'params': int(params), 'compile_s': round(compile_s, 1),
      'step_ms': round(dt * 1000, 1), 'clips_per_s': round(batch / dt, 2),
      'gflop_per_step': round(gflop, 1) if gflop else None,
      'gflops_achieved': round(gflop / dt) if gflop else None,
      'peak_device_mib': round(peak / 2**20) if peak else None,
      'peak_rss_mib': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
  }


def compare_conv_routings(name: str, batch: int, frames: int, image: int, pooling: str, widths: list[int],
                          blocks: int, steps: int) -> dict:
  """The train step compiled once per `layers._XLA_CONV_MAX_WIDTH` in `widths` (the widest stride-1 conv
  routed to XLA's convolution; 0: only the narrow-output ones), all in this one process, then timed in
  alternating blocks of `steps` steps, `blocks` times: on a shared machine whose speed drifts by tens of
  percent between processes, only an interleaved comparison like this one tells routings apart. Returns
  each width's median and best block, in ms per step."""
  import jax
  import numpy as np

  from fdp_jax.models import layers

  runs, default = {}, layers._XLA_CONV_MAX_WIDTH
  try:
    for width in widths:
      layers._XLA_CONV_MAX_WIDTH = width   # read when the step is traced, i.e. in build_step
      step_fn, state, batch_dev, keys, _, _ = build_step(name, batch, frames, image, pooling)
      state, m = step_fn(state, batch_dev, keys, np.int32(0))   # warm-up
      jax.block_until_ready(m)
      runs[width] = [step_fn, state, batch_dev, keys]
  finally:
    layers._XLA_CONV_MAX_WIDTH = default
  times = {width: [] for width in widths}
  for _ in range(blocks):
    for width, run in runs.items():
      step_fn, state, batch_dev, keys = run
      t0 = time.perf_counter()
      for i in range(steps):
        state, m = step_fn(state, batch_dev, keys, np.int32(i))
      jax.block_until_ready(m)
      run[1] = state
      times[width].append((time.perf_counter() - t0) / steps * 1000)
  return {'model': name, 'blocks_of_steps': steps,
          'ms_per_step': {str(w): {'median': round(float(np.median(t)), 1), 'best': round(min(t), 1)}
                          for w, t in times.items()}}


def step_gflop(compiled) -> float | None:
  """Floating-point operations of one compiled step, by XLA's own count (`cost_analysis()['flops']`:
  a multiply-add is 2), in GFLOP; None where the backend does not count. Divided by the step time it
  says how close a step runs to the machine's matrix-product rate, which bounds it from below."""
  costs = compiled.cost_analysis()
  if isinstance(costs, (list, tuple)):   # older jax: one dict per computation
    costs = costs[0] if costs else None
  flops = (costs or {}).get('flops')
  return flops / 1e9 if flops and flops > 0 else None


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
  """The machine's float32 matrix-product rate through XLA (n×n @ n×n, best of `repeats`), GFLOP/s.

  Printed beside the step times so that numbers taken on different days can be compared: on a shared
  machine whose clock varies, step times follow it."""
  import jax
  import jax.numpy as jnp

  a = jnp.ones((n, n), jnp.float32)
  product = jax.jit(lambda a: a @ a)
  jax.block_until_ready(product(a))
  best = float('inf')
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(product(a))
    best = min(best, time.perf_counter() - t0)
  return 2 * n ** 3 / best / 1e9


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--models', default='small,paper_large,released')
  p.add_argument('--batch', type=int, default=8)
  p.add_argument('--mol_batch', type=int, default=2, help='batch of the mol model (128×128 frames)')
  p.add_argument('--frames', type=int, default=8)
  p.add_argument('--image', type=int, default=64)
  p.add_argument('--steps', type=int, default=5)
  p.add_argument('--pooling', default='rank')
  p.add_argument('--xla_conv_widths', default='',
                 help='e.g. 0,32: compare conv routings in one process (see compare_conv_routings)')
  p.add_argument('--blocks', type=int, default=8, help='alternating blocks of --steps for --xla_conv_widths')
  p.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
  a = p.parse_args()
  if a.child:
    if a.xla_conv_widths:
      print(json.dumps(compare_conv_routings(a.models, a.batch, a.frames, a.image, a.pooling,
                                             [int(w) for w in a.xla_conv_widths.split(',')], a.blocks,
                                             a.steps)))
    else:
      print(json.dumps(measure(a.models, a.batch, a.frames, a.image, a.steps, a.pooling)))
    return
  rate_before = matmul_gflops()
  print(json.dumps({'matmul_gflops': round(rate_before)}), flush=True)
  rows = []
  for model in a.models.split(','):
    batch, image = (a.mol_batch, 128) if model == 'mol' else (a.batch, a.image)   # MOL is 128-px only
    cmd = [sys.executable, __file__, '--child', f'--models={model}', f'--batch={batch}',
           f'--frames={a.frames}', f'--image={image}', f'--steps={a.steps}', f'--pooling={a.pooling}',
           f'--xla_conv_widths={a.xla_conv_widths}', f'--blocks={a.blocks}']
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    rows.append(json.loads(out))
    print(json.dumps(rows[-1]), flush=True)
  if a.xla_conv_widths:   # routing comparison: the JSON rows are the result
    return
  print('\n| model | params | device | batch×T×H×W | step (ms) | clips/s | GFLOP/step | peak memory (MiB) |')
  print('|---|---:|---|---|---:|---:|---:|---:|')
  for r in rows:
    mem = r['peak_device_mib'] or r['peak_rss_mib']
    kind = 'device' if r['peak_device_mib'] else 'RSS'
    print(f"| {r['model']} | {r['params'] / 1e6:.2f} M | {r['device']} | {r['batch']}×{r['frames']}×{r['image']}²"
          f" | {r['step_ms']} | {r['clips_per_s']} | {r['gflop_per_step']} | {mem} ({kind}) |")
  print(f'\nThis machine\'s float32 matrix product (2048², XLA): {rate_before:.0f} GFLOP/s before the models, '
        f'{matmul_gflops():.0f} after.')


if __name__ == '__main__':
  main()
