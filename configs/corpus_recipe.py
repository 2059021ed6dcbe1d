"""FDP (paper design, released widths) on a licensed corpus, LOSO — shared by configs/casme2.py, samm.py,
casme_sq.py, casme3.py, smic.py and megc2019.py.

The schedule follows the released recipe's scale (batch 36, 500 steps per fold, lr 1e-4: `configs/base.py`)
with the paper design's losses and the honest defaults of this project (class-balanced CE, end-of-schedule
selection, no test-split statistics). It has not been tuned on the real corpora: none is available to the
project.
"""

import re

import ml_collections

from configs import base, fdp_sizes
from fdp_jax.corpora import class_sets


def corpus_config(builder: str, builder_config: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """`arg` picks the builder config (e.g. '5class_cropped_64'); the default is the FDP-sized 64 px one.
  The number of classes follows the config's class set (the '<n>class' part of its name)."""
  builder_config = arg or builder_config
  class_set = re.search(r'\d+class', builder_config)
  if class_set is None:
    raise ValueError(f'builder config {builder_config!r} names no class set (e.g. 5class_raw_64)')
  num_classes = len(class_sets.get(builder, class_set.group(0)).classes)
  config = base.base_config(builder, builder_config, num_classes)
  config.settings_chosen_on = ('nothing: the released schedule with the paper design\'s losses, not tuned on '
                               'any corpus')
  config.model = fdp_sizes.fdp_model('released')

  loss = config.loss = ml_collections.ConfigDict()
  loss.mer = 1.0
  loss.dynamic_image = 10.0
  loss.rank = 0.1
  loss.rank_temperature = 0.1
  loss.class_balance = True

  config.cv.checkpoint_every_steps = 200    # a fold's state at the released widths is ≈ 1 GB
  return config
