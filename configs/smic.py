"""FDP on SMIC-HS, 3 classes (negative, positive, surprise); LOSO.

  python launch.py --config=configs/smic.py
  python launch.py --config=configs/smic.py:vis_3class_cropped_64     # another builder config
Build the corpus first (README, "Real corpora"):
  python -m fdp_jax.tools.build_dataset --dataset=smic --config=hs_3class_cropped_64 --manual_dir=DIR
"""

from configs import arguments, corpus_recipe

ARGUMENTS = arguments.builder_configs('smic', 'hs_3class_cropped_64')


def get_config(arg: str | None = None):
  return corpus_recipe.corpus_config('smic', 'hs_3class_cropped_64', arguments.check(__file__, arg, ARGUMENTS))
