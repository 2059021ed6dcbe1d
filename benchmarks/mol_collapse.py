"""Where does MOL's recognition signal get lost? Trains the small MOL's MER path alone (flow and landmark
weights 0, `configs/mol_synthetic.py:small_mer_only`) on the `mol` corpus's training subjects of one or more
folds, with the real input pipeline, and scores it in evaluation mode on its own training clips and on the
held-out subject: accuracy, UF1, and how many classes each predicts. A network that cannot fit its training
clips has an optimisation or wiring problem, not a generalisation one.

  python benchmarks/mol_collapse.py --variants=released,fix --folds=s00       # on mol_dev
  python benchmarks/mol_collapse.py --variants=released,fix --steps=400 --seeds=0,1 --builder_config=mol
  python benchmarks/mol_collapse.py --probe --variants=no_ccc                # linear probes at initialisation

Each variant is a set of config overrides on the small MER-only config with the release's wiring
(`VARIANTS`; 'fix' is what `configs/mol_synthetic.py:small` sets); the no_* variants patch F5C out of
models/mol.py for their process. Settings are chosen on `mol_dev` (other subjects, same rules), not on the
`mol` folds MOL is scored on. Prints one line per variant, fold, seed and `--eval_every` steps, then the mean
per variant.
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

from configs import mol_recipe, mol_synthetic  # noqa: E402
from fdp_jax import data_sources, families, input_pipeline, metrics  # noqa: E402
from fdp_jax.cv import parallel  # noqa: E402
from fdp_jax.cv.folds import loso_folds, select_folds  # noqa: E402
from fdp_jax.cv.training import class_weights  # noqa: E402
from fdp_jax.models import mol  # noqa: E402

flags.DEFINE_list('variants', ['released'], 'Variants to train (keys of VARIANTS).')
flags.DEFINE_list('folds', ['s00'], 'Held-out subjects.')
flags.DEFINE_list('seeds', ['0'], 'Seeds.')
flags.DEFINE_integer('steps', 200, 'Training steps (batch 4 as in :small).')
flags.DEFINE_integer('eval_every', 100, 'Score train and held-out clips every this many steps.')
flags.DEFINE_bool('probe', False, 'Linear probes on the frames and the MOL\'s representations at '
                  'initialisation instead of training.')
flags.DEFINE_list('probe_features', [], 'Probe only these representations (default: all).')
flags.DEFINE_string('builder_config', 'mol_dev', "synthetic_me's corpus: 'mol_dev' (other subjects, for "
                    "choosing settings) or 'mol'.")
flags.DEFINE_string('data_dir', None, 'TFDS data dir (default: $TFDS_DATA_DIR or ~/tensorflow_datasets).')
FLAGS = flags.FLAGS

# What `configs/mol_synthetic.py:small` sets beyond the release's wiring (`variant_config` undoes it first).
FIX = {'model.f5c_layer_scale': True, 'model.mer_reference': 'clip_mean', 'model.mer_norm': True,
       'model.dropout': 0.0, 'data.stabilise': 'affine'}
WIRING = {k: v for k, v in FIX.items() if k.startswith('model.') and k != 'model.dropout'}
VARIANTS = {
    # the release's wiring and its training knobs
    'released': {},
    'no_dropout': {'model.dropout': 0.0},
    'one_bn_set': {'model.pair_batch_norm': False},
    'no_grad_clip': {'train.grad_clip_norm': 0.0},
    'lr3e-4': {'train.learning_rate': 3e-4},
    'lr3e-3': {'train.learning_rate': 3e-3},
    'unbalanced': {'loss.class_balance': False},
    'input_clip_mean': {'data.frame_reference': 'clip_mean', 'data.reference_gain': 4.0},
    # what the MER head reads (models/mol.py)
    'mer_clip_mean': {'model.mer_reference': 'clip_mean'},
    'mer_norm': {'model.mer_norm': True},
    'layer_scale': {'model.f5c_layer_scale': True},
    'mer_clip_mean_norm': {'model.mer_reference': 'clip_mean', 'model.mer_norm': True},
    'layer_scale_clip_mean': {'model.f5c_layer_scale': True, 'model.mer_reference': 'clip_mean'},
    'layer_scale_norm': {'model.f5c_layer_scale': True, 'model.mer_norm': True},
    'wiring': WIRING,                                   # the three model options, dropout as released
    'wiring_no_dropout': {**WIRING, 'model.dropout': 0.0},
    'fix': FIX,                                         # + frames registered to the clip's mean frame
    'fix_without_wiring': {'model.dropout': 0.0, 'data.stabilise': 'affine'},
    # F5C taken out (patches below), the MER head reading the maps minus their clip mean, normalised
    'no_f5c_clip_mean_norm': {'model.mer_reference': 'clip_mean', 'model.mer_norm': True},
    'no_ccc_clip_mean_norm': {'model.mer_reference': 'clip_mean', 'model.mer_norm': True},
    'no_fcc_clip_mean_norm': {'model.mer_reference': 'clip_mean', 'model.mer_norm': True},
    'no_f5c': {},
    'no_ccc': {},
    'no_fcc': {},
}


def _no_ccc():
  """F5C without its graph part: CCC's edge features are zero."""
  ccc = mol.CCC.__call__

  def call(self, x):
    differences, edges = ccc(self, x)
    return differences, jnp.zeros_like(edges)
  mol.CCC.__call__ = call


