"""One fold of a finished run on new inputs: its restored model, the training statistics its frames are
normalised with, and the jitted single-fold step that runs it.

The held-out subjects of a run are scored by the fold-parallel steps (`fdp_jax.cv.parallel.make_fold_steps`);
everything that runs one fold's model afterwards — a user's clip (`fdp_jax.clip_prediction`), a user's video
(`fdp_jax.spotting.video_analysis`), spotted intervals (`fdp_jax.spotting.recognise`), MOL's example pictures
(`fdp_jax.mol_evidence`) — takes its step from `inference_step`.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax

from fdp_jax import families, input_pipeline, rundir, train
from fdp_jax.cv import checkpoints, loso

# What an inference step returns (`inference_step`).
RETURNS = ('outputs', 'probabilities', 'eval')


def inference_step(options: train.StepOptions, returns: str = 'outputs') -> Callable:
  """The jitted step `(state, batch) -> result` of one fold's model in eval mode (`train.eval_outputs`: running
  BatchNorm statistics, the moving average of the parameters when the run kept one), under the options'
  conv routing and compute dtype (`train.options_for`). `state`: a single-fold TrainState; `batch`:
  'frames' (B, T, S, S, 1) and 'frame_mask' (B, T), plus what `returns` needs. `returns`:
    'outputs': the family's output dict in float32: 'logits' (B, C); FDP's decoded 'dynamic_image' (B, S, S);
      MOL's 'flow' (B, T−1, S, S, 2) and 'landmarks' (B, T−1, 68, 2);
    'probabilities': (B, C), the softmax of the logits;
    'eval': `train.eval_step`'s dict, as the trainer's evaluation computes it (the batch as an evaluation
      batch, with the family's targets).
  """
  if returns == 'outputs':
    def step(state, batch):
      return train.eval_outputs(state, batch, options)
  elif returns == 'probabilities':
    def step(state, batch):
      return jax.nn.softmax(train.eval_outputs(state, batch, options)['logits'], -1)
  elif returns == 'eval':
    def step(state, batch):
      return train.eval_step(state, batch, options)
  else:
    raise ValueError(f'unknown inference result {returns!r}: use one of {RETURNS}')
  return jax.jit(step)


def fold_template(config) -> train.TrainState:
  """The abstract single-fold TrainState of a run's config, which its checkpoints restore into."""
  model = families.build_model(config.model, config.data.num_classes, config.data.image_size)
  return loso.fold_template(config, model, input_pipeline.example_shapes(config.data, config.train.batch_size))


def restore_fold(workdir: str, fold: str, config=None) -> train.TrainState:
  """The final state of the fold that held out subject `fold` in the run in `workdir` (whose config is
  read from it unless given). Raises FileNotFoundError when the run did not finish that fold."""
  config = rundir.load_config(workdir) if config is None else config
  return checkpoints.restore_fold(workdir, fold, fold_template(config))


def fold_predictor(config, workdir: str, returns: str = 'outputs') -> Callable[[str], Callable[[dict], dict] | None]:
  """subject → the final model of the fold that held it out in the run in `workdir`, as `batch → result`
  on the host (`inference_step`); None for a fold without a checkpoint. Nothing is built or compiled until a
  fold is asked for; every fold runs the same compiled step."""
  template = functools.cache(lambda: fold_template(config))
  step = inference_step(train.options_for(config), returns)

  def fold(subject: str):
    try:
      state = checkpoints.restore_fold(workdir, subject, template())
    except FileNotFoundError:
      return None
    return lambda batch: jax.device_get(step(state, batch))
  return fold


class MissingTrainingStatistics(ValueError):
  """A run's results.json without the training statistics a fold's normalisation needs."""


def training_normalization(data_config, run_results: dict, fold: str) -> tuple | None:
  """The (shift, scale) the fold's model saw its training frames with; None under 'standard'. A single new
  clip is never normalised by its own statistics: under 'released_per_split' a run records each fold's
  training-split statistics in results.json (older runs do not: MissingTrainingStatistics, and
  `python -m fdp_jax.tools.rescore` records them)."""
  if data_config.normalization == 'standard':
    return None
  entry = next(f for f in run_results['folds'] if f['subject'] == fold)
  if 'train_normalization' not in entry:
    raise MissingTrainingStatistics(fold)
  return entry['train_normalization']['shift'], entry['train_normalization']['scale']
