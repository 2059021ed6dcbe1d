"""MOL's heads learn: each trained alone on one batch of synthetic clips (exact flow and landmarks) drives its
own term down and its error below a bound — the checks that would have caught the released settings, in
which a landmark head starts every point at the crop's corner and the flow loss of sub-pixel flows is too
small for Adam to move the flow head. A small MOL (width 1/8, 64 px, 4 frames, batch 2) through the
trainer's own steps."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import OneFold
from configs import mol_synthetic
from fdp_jax import families, input_pipeline
from fdp_jax.corpora import face_drawing, face_motion, synthetic_faces
from fdp_jax.models import flownet, layers, mol

SIZE, FRAMES, CLIPS = 64, 4, 2


@pytest.fixture(scope='module')
def batch():
  return synthetic_batch()


def synthetic_batch() -> dict:
  """Two clips of two subjects, each frame aligned on its own as in the `mol` corpus, through the evaluation
  transform of the small config without its registration (the heads then see the corpus's whole motion):
  frames, exact flow between the sampled frames and landmarks of frames 1 … T−1, at 64 px."""
  config = mol_synthetic.get_config('small')
  config.data.num_frames = FRAMES
  config.data.stabilise = 'none'
  transform = input_pipeline.ClipTransform(config.data, train=False)
  examples = []
  for i in range(CLIPS):
    record = synthetic_faces.make_clip(face_drawing.make_subject(0, i, 128), 0, i + 1, 0, 14, 16,
                                       with_flow=True, alignment=face_motion.MOL_ALIGNMENT)
    examples.append(transform(dict(record, label=i + 1, _index=i)))
  out = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
  out['class_weight'] = np.ones((CLIPS,), np.float32)
  return out


def train_alone(batch, head: str, num_steps: int, **model_overrides) -> tuple[list[dict], dict]:
  """Trains a small MOL on `batch` with one loss term ('mer' | 'flow' | 'landmarks'); returns the training
  metrics of every step and the evaluation values after the last."""
  config = mol_synthetic.get_config('small')
  config.data.num_frames = FRAMES
  config.model.width = 0.125
  config.model.dropout = 0.0
  config.model.update(model_overrides)
  config.train.schedule, config.train.warmup_steps = 'constant', 0
  weights = {'mer': 1.0, 'flow': config.loss.flow, 'landmarks': config.loss.landmarks}
  for term in weights:
    config.loss[term] = weights[term] if term == head else 0.0
  model = families.build_model(config.model, 5, SIZE)
  steps = OneFold(config, model, batch)
  state = steps.init(jax.random.key(0))
  history = []
  for i in range(num_steps):
    state, metrics = steps.train(state, batch, i)
    history.append({k: float(v) for k, v in metrics.items()})
  return history, steps.eval(state, batch)


def test_landmark_head_alone_learns_the_faces(batch):
  """Landmark-only training reads the faces: 60 steps take the NME from ≈ 0.9 to ≈ 0.05 with outputs
  centred in half-sides (lr 3e-3; ≈ 0.11 at 1e-3). With the released pixel outputs the same 60 steps at
  1e-3 ended at ≈ 0.40 — the head spends them moving its points from the crop's corner to the face
  (measured)."""
  history, out = train_alone(batch, 'landmarks', 60)
  terms = [h['loss_landmarks'] for h in history]
  assert terms[-1] < 0.3 * terms[0], terms
  assert float(np.mean(out['landmark_nme'])) < 0.2, np.mean(out['landmark_nme'])
  assert history[-1]['loss_flow'] > 0 and history[-1]['loss_mer'] > 0   # measured, not trained


def test_flow_head_alone_beats_zero_flow(batch):
  """Zero flow is the trivial reference (EPE = the mean flow magnitude, ≈ 0.22 px here). With the flow MSE
  measured in units of the corpus's flow spread (10 / 0.26² × the pixel MSE) 60 steps end at ≈ 0.80 of
  it. With the released 10 × pixel MSE on the corpus's sub-pixel flows of 1.1.0 (no per-frame alignment
  error, zero flow 0.09 px) the gradients were at Adam's ε (median 7.6e-9 over the flow net at
  initialisation) and the same steps ended at 0.997 of it, against 0.78 in units of its spread (measured)."""
  history, out = train_alone(batch, 'flow', 60)
  terms = [h['loss_flow'] for h in history]
  assert np.mean(terms[-5:]) < 0.85 * np.mean(terms[:5]), terms
  zero = float(np.linalg.norm(batch['flow'], axis=-1).mean())
  assert float(np.mean(out['flow_epe'])) < 0.95 * zero, (np.mean(out['flow_epe']), zero)


def test_mer_head_alone_fits_its_batch(batch):
  history, _ = train_alone(batch, 'mer', 40)
  terms = [h['loss_mer'] for h in history]
  assert terms[-1] < 0.3 * terms[0], terms
  assert history[-1]['accuracy'] == 1.0


def crossed_batch() -> dict:
  """Four clips, two subjects × two classes (happiness, surprise): the class is in the motion alone, as
  across LOSO's subjects — the subject's face tells nothing of it."""
  config = mol_synthetic.get_config('small')
  config.data.num_frames = FRAMES
  transform = input_pipeline.ClipTransform(config.data, train=False)
  examples = []
  for s in range(2):
    subject = face_drawing.make_subject(0, s, 128)
    for label in (0, 1):
      record = synthetic_faces.make_clip(subject, 0, label, 0, 14, 16, with_flow=True,
                                         alignment=face_motion.MOL_ALIGNMENT)
      examples.append(transform(dict(record, label=label, _index=len(examples))))
  out = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
  out['class_weight'] = np.ones((len(examples),), np.float32)
  return out


RELEASED_WIRING = {'f5c_layer_scale': False, 'mer_reference': 'none', 'mer_norm': False}


def test_the_mer_path_reads_motion_where_the_release_collapses():
  """Why MOL collapses to one class: as released, its MER head cannot tell two clips of one face apart by
  their motion. Trained MER-only on `crossed_batch`, the released wiring stays at ln 2 (≈ 0.68 after 40
  steps, measured) and predicts by subject or one class; the small config's MER path (the F5C maps minus
  their clip mean, BatchNorm before the head, F5C branches that start at 0) reaches ≈ 0.01 and predicts
  every clip's class. The maps the head reads as released are the face: their change over the clip is
  ≈ 1/3 of their spread (std 0.003 against 0.009) and F5C's full-strength branches scramble it further."""
  batch = crossed_batch()
  released, _ = train_alone(batch, 'mer', 40, **RELEASED_WIRING)
  fixed, _ = train_alone(batch, 'mer', 40)
  assert np.mean([h['loss_mer'] for h in released[-5:]]) > 0.6, [h['loss_mer'] for h in released]
  assert np.mean([h['accuracy'] for h in released[-5:]]) < 0.9
  assert np.mean([h['loss_mer'] for h in fixed[-5:]]) < 0.15, [h['loss_mer'] for h in fixed]
  assert all(h['accuracy'] == 1.0 for h in fixed[-5:]), [h['accuracy'] for h in fixed]


