"""casme2: CASME II (Yan et al., 2014) from a licensed local copy.

  python -m fdp_jax.tools.build_dataset --dataset=casme2 --config=5class_raw_64 --manual_dir=DIR
  tfds build datasets/casme2 --config=5class_raw_64 --manual_dir=DIR   # needs tensorflow installed
"""

from fdp_jax.corpora import builder
from fdp_jax.corpora import casme2


class Builder(builder.MECorpusBuilder):
  """CASME II: 255 coded samples of 26 subjects at 200 fps; 5-class (and 3-class composite) protocols."""

  CORPUS = casme2.CORPUS
  READER = casme2
  MANUAL_DOWNLOAD_INSTRUCTIONS = casme2.INSTRUCTIONS
  DESCRIPTION = ('CASME II spontaneous micro-expressions, aligned grey faces with dlib landmarks '
                 '(the released alignment). Subjects sub01..sub26; sample ids sub01/EP02_01f.')
  BUILDER_CONFIGS = builder.corpus_configs(casme2.CORPUS, frames=('raw', 'cropped'))
