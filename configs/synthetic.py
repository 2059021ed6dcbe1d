"""FDP (paper design) on the embedded synthetic micro-expression corpus, leave-one-subject-out.

  python launch.py                                   # this config is the default
  python launch.py --config=configs/synthetic.py:static     # the single-frame baseline (raw frames)
  python launch.py --config=configs/synthetic.py:released   # released widths/depths (slow on a CPU)

The settings below were chosen (or confirmed) on `synthetic_me/dev` — ten other subjects drawn by the same
rules — never on the folds this config reports: benchmarks/choose_defaults.py, and its table in
benchmarks/README.md ("Choosing the defaults").
"""

import ml_collections

from configs import arguments, base, fdp_sizes

ARGUMENTS = {None: 'FDP small', 'static': 'the single-frame baseline (raw frames)',
             'small': 'FDP small', 'released': 'FDP at the released widths/depths'}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = arguments.check(__file__, arg, ARGUMENTS)
  config = base.base_config('synthetic_me', 'default', 5)
  config.settings_chosen_on = ('synthetic_me/dev: LOSO folds of 5 of its 10 subjects, who are not subjects of '
                               'synthetic_me/default (benchmarks/choose_defaults.py)')
  data = config.data
  # Each frame minus its clip's mean frame, times 4 (input_pipeline.subtract_reference): the subject's
  # appearance, which varies far more than the motion, goes; the motion stays. Spatial augmentation stays
  # off: the faces are already aligned and the motion is what varies.
  data.frame_reference = 'clip_mean'
  data.reference_gain = 4.0

  if arg == 'static':   # the single-frame baseline sees one raw frame: no reference frame either
    config.model = fdp_sizes.fdp_model('small')
    config.model.temporal_pooling = 'static'
    data.frame_reference = 'none'
  else:
    config.model = fdp_sizes.fdp_model(arg or 'small')

  loss = config.loss = ml_collections.ConfigDict()
  loss.mer = 1.0
  loss.dynamic_image = 10.0
  loss.rank = 0.1
  loss.rank_temperature = 0.1   # pairwise-sigmoid soft ranks in the ranking loss
  # Cross-entropy weighted by inverse class frequency of the fold's training set (CASME II-like imbalance).
  loss.class_balance = True

  train = config.train
  train.batch_size = 8
  train.num_steps = 180
  train.learning_rate = 1e-3
  train.warmup_steps = 20
  train.weight_decay = 1e-4
  # Folds are scored with a moving average of their parameters (train.update_ema; its warm-up makes the
  # effective decay ≈ 0.95 at step 180).
  train.ema_decay = 0.99

  config.eval.batch_size = 32
  config.eval.num_views = 5     # temporal views per test clip, probabilities averaged
  return config
