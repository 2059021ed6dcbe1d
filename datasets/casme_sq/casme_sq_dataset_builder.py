"""casme_sq: CAS(ME)² (Qu et al., 2018) micro-expressions from a licensed local copy.

  python -m fdp_jax.tools.build_dataset --dataset=casme_sq --config=4class_raw_64 --manual_dir=DIR
"""

from fdp_jax.corpora import builder
from fdp_jax.corpora import casme_sq


class Builder(builder.MECorpusBuilder):
  """CAS(ME)²: 57 micro-expressions of 22 subjects at 30 fps cut from whole videos; 4 classes."""

  CORPUS = casme_sq.CORPUS
  READER = casme_sq
  MANUAL_DOWNLOAD_INSTRUCTIONS = casme_sq.INSTRUCTIONS
  DESCRIPTION = ('CAS(ME)² micro-expressions (expression type micro-expression), the onset..offset frames '
                 'of each video, aligned grey faces with dlib landmarks. Subjects s15..s40 (the frame '
                 'folder ids); sample ids s15/anger1_1.')
  BUILDER_CONFIGS = builder.corpus_configs(casme_sq.CORPUS, frames=('raw', 'cropped'))
