"""One fold's model on new inputs (`fdp_jax.inference`): the step that prediction, video analysis, the
recogniser and MOL's pictures use computes what the trainer's evaluation computes."""

import jax
import numpy as np
import pytest

from configs import synthetic
from conftest import OneFold
from fdp_jax import families, inference, train


def _fold(ema_decay=0.9):
  config = synthetic.get_config()
  config.train.ema_decay = ema_decay
  config.data.image_size, config.data.num_frames = 32, 4
  rng = np.random.default_rng(0)
  batch = {'frames': rng.uniform(-1, 1, (4, 4, 32, 32, 1)).astype(np.float32),
           'frame_mask': np.ones((4, 4), bool),
           'dynamic_image': rng.uniform(0, 1, (4, 32, 32)).astype(np.float32),
           'label': np.arange(4, dtype=np.int32) % 5, 'index': np.arange(4, dtype=np.int32),
           'mask': np.ones((4,), bool)}
  steps = OneFold(config, families.build_model(config.model, 5, 32), batch)
  state = steps.init(jax.random.key(0))
  for i in range(3):   # a few steps, so the moving average and BatchNorm statistics differ from the start
    state, _ = steps.train(state, batch, i)
  return config, steps, state, batch


def test_inference_steps_score_as_the_trainers_evaluation():
  config, steps, state, batch = _fold()
  options = train.options_for(config)
  single = OneFold.unstack(state)
  assert single.ema_params is not None
  trainer = steps.eval(state, batch)
  evaluated = inference.inference_step(options, 'eval')(single, batch)
  probabilities = inference.inference_step(options, 'probabilities')(single, batch)
  outputs = inference.inference_step(options, 'outputs')(single, {k: batch[k] for k in ('frames', 'frame_mask')})
  np.testing.assert_allclose(evaluated['probabilities'], trainer['probabilities'], rtol=1e-6, atol=1e-7)
  np.testing.assert_array_equal(evaluated['prediction'], trainer['prediction'])
  np.testing.assert_allclose(probabilities, trainer['probabilities'], rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(jax.nn.softmax(outputs['logits'], -1), probabilities, rtol=1e-6, atol=1e-7)
  assert outputs['logits'].dtype == np.float32
  # the moving average, not the last parameters, is what a finished fold predicts with
  raw = train.apply_model(single, single.params, batch, options, train=False)
  assert not np.allclose(raw['logits'], outputs['logits'])


def test_an_unknown_inference_result_is_refused():
  with pytest.raises(ValueError, match='unknown inference result'):
    inference.inference_step(train.options_for(synthetic.get_config()), 'logits')


def test_a_fold_without_recorded_training_statistics_is_refused():
  config = synthetic.get_config()
  results = {'folds': [{'subject': 's01'}]}
  assert inference.training_normalization(config.data, results, 's01') is None    # 'standard'
  config.data.normalization = 'released_per_split'
  with pytest.raises(inference.MissingTrainingStatistics):
    inference.training_normalization(config.data, results, 's01')
  results['folds'][0]['train_normalization'] = {'shift': [0.5], 'scale': [2.0]}
  assert inference.training_normalization(config.data, results, 's01') == ([0.5], [2.0])
