"""megc2019: the MEGC 2019 composite — CASME II + SAMM + SMIC-HS in 3 classes, with a corpus tag per sample.

  python -m fdp_jax.tools.build_dataset --dataset=megc2019 --config=3class_raw_64 --manual_dir=DIR

DIR holds the three licensed corpora side by side, each laid out as its own builder expects:
  DIR/casme2/…   DIR/samm/…   DIR/smic/…
The reading, relabelling and exclusions are `fdp_jax.corpora.megc2019`'s.
"""

from fdp_jax.corpora import builder
from fdp_jax.corpora import megc2019


class Builder(builder.MECorpusBuilder):
  """MEGC 2019 composite: 442 samples of 68 subjects (SMIC 164, CASME II 145, SAMM 133)."""

  CORPUS = megc2019.CORPUS
  MANUAL_DOWNLOAD_INSTRUCTIONS = megc2019.INSTRUCTIONS
  DESCRIPTION = ('MEGC 2019 composite micro-expression set: CASME II, SAMM and SMIC-HS relabelled '
                 'negative/positive/surprise (fdp_jax/corpora/class_sets.py), aligned grey faces with landmarks.')
  BUILDER_CONFIGS = builder.corpus_configs(megc2019.CORPUS, frames=('raw', 'cropped'))

  def labelled_samples(self, root: str):
    return megc2019.labelled_samples(root, self.builder_config.frames)
