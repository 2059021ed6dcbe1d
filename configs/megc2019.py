"""FDP on the MEGC 2019 composite (CASME II + SAMM + SMIC-HS), 3 classes (negative, positive, surprise); LOSO.

  python launch.py --config=configs/megc2019.py
  python launch.py --config=configs/megc2019.py:3class_raw_64     # another builder config
Build the corpus first (README, "Real corpora"):
  python -m fdp_jax.tools.build_dataset --dataset=megc2019 --config=3class_cropped_64 --manual_dir=DIR
"""

from configs import arguments, corpus_recipe

ARGUMENTS = arguments.builder_configs('megc2019', '3class_cropped_64')


def get_config(arg: str | None = None):
  return corpus_recipe.corpus_config('megc2019', '3class_cropped_64', arguments.check(__file__, arg, ARGUMENTS))
