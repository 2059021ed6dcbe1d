"""casme3_long: CAS(ME)³ Part A (Li et al., 2022) whole videos with their micro- and macro-expression
intervals, for spotting, from a licensed local copy.

  python -m fdp_jax.tools.build_dataset --dataset=casme3_long --config=raw_64 --manual_dir=DIR
"""

from fdp_jax.corpora import casme3_long
from fdp_jax.corpora import long_builder


class Builder(long_builder.LongVideoBuilder):
  """CAS(ME)³ Part A: 13 colour videos a–m per subject at 30 fps with every micro- and macro-expression."""

  CORPUS = casme3_long.CORPUS
  READER = casme3_long
  MANUAL_DOWNLOAD_INSTRUCTIONS = casme3_long.INSTRUCTIONS
  DESCRIPTION = ('CAS(ME)³ Part A long videos: one record per whole-video colour folder (ids spNO.1/a, '
                 'subjects spNO.<n>), aligned grey faces with dlib landmarks and a face-present flag per '
                 'frame, and the intervals of cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx (micro) and of the '
                 'macro-expression workbook (macro) as frame indices. Videos no annotation row names are kept '
                 'without intervals; the ME-clip packages are not read (they are not long videos).')
  BUILDER_CONFIGS = long_builder.long_configs()
