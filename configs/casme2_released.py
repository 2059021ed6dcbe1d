"""FDP as released, trained with the released recipe, on CASME II (5 classes: happiness, surprise,
disgust, repression, others); LOSO.

  python launch.py --config=configs/casme2_released.py
  (build the corpus first: python -m fdp_jax.tools.build_dataset --dataset=casme2 --manual_dir=DIR)
"""

from configs import arguments, released_recipe

ARGUMENTS = {None: ''}


def get_config(arg: str | None = None):
  arguments.check(__file__, arg, ARGUMENTS)
  return released_recipe.released_config('casme2', '5class_raw_64', 5)
