"""One command for a GPU (or TPU) the day one is at hand: what the training steps and a whole LOSO cost there.

  python benchmarks/accelerator.py                 # ≈ 8 minutes; writes accelerator.json and accelerator.md
  python benchmarks/accelerator.py --quick         # seconds: a smoke test of the script itself (CPU too)

On whatever device JAX sees first:
1. **Training steps** — the trainer's own step for one fold (`benchmarks/train_step.py`'s `build_step`) for
   FDP as the paper describes it at the released widths and FDP as released (batch 36, 8 × 64²) and MOL
   (batch 2 and 16, 8 × 128²), in float32 and bfloat16: compile seconds, ms per step, clips/s, XLA's FLOPs
   per step and the model FLOP utilisation (FLOPs / step time / the device's peak for that dtype, table
   below), peak device memory.
2. **Input** — clips/s of the host pipeline (`input_pipeline.train_iterator`, the reader threads of
   `data.num_threads`) against the on-device sampler (`device_input.train_batch`, jitted), on the synthetic
   corpus, batch 36: the rate a training step can be fed at.
3. **A CASME II-sized LOSO** — `configs/synthetic_released.py:casme2_sized` (26 subjects × 10 clips, the
   released recipe: batch 36 × 500 steps), in this process, the folds as many at once as fit: wall time
   split into the corpus build, compilation (XLA's own durations), training and evaluation.
Each part is skipped, and said to be, once `--budget_s` has run out.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Peak dense FLOP/s per device (bfloat16, float32 without tensor cores), by a substring of its device_kind.
PEAKS = {
    'H200': (989e12, 67e12), 'H100': (989e12, 67e12), 'A100': (312e12, 19.5e12), 'L4': (121e12, 30.3e12),
    'A10': (125e12, 31.2e12), 'V100': (125e12, 15.7e12), 'T4': (65e12, 8.1e12),
    'TPU v6 lite': (918e12, None), 'TPU v5 lite': (197e12, None), 'TPU v5': (459e12, None),
    'TPU v4': (275e12, None), 'TPU v3': (61.5e12, None), 'TPU v2': (22.5e12, None),
}
STEP_MODELS = (('paper_large', 36), ('released', 36), ('mol', 2), ('mol', 16))


def peak_flops(device_kind: str, dtype: str) -> float | None:
  for name, (bf16, f32) in sorted(PEAKS.items(), key=lambda kv: -len(kv[0])):
    if name in device_kind:
      return bf16 if dtype == 'bfloat16' else f32
  return None


def step_row(name: str, batch: int, dtype: str, steps: int) -> dict:
  import jax
  from train_step import build_step, seconds_per_step, step_gflop
  image = 128 if name == 'mol' else 64
  step_fn, state, batch_dev, keys, params, compile_s = build_step(name, batch, 8, image, 'rank', dtype)
  seconds = seconds_per_step(step_fn, state, batch_dev, keys, steps)
  device = jax.devices()[0]
  gflop = step_gflop(step_fn)
  peak = peak_flops(device.device_kind, dtype)
  stats = device.memory_stats() or {}
  return {'model': name, 'batch': batch, 'dtype': dtype, 'params_m': round(params / 1e6, 2),
          'compile_s': round(compile_s, 1), 'step_ms': round(seconds * 1e3, 2),
          'clips_per_s': round(batch / seconds, 1), 'gflop': round(gflop, 1) if gflop else None,
          'mfu': round(gflop * 1e9 / seconds / peak, 3) if gflop and peak else None,
          'peak_mib': round(stats['peak_bytes_in_use'] / 2**20) if 'peak_bytes_in_use' in stats else None}


def input_rows(data_dir: str, batches: int) -> list[dict]:
  """Clips/s of the host pipeline and of the on-device sampler, on synthetic_me/default, batch 36."""
  import jax
  import numpy as np
  from configs import synthetic
  from fdp_jax import data_sources, device_input, input_pipeline
  config = synthetic.get_config()
  config.data.data_dir = data_dir
  source, index, _ = data_sources.load_corpus(config.data)
  train = np.arange(len(index))
  batch = 36
  stream = input_pipeline.train_iterator(source, train, config.data, batch, seed=0,
                                         num_threads=config.data.num_threads)
  next(stream)
  start = time.perf_counter()
  for _ in range(batches):
    jax.block_until_ready(jax.device_put(next(stream)))
  host = batches * batch / (time.perf_counter() - start)
  clips = jax.device_put(device_input.load_clips(source, config.data))
  table = device_input.fold_table(train, np.ones(5, np.float32), None, len(index))
  sample = jax.jit(lambda step: device_input.train_batch(clips, table, jax.random.key(0), jax.random.key(1),
                                                         step, config.data, batch))
  jax.block_until_ready(sample(0))
  start = time.perf_counter()
  for step in range(batches):
    out = sample(step + 1)
  jax.block_until_ready(out)
  on_device = batches * batch / (time.perf_counter() - start)
  return [{'input': 'host pipeline', 'clips_per_s': round(host, 1)},
          {'input': 'on the device', 'clips_per_s': round(on_device, 1)}]


def loso_row(data_dir: str, workdir: str, num_steps: int, quick: bool = False) -> dict:
  """The CASME II-sized synthetic LOSO in this process: build, compile, train and evaluation seconds (quick:
  two folds of the small default config instead)."""
  import jax
  from configs import synthetic, synthetic_released
  from fdp_jax import data_sources, experiment, rundir
  compile_s = [0.0]

  def on_duration(event: str, seconds: float, **kwargs) -> None:
    if event.endswith('backend_compile_duration'):
      compile_s[0] += seconds
  jax.monitoring.register_event_duration_secs_listener(on_duration)
  config = synthetic_released.get_config('casme2_sized')
  if quick:
    config = synthetic.get_config()
    config.cv.subjects = 's00,s01'
  config.data.data_dir = data_dir
  config.train.num_steps = num_steps
  config.progress_bar = False
  start = time.perf_counter()
  data_sources.load_corpus(config.data)            # builds it on first use
  build_s = time.perf_counter() - start
  start = time.perf_counter()
  results = experiment.main(config, workdir)
  wall = time.perf_counter() - start
  with open(rundir.path(workdir, rundir.TIMING)) as f:
    timing = json.load(f)
  return {'folds': results['aggregate']['num_folds'], 'parallel_folds': timing['parallel_folds'],
          'steps': num_steps, 'build_s': round(build_s, 1), 'wall_s': round(wall, 1),
          'compile_s': round(compile_s[0], 1),
          'train_s': round(sum(g.get('train_s', 0.0) for g in timing['groups']), 1),
          'eval_s': round(sum(g.get('eval_s', 0.0) for g in timing['groups']), 1),
          'uf1': round(results['aggregate']['uf1'], 4)}


def markdown(report: dict) -> str:
  lines = [f"# Accelerator benchmark: {report['device']}", '', '| model | batch | dtype | compile s | ms/step | '
           'clips/s | GFLOP/step | MFU | peak MiB |', '|---|---:|---|---:|---:|---:|---:|---:|---:|']
  for r in report['steps']:
    lines.append(f"| {r['model']} | {r['batch']} | {r['dtype']} | {r.get('compile_s')} | {r.get('step_ms')} | "
                 f"{r.get('clips_per_s')} | {r.get('gflop')} | {r.get('mfu')} | {r.get('peak_mib')} |"
                 if 'skipped' not in r else f"| {r['model']} | {r['batch']} | {r['dtype']} | {r['skipped']} |||||")
  lines += ['', '| input (batch 36) | clips/s |', '|---|---:|']
  lines += [f"| {r['input']} | {r.get('clips_per_s', r.get('skipped'))} |" for r in report['input']]
  loso = report['loso']
  lines += ['', '| CASME II-sized LOSO | value |', '|---|---:|'] + [f'| {k} | {v} |' for k, v in loso.items()]
  return '\n'.join(lines) + '\n'


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--steps', type=int, default=10, help='timed steps per model')
  p.add_argument('--loso_steps', type=int, default=500)
  p.add_argument('--budget_s', type=float, default=480)
  p.add_argument('--data_dir', default='', help="TFDS folder ('' = $TFDS_DATA_DIR or ~/tensorflow_datasets)")
  p.add_argument('--out', default='accelerator')
  p.add_argument('--quick', action='store_true', help='tiny everything: checks the script, measures nothing')
  a = p.parse_args()
  import tempfile

  import jax
  start = time.perf_counter()
  over = lambda: time.perf_counter() - start > a.budget_s   # noqa: E731
  models = STEP_MODELS[1:2] if a.quick else STEP_MODELS
  dtypes = ('bfloat16',) if a.quick else ('float32', 'bfloat16')
  report = {'device': f'{jax.devices()[0].platform}: {jax.devices()[0].device_kind} × {jax.device_count()}',
            'steps': [], 'input': [], 'loso': {}}
  for name, batch in models:
    for dtype in dtypes:
      row = ({'model': name, 'batch': batch, 'dtype': dtype, 'skipped': 'out of time'} if over() else
             step_row(name, 2 if a.quick else batch, dtype, 1 if a.quick else a.steps))
      report['steps'].append(row)
      print(json.dumps(row), flush=True)
  report['input'] = ([{'input': 'both', 'skipped': 'out of time'}] if over() else
                     input_rows(a.data_dir, 2 if a.quick else 20))
  print(json.dumps(report['input']), flush=True)
  with tempfile.TemporaryDirectory() as workdir:
    report['loso'] = ({'skipped': 'out of time'} if over() else
                      loso_row(a.data_dir, os.path.join(workdir, 'run'), 2 if a.quick else a.loso_steps, a.quick))
  report['total_s'] = round(time.perf_counter() - start, 1)
  print(json.dumps(report['loso']), flush=True)
  with open(a.out + '.json', 'w') as f:
    json.dump(report, f, indent=1)
  with open(a.out + '.md', 'w') as f:
    f.write(markdown(report))
  print(markdown(report))


if __name__ == '__main__':
  main()
