"""FDP on SAMM, 5 classes (happiness, surprise, anger, contempt, other); LOSO.

  python launch.py --config=configs/samm.py
  python launch.py --config=configs/samm.py:3class_raw_64     # another builder config
Build the corpus first (README, "Real corpora"):
  python -m fdp_jax.tools.build_dataset --dataset=samm --config=5class_raw_64 --manual_dir=DIR
"""

from configs import arguments, corpus_recipe

ARGUMENTS = arguments.builder_configs('samm', '5class_raw_64')


def get_config(arg: str | None = None):
  return corpus_recipe.corpus_config('samm', '5class_raw_64', arguments.check(__file__, arg, ARGUMENTS))
