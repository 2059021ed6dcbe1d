"""FDP on CAS(ME)² micro-expressions, 4 classes (negative, positive, surprise, others); LOSO.

  python launch.py --config=configs/casme_sq.py
  python launch.py --config=configs/casme_sq.py:4class_cropped_64     # another builder config
Build the corpus first (README, "Real corpora"):
  python -m fdp_jax.tools.build_dataset --dataset=casme_sq --config=4class_raw_64 --manual_dir=DIR
"""

from configs import arguments, corpus_recipe

ARGUMENTS = arguments.builder_configs('casme_sq', '4class_raw_64')


def get_config(arg: str | None = None):
  return corpus_recipe.corpus_config('casme_sq', '4class_raw_64', arguments.check(__file__, arg, ARGUMENTS))
