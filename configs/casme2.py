"""FDP on CASME II, 5 classes (happiness, surprise, disgust, repression, others); LOSO.

  python launch.py --config=configs/casme2.py
  python launch.py --config=configs/casme2.py:5class_cropped_64     # another builder config
Build the corpus first (README, "Real corpora"):
  python -m fdp_jax.tools.build_dataset --dataset=casme2 --config=5class_raw_64 --manual_dir=DIR
"""

from configs import arguments, corpus_recipe

ARGUMENTS = arguments.builder_configs('casme2', '5class_raw_64')


def get_config(arg: str | None = None):
  return corpus_recipe.corpus_config('casme2', '5class_raw_64', arguments.check(__file__, arg, ARGUMENTS))
