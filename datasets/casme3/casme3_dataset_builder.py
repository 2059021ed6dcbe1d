"""casme3: CAS(ME)³ Part A (Li et al., 2022) micro-expressions from a licensed local copy.

  python -m fdp_jax.tools.build_dataset --dataset=casme3 --config=7class_raw_64 --manual_dir=DIR
"""

from fdp_jax.corpora import builder
from fdp_jax.corpora import casme3


class Builder(builder.MECorpusBuilder):
  """CAS(ME)³ Part A: 860 MEs of 94 subjects at 30 fps; 7-, 4- and 3-class protocols."""

  CORPUS = casme3.CORPUS
  READER = casme3
  MANUAL_DOWNLOAD_INSTRUCTIONS = casme3.INSTRUCTIONS
  DESCRIPTION = ('CAS(ME)³ Part A micro-expressions, the onset..offset frames of each (from the ME-clip '
                 'packages when present, else the colour video), aligned grey faces with dlib landmarks. '
                 'Subjects spNO.<n>; sample ids spNO.1/a/153 (several MEs share a video).')
  BUILDER_CONFIGS = builder.corpus_configs(casme3.CORPUS)
