"""Spot-then-recognise on SAMM long videos (`samm_lv`, every 7th frame ≈ 28.6 fps), LOSO; the recogniser is
configs/samm.py (5 classes) trained in the same run, or `--config.recognizer_workdir=RUN`. SAMM-LV's
workbook codes no emotion, so its analysis (and STRS) has no labelled true positive unless intervals carry one.

  python launch.py --config=configs/spot_samm_lv.py
Build the corpora first (README, "Real corpora"):
  python -m fdp_jax.tools.build_dataset --dataset=samm_lv --config=raw_64_step7 --manual_dir=DIR
  python -m fdp_jax.tools.build_dataset --dataset=samm --config=5class_raw_64 --manual_dir=DIR
"""

from configs import arguments, samm, spot_recipe

ARGUMENTS = {None: ''}


def get_config(arg: str | None = None):
  arguments.check(__file__, arg, ARGUMENTS)
  config = spot_recipe.spot_config('samm_lv', 'raw_64_step7', samm.get_config(), fps=200 / 7)
  config.settings_chosen_on = 'nothing: the synthetic recipe, not tuned on SAMM-LV'
  return config
