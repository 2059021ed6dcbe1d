"""FDP as released, trained with the released recipe, on the embedded synthetic corpus; LOSO.

The full-size released network on 2 CPU cores takes minutes per fold; the second command is a quick check.

  python launch.py --config=configs/synthetic_released.py
  python launch.py --config=configs/synthetic_released.py --config.train.num_steps=20 --config.cv.subjects=s00
  python launch.py --config=configs/synthetic_released.py:casme2_sized   # 26 folds, CASME II's LOSO shape
"""

from configs import arguments, released_recipe

ARGUMENTS = arguments.builder_configs('synthetic_me', 'default')


def get_config(arg: str | None = None):
  """arg: a synthetic_me builder config ('default', or 'casme2_sized' for timing a CASME II-sized LOSO)."""
  builder_config = arguments.check(__file__, arg, ARGUMENTS) or 'default'
  return released_recipe.released_config('synthetic_me', builder_config, 5)