def _no_fcc():
  """F5C without its FCC: the conv stack's maps go to CCC as they are (FCC's parameters stay, unused)."""
  fcc = mol.FCC.__call__

  def call(self, x, *, train):
    fcc(self, x, train=train)
    return x
  mol.FCC.__call__ = call


def _no_f5c():
  """Neither FCC nor CCC: the conv stack's maps go to the heads as they are."""
  _no_fcc()
  _no_ccc()


# Patches of models/mol.py for a variant: diagnosis only, undone by nothing (one variant per process).
PATCHES = {'no_ccc': _no_ccc, 'no_fcc': _no_fcc, 'no_f5c': _no_f5c, 'no_f5c_clip_mean_norm': _no_f5c,
           'no_ccc_clip_mean_norm': _no_ccc, 'no_fcc_clip_mean_norm': _no_fcc}


def variant_config(name: str, seed: int):
  config = mol_synthetic.get_config('small_mer_only')
  config.data.builder_config = FLAGS.builder_config
  released = mol_recipe.mol_config('synthetic_me', 'mol', 5)
  for key in FIX:                           # the small config's own choices undone: each variant states its own
    section, field = key.split('.')
    config[section][field] = released[section][field]
  if FLAGS.data_dir:
    config.data.data_dir = FLAGS.data_dir
  config.seed = seed
  config.train.num_steps = FLAGS.steps
  config.train.log_every_steps = 1          # each step's own training metrics
  for key, value in VARIANTS[name].items():
    section, field = key.split('.')
    config[section][field] = value
  return config


def scores(fsteps, state, source, indices, config, num_classes: int) -> dict:
  """Accuracy, UF1 and the classes predicted, in evaluation mode, over every clip of `indices`."""
  labels, predictions = [], []
  for batch in input_pipeline.eval_batches(source, indices, config.data, config.eval.batch_size):
    out = fsteps.eval(state, {k: v[None] for k, v in batch.items()})
    keep = batch['mask']
    labels += batch['label'][keep].tolist()
    predictions += np.asarray(out['prediction'])[0][keep].tolist()
  cm = metrics.confusion_matrix(labels, predictions, num_classes)
  s = metrics.scores_from_confusion(cm)
  return {'accuracy': s['accuracy'], 'uf1': s['uf1'], 'classes': len(set(predictions))}


def run_one(name: str, seed: int, fold, source, index) -> dict:
  config = variant_config(name, seed)
  num_classes = config.data.num_classes
  model = families.build_model(config.model, num_classes, config.data.image_size)
  example = dict(input_pipeline.example_shapes(config.data, config.train.batch_size),
                 class_weight=np.zeros((config.train.batch_size,), np.float32))
  fsteps = parallel.make_fold_steps(config, model, example, 1)
  keys = lambda k: parallel.slot_keys([k], fsteps.state_sharding)  # noqa: E731
  state = fsteps.init(keys(jax.random.key(seed)))
  weights = class_weights(config, index.labels[fold.train_indices])
  batches = input_pipeline.train_iterator(source, fold.train_indices, config.data, config.train.batch_size,
                                          seed, num_threads=2)
  start, rows, running = time.perf_counter(), [], []
  for step in range(config.train.num_steps):
    batch = next(batches)
    batch['class_weight'] = weights[batch['label']]
    step_key = keys(jax.random.fold_in(jax.random.key(seed), step))
    state, logged = fsteps.train(state, {k: v[None] for k, v in batch.items()}, step_key, np.int32(step))
    running.append((float(logged['loss_mer'][0]), float(logged['accuracy'][0])))
    if (step + 1) % FLAGS.eval_every == 0 or step + 1 == config.train.num_steps:
      train = scores(fsteps, state, source, fold.train_indices, config, num_classes)
      test = scores(fsteps, state, source, fold.test_indices, config, num_classes)
      rows.append((step + 1, train, test))
      loss, accuracy = np.mean(running[-FLAGS.eval_every:], axis=0)
      print(f'{name:>12} {fold.subject} seed {seed} step {step + 1}: training batches (train mode) CE {loss:.3f} '
            f'acc {accuracy:.3f}; eval mode: train acc {train["accuracy"]:.3f} '
            f'UF1 {train["uf1"]:.3f} ({train["classes"]} classes) | held out acc {test["accuracy"]:.3f} '
            f'UF1 {test["uf1"]:.3f} ({test["classes"]} classes) | {time.perf_counter() - start:.0f} s', flush=True)
  return {'train': rows[-1][1], 'test': rows[-1][2]}


