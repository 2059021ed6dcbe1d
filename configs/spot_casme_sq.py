"""Spot-then-recognise on CAS(ME)² long videos (`casme_sq_long`, micro and macro intervals), LOSO; the
recogniser is configs/casme_sq.py (4 classes) trained in the same run, or `--config.recognizer_workdir=RUN`.

  python launch.py --config=configs/spot_casme_sq.py
Build the corpora first (README, "Real corpora"):
  python -m fdp_jax.tools.build_dataset --dataset=casme_sq_long --config=raw_64 --manual_dir=DIR
  python -m fdp_jax.tools.build_dataset --dataset=casme_sq --config=4class_raw_64 --manual_dir=DIR
"""

from configs import arguments, casme_sq, spot_recipe

ARGUMENTS = {None: ''}


def get_config(arg: str | None = None):
  arguments.check(__file__, arg, ARGUMENTS)
  config = spot_recipe.spot_config('casme_sq_long', 'raw_64', casme_sq.get_config())
  config.settings_chosen_on = 'nothing: the synthetic recipe, not tuned on CAS(ME)²'
  return config
