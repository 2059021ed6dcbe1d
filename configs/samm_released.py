"""FDP as released, trained with the released recipe, on SAMM (5 classes: happiness, surprise, anger,
contempt, other); LOSO.

  python launch.py --config=configs/samm_released.py
  (build the corpus first: python -m fdp_jax.tools.build_dataset --dataset=samm --manual_dir=DIR)
"""

from configs import arguments, released_recipe

ARGUMENTS = {None: ''}


def get_config(arg: str | None = None):
  arguments.check(__file__, arg, ARGUMENTS)
  return released_recipe.released_config('samm', '5class_raw_64', 5)
