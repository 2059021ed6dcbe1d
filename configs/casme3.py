"""FDP on CAS(ME)³ Part A, 7 classes (happy, disgust, fear, anger, sad, surprise, others); LOSO.

  python launch.py --config=configs/casme3.py
  python launch.py --config=configs/casme3.py:4class_raw_64     # another builder config
Build the corpus first (README, "Real corpora"):
  python -m fdp_jax.tools.build_dataset --dataset=casme3 --config=7class_raw_64 --manual_dir=DIR
"""

from configs import arguments, corpus_recipe

ARGUMENTS = arguments.builder_configs('casme3', '7class_raw_64')


def get_config(arg: str | None = None):
  return corpus_recipe.corpus_config('casme3', '7class_raw_64', arguments.check(__file__, arg, ARGUMENTS))
