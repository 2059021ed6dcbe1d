"""FDP as released, trained with the released recipe, on the embedded synthetic corpus; LOSO.

The full-size released network on 2 CPU cores takes minutes per fold; the second command is a quick check.

  python launch.py --config=configs/synthetic_released.py
  python launch.py --config=configs/synthetic_released.py --config.train.num_steps=20 --config.cv.subjects=s00
"""

from configs import released_recipe


def get_config(arg: str | None = None):
  del arg
  return released_recipe.released_config('synthetic_me', 'default', 5)