def test_f5c_with_layer_scale_starts_as_the_identity_and_the_head_sees_only_change():
  """With `f5c_layer_scale` the F5C blocks start as the identity, so the MER head first reads the conv
  stack's maps; with `mer_reference='clip_mean'` a face that does not move gives it nothing at all."""
  frames = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 4, 64, 64, 1)), jnp.float32)
  model = mol.MOL(num_classes=3, width=0.125, f5c_layer_scale=True, mer_reference='clip_mean')
  variables = model.init(jax.random.key(0), frames, train=False)
  seen = {}

  def record(next_fun, args, kwargs, context):
    if context.method_name == '__call__' and isinstance(context.module, (mol.ConvStack, mol.MER3DCNN)):
      seen[type(context.module).__name__] = args[0] if isinstance(context.module, mol.MER3DCNN) else None
    out = next_fun(*args, **kwargs)
    if isinstance(context.module, mol.ConvStack) and context.method_name == '__call__':
      seen['maps'] = out
    return out

  with nn.intercept_methods(record):
    model.apply(variables, frames, train=False)
  maps = np.asarray(seen['maps']).reshape(2, 4, 8, 8, -1)
  pairs = np.stack([maps[:, :-1], maps[:, 1:]], 2).reshape(2, 6, 8, 8, -1)        # frame t, t+1 of each pair
  want = np.moveaxis(pairs - pairs.mean(1, keepdims=True), 1, 3)
  np.testing.assert_allclose(np.asarray(seen['MER3DCNN']), want, atol=1e-5)
  still = jnp.broadcast_to(frames[:, :1], frames.shape)
  with nn.intercept_methods(record):
    model.apply(variables, still, train=False)
  np.testing.assert_allclose(np.asarray(seen['MER3DCNN']), 0.0, atol=1e-5)


