"""Spot-then-recognise, LOSO — shared by configs/spot_synthetic.py, spot_casme_sq.py, spot_samm_lv.py and
spot_casme3.py (`fdp_jax/spotting/loso.py`).

The spotter (`fdp_jax/models/spotter.py`) scores the snippet of 2K+1 frames centred on every `spot.stride`-th
frame of a long video as none / micro / macro; peaks of each video's micro and macro curves over its own
threshold become intervals, which the recogniser (a recognition run's fold for the same subject) classifies.
`recognizer` is the recognition config trained in the same run when `recognizer_workdir` is empty.
"""

import ml_collections

from configs import base


def spot_config(builder: str, builder_config: str, recognizer: ml_collections.ConfigDict,
                fps: float = 30.0) -> ml_collections.ConfigDict:
  config = base.base_config(builder, builder_config, 3)
  config.task = 'spotting'
  data = config.data
  data.num_frames = 8
  # The stored 64-px faces resized to 32: on synthetic_long/dev, spotting F1 0.80 against 0.55 at 64 px, and
  # 2.6× faster (benchmarks/choose_spotting.py).
  data.image_size = 32
  # A snippet minus its first sampled frame: how the face moved since the snippet began, whoever it is.
  data.frame_reference = 'first'
  data.reference_gain = 4.0
  data.on_device = 'never'            # snippets are views into the videos, sampled by the host pipeline

  config.model = base.model_defaults('spotter')
  config.model.update({'channels': (16, 32, 64), 'hidden': 128, 'dropout': 0.1})
  config.loss = base.loss_defaults('spotter')
  config.loss.class_balance = True

  train = config.train
  train.batch_size = 32
  train.num_steps = 400
  train.learning_rate = 2e-3
  train.warmup_steps = 20
  train.weight_decay = 1e-4
  train.ema_decay = 0.99
  config.eval.batch_size = 128
  config.cv.checkpoint_every_steps = 200

  spot = config.spot = ml_collections.ConfigDict()
  spot.fps = float(fps)                       # the corpus's frame rate (analyze reads a user's video at it)
  spot.half_window = int(round(0.53 * fps))   # K: a snippet spans ≈ 1.07 s, the longest micro-expression ×2
  spot.stride = 2                             # a snippet centred on every 2nd frame (training and scoring)
  # Peaks: threshold = mean + p·(max − mean) of the video's smoothed scores, never below min_score; chosen on
  # synthetic_long/dev (benchmarks/README.md, "Spotting").
  spot.p = 0.7
  spot.min_score = 0.3
  spot.smooth = int(round(0.43 * fps))        # moving average of the curves, frames
  # Interval lengths where a fold's training videos have no interval of a type (frames at `fps`).
  spot.default_lengths = ml_collections.ConfigDict({'micro': int(round(0.4 * fps)),
                                                    'macro': int(round(1.3 * fps))})
  spot.baseline_distance = int(round(0.1 * fps))   # d of the baseline's |frame(t+d) − frame(t−d)|

  config.recognizer = recognizer
  config.recognizer_workdir = ''
  return config
