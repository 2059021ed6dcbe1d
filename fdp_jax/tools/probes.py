"""Linear probes: what one image per clip tells a linear classifier, scored by the same LOSO as the models.

  python -m fdp_jax.tools.probes --config=configs/synthetic.py --feature=centre_frame --workdir=runs/probe_centre
  python -m fdp_jax.tools.probes --config=configs/synthetic.py --feature=apex_minus_onset --workdir=runs/probe_motion

The single-frame FDP baseline (`configs/synthetic.py:static`) can collapse to one class per fold, which
shows that it did not learn, not that a frame carries no class information. A linear probe cannot
collapse that way: a multinomial logistic regression on the pixels of

  centre_frame       the centre frame of the onset–offset window (appearance only), or
  apex_minus_onset   the apex frame minus the onset frame (the motion, as a reference a model should beat),

at the config's image size, standardised with the training folds' statistics, class-weighted as the config
(`loss.class_balance`, training labels only), with an L2 penalty `--l2` on the weights (its default was
chosen on `synthetic_me/dev`: benchmarks/README.md, "Baselines"). All folds are fitted at once: each
fold is the same full-batch L-BFGS over every clip, its held-out subject weighted 0. The run directory gets
results.json and report.md like a training run's.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags, logging
from ml_collections import config_flags

from fdp_jax import data_sources, input_pipeline, losses, run_results, rundir, scoring
from fdp_jax.cv.folds import loso_folds, select_folds

FEATURES = ('centre_frame', 'apex_minus_onset')
DEFAULT_L2 = 1e-3
ITERATIONS = 300


def clip_feature(record: dict, feature: str, size: int) -> np.ndarray:
  """(size·size,) float32 pixels in [−1, 1] (a difference: [−2, 2]) of one clip."""
  onset, apex, offset = (int(record[k]) for k in ('onset', 'apex', 'offset'))
  if feature == 'centre_frame':
    frames = record['frames'][[(onset + offset) // 2]]
  elif feature == 'apex_minus_onset':
    frames = record['frames'][[apex, onset]]
  else:
    raise ValueError(f'unknown probe feature {feature!r}: use one of {FEATURES}')
  pixels = input_pipeline._resize(frames[..., 0], size).astype(np.float32) / 127.5 - 1.0
  return (pixels[0] - pixels[1] if feature == 'apex_minus_onset' else pixels[0]).reshape(-1)


def fit_predict(x: jax.Array, labels: jax.Array, weights: jax.Array, num_classes: int, l2: float) -> jax.Array:
  """Class probabilities (N, C) of every clip from a logistic regression fitted on the clips with weight > 0;
  `weights` (N,) are the training clips' class weights (0 for the clips held out)."""
  total = weights.sum()
  members = (weights > 0).astype(x.dtype)[:, None]
  mean = (x * members).sum(0) / members.sum()
  std = jnp.sqrt((((x - mean) ** 2) * members).sum(0) / members.sum()) + 1e-3
  z = (x - mean) / std

  def loss(params):
    logits = z @ params['w'] + params['b']
    nll = -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1)[:, 0]
    return (weights * nll).sum() / total + 0.5 * l2 * jnp.sum(params['w'] ** 2)

  params = {'w': jnp.zeros((x.shape[1], num_classes), x.dtype), 'b': jnp.zeros((num_classes,), x.dtype)}
  solver = optax.lbfgs()
  value_and_grad = optax.value_and_grad_from_state(loss)

  def step(_, carry):
    params, state = carry
    value, grad = value_and_grad(params, state=state)
    updates, state = solver.update(grad, state, params, value=value, grad=grad, value_fn=loss)
    return optax.apply_updates(params, updates), state

  params, _ = jax.lax.fori_loop(0, ITERATIONS, step, (params, solver.init(params)))
  return jax.nn.softmax(z @ params['w'] + params['b'])


def run_probe(config, feature: str, workdir: str, l2: float = DEFAULT_L2) -> dict:
  """LOSO of the probe over the config's corpus and `cv.subjects`; writes results.json and report.md."""
  source, index, info = data_sources.load_corpus(config.data)
  folds = select_folds(loso_folds(index.subjects), config.cv.subjects)
  size = int(config.data.image_size)
  x = np.stack([clip_feature(source[i], feature, size) for i in range(len(index))])
  labels = np.asarray(index.labels, np.int32)
  num_classes = len(index.class_names)
  weights = np.zeros((len(folds), len(index)), np.float32)
  for f, fold in enumerate(folds):
    train_labels = labels[fold.train_indices]
    class_weight = (losses.balanced_class_weights(train_labels, num_classes)
                    if config.loss.class_balance else np.ones(num_classes, np.float32))
    weights[f, fold.train_indices] = class_weight[train_labels]
  # The clips are arguments, not constants folded into the program; the folds are one vmapped fit.
  fit_folds = jax.jit(jax.vmap(lambda x, y, w: fit_predict(x, y, w, num_classes, l2), in_axes=(None, None, 0)))
  probabilities = np.asarray(fit_folds(x, labels, weights))
  fold_results = []
  for f, fold in enumerate(folds):
    test = np.asarray(fold.test_indices)
    p = probabilities[f, test]
    out = {'index': test, 'label': labels[test], 'prediction': p.argmax(-1), 'probabilities': p}
    fold_results.append(scoring.fold_result(fold, out, index, ITERATIONS))
  os.makedirs(workdir, exist_ok=True)
  rundir.write_config(workdir, config)
  results = run_results.extend(workdir, run_results.recognition(config, info, index, fold_results),
                               {'model': {'name': 'linear_probe', 'feature': feature, 'l2': l2,
                                          'iterations': ITERATIONS}})
  run_results.write_report(workdir, results)
  return results


def main(argv):
  del argv
  FLAGS = flags.FLAGS
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  try:
    results = run_probe(FLAGS.config, FLAGS.feature, FLAGS.workdir, FLAGS.l2)
  except data_sources.DatasetNotBuiltError as e:
    sys.exit(str(e))
  print(f'Linear probe on {FLAGS.feature} (L2 {FLAGS.l2}):')
  print(run_results.markdown_table(results))


if __name__ == '__main__':
  config_flags.DEFINE_config_file('config', 'configs/synthetic.py', 'Config file: its corpus, folds, image size, '
                                  'class balancing.', lock_config=True)
  flags.DEFINE_enum('feature', 'centre_frame', FEATURES, 'What each clip gives the probe.')
  flags.DEFINE_string('workdir', None, 'Run directory for results.json and report.md.', required=True)
  flags.DEFINE_float('l2', DEFAULT_L2, 'L2 penalty on the probe weights (mean loss + l2/2·|W|²).')
  app.run(main)
