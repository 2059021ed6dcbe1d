"""Spot-then-recognise on CAS(ME)³ Part A long videos (`casme3_long`, micro and macro intervals), LOSO; the
recogniser is configs/casme3.py (7 classes) trained in the same run, or `--config.recognizer_workdir=RUN`.

  python launch.py --config=configs/spot_casme3.py
Build the corpora first (README, "Real corpora"):
  python -m fdp_jax.tools.build_dataset --dataset=casme3_long --config=raw_64 --manual_dir=DIR
  python -m fdp_jax.tools.build_dataset --dataset=casme3 --config=7class_raw_64 --manual_dir=DIR
"""

from configs import arguments, casme3, spot_recipe

ARGUMENTS = {None: ''}


def get_config(arg: str | None = None):
  arguments.check(__file__, arg, ARGUMENTS)
  config = spot_recipe.spot_config('casme3_long', 'raw_64', casme3.get_config())
  config.settings_chosen_on = 'nothing: the synthetic recipe, not tuned on CAS(ME)³'
  return config
