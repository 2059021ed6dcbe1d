"""Does each of MOL's heads learn, and with which settings? Trains MOL one head at a time on one batch of
synthetic clips (exact flow and landmarks) and prints each head's error every 10 steps beside its trivial
reference — the diagnosis behind MOL's untrained flow and landmark heads (benchmarks/README.md, "MOL on the
synthetic corpus: why the heads did not learn").

  python benchmarks/mol_heads.py                       # the released network (width 1) at 64 px
  python benchmarks/mol_heads.py --width=0.25 --steps=60

Variants: the landmark head's outputs in pixels (as released) or centred in half-sides
(`model.landmark_units`); the flow loss as released (10 × the pixel MSE) or the MSE in units of the batch's
flow standard deviation (10 / std² × the pixel MSE, `loss.flow`); the release's per-pair BatchNorm
statistics or one set over the batch (`model.pair_batch_norm`). Errors are in pixels (landmark NME is
scale-free).
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from configs import mol_synthetic  # noqa: E402
from fdp_jax import families, input_pipeline, metrics  # noqa: E402
from fdp_jax.corpora import face_drawing, synthetic_faces  # noqa: E402
from fdp_jax.cv import parallel  # noqa: E402

flags.DEFINE_integer('size', 64, 'Frame side (64: the same network at a quarter of the cost of 128).')
flags.DEFINE_float('width', 1.0, 'model.width (1: the released channel counts).')
flags.DEFINE_integer('steps', 40, 'Training steps per variant.')
flags.DEFINE_integer('batch', 4, 'Clips in the batch (one clip per subject).')
flags.DEFINE_float('learning_rate', 3e-4, 'AdamW learning rate (configs/mol_synthetic.py).')
FLAGS = flags.FLAGS


def one_batch(size: int, clips: int) -> dict:
  """`clips` synthetic clips of as many subjects, 8 frames, with their exact flow and landmark targets."""
  config = mol_synthetic.get_config()
  config.data.image_size = size
  transform = input_pipeline.ClipTransform(config.data, train=False)
  examples = []
  for i in range(clips):
    record = synthetic_faces.make_clip(face_drawing.make_subject(0, i, size), 0, i % 5, 0, 20, 24,
                                       with_flow=True)
    examples.append(transform(dict(record, label=i % 5, _index=i)))
  return {k: np.stack([e[k] for e in examples]) for k in examples[0]}


def train_head(batch: dict, weights: tuple[float, float, float], model_overrides: dict) -> list:
  """[(landmark NME, flow EPE px)] every 10 steps of training on `batch` with loss weights (mer, flow,
  landmarks)."""
  config = mol_synthetic.get_config()
  config.loss.mer, config.loss.flow, config.loss.landmarks = weights
  config.train.learning_rate = FLAGS.learning_rate
  config.model.dropout = 0.0
  config.model.width = FLAGS.width
  config.model.update(model_overrides)
  model = families.build_model(config.model, 5, FLAGS.size)
  fsteps = parallel.make_fold_steps(config, model, batch, 1)
  keys = lambda k: parallel.slot_keys([k], fsteps.state_sharding)  # noqa: E731
  stacked = {k: v[None] for k, v in batch.items()}
  state = fsteps.init(keys(jax.random.key(0)))
  out = []
  for step in range(FLAGS.steps):
    state, _ = fsteps.train(state, stacked, keys(jax.random.key(0)), np.int32(step))
    if (step + 1) % 10 == 0:
      ev = fsteps.eval(state, stacked)
      out.append((float(np.mean(ev['landmark_nme'])), float(np.mean(ev['flow_epe']))))
  return out


def main(argv):
  del argv
  batch = one_batch(FLAGS.size, FLAGS.batch)
  lm, flow = batch['landmarks'], batch['flow']
  ipd = np.asarray(metrics.interpupil_distance(lm, jnp))
  clip_mean = float((np.linalg.norm(lm - lm.mean(1, keepdims=True), axis=-1).mean(-1) / ipd).mean())
  zero = float(np.linalg.norm(flow, axis=-1).mean())
  spread = float(flow.std())
  print(f'{FLAGS.size}-px MOL, width {FLAGS.width:g}, batch {FLAGS.batch}, lr {FLAGS.learning_rate:g}; references: '
        f"landmark NME of each clip's mean landmarks {clip_mean:.4f}, flow EPE of zero flow {zero:.4f} px "
        f'(flow std {spread:.4f} px)\n')
  print('| head trained alone | setting | ' + ' | '.join(f'step {s}' for s in range(10, FLAGS.steps + 1, 10))
        + ' | s |')
  print('|---|---|' + '---:|' * (FLAGS.steps // 10) + '---:|')
  variants = (('landmarks (NME)', 'pixels (released)', (0, 0, 1), {}),
              ('landmarks (NME)', 'centred', (0, 0, 1), {'landmark_units': 'centred'}),
              ('flow (EPE px)', '10 × pixel MSE (released)', (0, 10, 0), {}),
              ('flow (EPE px)', f'10 × MSE in units of {spread:.3f} px', (0, 10 / spread ** 2, 0), {}),
              ('flow (EPE px)', f'10 × MSE in units of {spread:.3f} px, one BatchNorm set', (0, 10 / spread ** 2, 0),
               {'pair_batch_norm': False}))
  for head, setting, weights, overrides in variants:
    start = time.perf_counter()
    history = train_head(batch, weights, overrides)
    values = [nme if head.startswith('landmarks') else epe for nme, epe in history]
    print(f'| {head} | {setting} | ' + ' | '.join(f'{v:.4f}' for v in values)
          + f' | {time.perf_counter() - start:.0f} |', flush=True)


if __name__ == '__main__':
  app.run(main)