def test_centred_landmark_units_start_at_the_crop_centre():
  """With the last Linear zeroed, a 'centred' head puts every point at side/2, a 'pixels' head at 0."""
  x = jnp.ones((1, 8, 8, 16))
  for units, want in (('centred', 32.0), ('pixels', 0.0)):
    head = mol.LandmarkHead(0.125, units, 64)
    variables = head.init(jax.random.key(0), x)
    params = jax.tree_util.tree_map_with_path(
        lambda path, v: jnp.zeros_like(v) if 'fc2' in jax.tree_util.keystr(path) else v, variables['params'])
    np.testing.assert_allclose(head.apply({'params': params}, x), want)


def test_small_mol_keeps_the_structure_at_a_quarter_of_the_widths():
  config = mol_synthetic.get_config('small')
  model = families.build_model(config.model, 5, config.data.image_size)
  assert isinstance(model, mol.MOL) and config.data.image_size == 64
  frames = jnp.zeros((1, 8, 64, 64, 1))
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), frames, train=False))
  params = variables['params']
  released = jax.eval_shape(lambda: mol.MOL().init(jax.random.key(0), jnp.zeros((1, 8, 128, 128, 1)),
                                                   train=False))['params']
  # every released module is there, with a quarter of its channels, beside the MER path's own additions
  assert set(params) == set(released) | {'mer_norm', 'CCC_1_layer_scale', 'CCC_2_layer_scale'}
  assert set(params['flownet']) == set(released['flownet'])
  assert params['conv_stack']['conv_stack__3']['kernel'].shape == (1, 1, 16, 32)
  assert params['flownet']['conv6_1__0']['kernel'].shape == (3, 3, 256, 256)
  # 8×8 maps: the correlation keeps the 7×7 displacements that can land on the map
  assert params['flownet']['conv3_1__0']['kernel'].shape[2] == 8 + 49 + 2 * 32
  count = lambda tree: sum(int(np.prod(v.shape)) for v in jax.tree.leaves(tree))  # noqa: E731
  assert count(params) < count(released) / 8


def test_a_smaller_correlation_patch_drops_only_displacements_off_the_map():
  rng = np.random.default_rng(0)
  a, b = (jnp.asarray(rng.standard_normal((2, 8, 8, 5)), jnp.float32) for _ in range(2))
  full = np.asarray(flownet.correlation(a, b)).reshape(2, 8, 8, 21, 21)
  small = np.asarray(flownet.correlation(a, b, flownet.covering_patch(8))).reshape(2, 8, 8, 7, 7)
  np.testing.assert_allclose(small, full[..., 7:14, 7:14], rtol=1e-6)
  outside = full.copy()
  outside[..., 7:14, 7:14] = 0
  assert not outside.any()
  assert flownet.covering_patch(16) == 15                                 # 21 over-covers 16
  assert flownet.covering_patch(32) == flownet.CORRELATION_PATCH


def test_one_set_of_batch_norm_statistics_replaces_the_per_pair_groups():
  frames = jnp.zeros((2, 4, 64, 64, 1))   # the 3D-CNN's temporal kernel of 5 needs 2(T − 1) ≥ 5
  seen = []

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, (nn.BatchNorm, layers.TorchBatchNorm)):
      seen.append(type(context.module).__name__)
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    mol.MOL(num_classes=3, width=0.125, pair_batch_norm=False).init(jax.random.key(0), frames, train=False)
  assert seen and set(seen) == {'BatchNorm'}


def test_the_released_size_still_takes_only_128_px():
  config = mol_synthetic.get_config()
  with pytest.raises(ValueError, match='128×128'):
    families.build_model(config.model, 5, 64)
  config.model.width = 0.25
  with pytest.raises(ValueError, match='multiple of 64'):
    families.build_model(config.model, 5, 96)
