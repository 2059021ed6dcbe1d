"""MOL as released on the synthetic corpus (its `mol` builder config: 128-px faces with exact flow and
landmarks), LOSO, with a CPU-sized schedule.

  python launch.py --config=configs/mol_synthetic.py
  python launch.py --config=configs/mol_synthetic.py:mer_only   # the flow/landmark-free ablation
  python launch.py --config=configs/mol_synthetic.py --config.cv.subjects=s00,s03,s09   # three folds

The released recipe (batch 32 × 1000 steps) takes hours per fold on a 2-core CPU; here batch 4, 120 steps
per fold, lr 3e-4 with warm-up and cosine decay. The faces are stored at 128 px, so there is no 144 → 128
crop (crop_scale 1).
"""

from configs import arguments, mol_recipe

ARGUMENTS = {None: 'MOL as released', 'mer_only': 'the flow/landmark-free ablation'}


def get_config(arg: str | None = None):
  arg = arguments.check(__file__, arg, ARGUMENTS)
  config = mol_recipe.mol_config('synthetic_me', 'mol', 5)
  config.data.crop_scale = 1.0
  config.train.batch_size = 4
  config.train.num_steps = 120
  config.train.learning_rate = 3e-4
  config.train.schedule = 'warmup_cosine'
  config.train.warmup_steps = 10
  config.train.end_lr_factor = 0.05
  config.train.grad_clip_norm = 1.0
  config.settings_chosen_on = ('the CPU-sized schedule (batch, steps, learning rate) was set by hand on this '
                               'corpus\'s own folds, not on a separate development corpus')
  config.train.log_every_steps = 10
  config.loss.class_balance = True
  return mol_recipe.without_auxiliary_tasks(config) if arg == 'mer_only' else config
