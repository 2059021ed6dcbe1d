"""smic: SMIC (Li et al., 2013) from a licensed local copy; HS, VIS and NIR recordings.

  python -m fdp_jax.tools.build_dataset --dataset=smic --config=hs_3class_cropped_64 --manual_dir=DIR
"""

from fdp_jax.corpora import builder
from fdp_jax.corpora import smic


class Builder(builder.MECorpusBuilder):
  """SMIC: HS 164 samples of 16 subjects at 100 fps (VIS/NIR at 25 fps); 3 classes from folder names."""

  CORPUS = smic.CORPUS
  READER = smic
  MANUAL_DOWNLOAD_INSTRUCTIONS = smic.INSTRUCTIONS
  DESCRIPTION = ('SMIC spontaneous micro-expressions (negative, positive, surprise), aligned grey faces '
                 'with dlib landmarks. No phase annotation: onset = first frame, offset = last, apex = '
                 'midpoint. Subjects s1..s20; sample ids s1/s1_ne_01.')
  BUILDER_CONFIGS = builder.corpus_configs(smic.CORPUS, frames=('cropped', 'raw'), modalities=smic.MODALITIES)