def representations(config, source, index) -> dict[str, np.ndarray]:
  """(N, D) per clip, from the small MOL at initialisation in evaluation mode and from its input frames:
  the frames, the conv stack's maps, and the F5C maps the MER head reads; each also minus its clip's mean
  over time (what moves)."""
  import flax.linen as nn
  model = families.build_model(config.model, config.data.num_classes, config.data.image_size)
  example = input_pipeline.example_shapes(config.data, config.eval.batch_size)
  variables = model.init(jax.random.key(0), example['frames'], example['frame_mask'], train=False)
  captured: dict[str, list] = {'frames': [], 'conv_stack': [], 'f5c': []}

  def interceptor(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if context.method_name == '__call__' and isinstance(context.module, mol.ConvStack):
      captured['conv_stack'].append(np.asarray(out))
    if context.method_name == '__call__' and isinstance(context.module, mol.MER3DCNN):
      captured['f5c'].append(np.asarray(args[0]))
    return out

  for batch in input_pipeline.eval_batches(source, range(len(index)), config.data, config.eval.batch_size):
    with nn.intercept_methods(interceptor):
      jax.block_until_ready(model.apply(variables, batch['frames'], batch['frame_mask'], train=False))
    captured['frames'].append(batch['frames'])
  b, t = config.eval.batch_size, config.data.num_frames
  frames = np.concatenate(captured['frames'])[:len(index)]                        # (N, T, S, S, 1)
  stack = np.concatenate([c.reshape(b, t, -1) for c in captured['conv_stack']])[:len(index)]
  f5c = np.concatenate(captured['f5c'])[:len(index)]                               # (N, h, w, 14, C)
  f5c = np.moveaxis(f5c, 3, 1).reshape(len(f5c), f5c.shape[3], -1)
  out = {}
  for name, x in (('frames', frames.reshape(len(frames), t, -1)), ('conv_stack', stack), ('f5c', f5c)):
    out[name] = x.reshape(len(x), -1)
    out[f'{name}_minus_clip_mean'] = (x - x.mean(1, keepdims=True)).reshape(len(x), -1)
  return out


def probe(config, source, index, folds) -> None:
  """Linear probes (`fdp_jax.tools.probes.fit_predict`) on each representation, per held-out fold."""
  from fdp_jax.tools import probes
  features = representations(config, source, index)
  labels = jnp.asarray(index.labels.astype(np.int32))
  for name, x in features.items():
    if FLAGS.probe_features and name not in FLAGS.probe_features:
      continue
    x = jnp.asarray(x)
    row = []
    for fold in folds:
      weights = np.zeros(len(index), np.float32)
      weights[fold.train_indices] = class_weights(config, index.labels[fold.train_indices])[
          index.labels[fold.train_indices]]
      p = np.asarray(probes.fit_predict(x, labels, jnp.asarray(weights), config.data.num_classes,
                                        probes.DEFAULT_L2))
      predicted = p.argmax(-1)
      test = metrics.scores_from_confusion(metrics.confusion_matrix(
          index.labels[fold.test_indices], predicted[fold.test_indices], config.data.num_classes))
      train_acc = float((predicted == index.labels)[fold.train_indices].mean())
      row.append((train_acc, test['uf1'], len(set(predicted[fold.test_indices].tolist()))))
    print(f'probe on {name:>26} ({x.shape[1]:6d} features): train acc {np.mean([r[0] for r in row]):.3f}, '
          f'held-out UF1 {np.mean([r[1] for r in row]):.3f} ({np.mean([r[2] for r in row]):.1f} classes)',
          flush=True)


def main(argv):
  del argv
  config = variant_config(FLAGS.variants[0], 0)
  source, index, _ = data_sources.load_corpus(config.data)
  folds = select_folds(loso_folds(index.subjects), ','.join(FLAGS.folds))
  if FLAGS.probe:
    for name in FLAGS.variants:
      if name in PATCHES:
        PATCHES[name]()
    probe(config, source, index, folds)
    return
  results = {}
  for name in FLAGS.variants:
    if name in PATCHES:
      if len(FLAGS.variants) > 1:
        raise app.UsageError(f'{name} patches models/mol.py: run it alone')
      PATCHES[name]()
    for seed in map(int, FLAGS.seeds):
      for fold in folds:
        results.setdefault(name, []).append(run_one(name, seed, fold, source, index))
  print('\nvariant: mean over folds and seeds at the last step (train acc / held-out acc / held-out UF1)')
  for name, rows in results.items():
    print(f'{name:>12}: {np.mean([r["train"]["accuracy"] for r in rows]):.3f} / '
          f'{np.mean([r["test"]["accuracy"] for r in rows]):.3f} / {np.mean([r["test"]["uf1"] for r in rows]):.3f}')


if __name__ == '__main__':
  app.run(main)
