"""samm: SAMM (Davison et al., 2018) from a licensed local copy.

  python -m fdp_jax.tools.build_dataset --dataset=samm --config=5class_raw_64 --manual_dir=DIR
"""

from fdp_jax.corpora import builder
from fdp_jax.corpora import samm


class Builder(builder.MECorpusBuilder):
  """SAMM: 159 micro-movements of 32 subjects at 200 fps, grey; 5-class (and 3-class) protocols."""

  CORPUS = samm.CORPUS
  READER = samm
  MANUAL_DOWNLOAD_INSTRUCTIONS = samm.INSTRUCTIONS
  DESCRIPTION = ('SAMM spontaneous micro-expressions, aligned grey faces with dlib landmarks '
                 '(the released alignment). Subjects 006..037; sample ids 006/006_1_2.')
  BUILDER_CONFIGS = builder.corpus_configs(samm.CORPUS)
