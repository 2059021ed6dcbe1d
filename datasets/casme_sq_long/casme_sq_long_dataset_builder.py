"""casme_sq_long: CAS(ME)² (Qu et al., 2018) whole videos with their micro- and macro-expression intervals,
for spotting, from a licensed local copy.

  python -m fdp_jax.tools.build_dataset --dataset=casme_sq_long --config=raw_64 --manual_dir=DIR
"""

from fdp_jax.corpora import casme_sq_long
from fdp_jax.corpora import long_builder


class Builder(long_builder.LongVideoBuilder):
  """CAS(ME)²: whole 30-fps videos of 22 subjects with every micro- and macro-expression interval."""

  CORPUS = casme_sq_long.CORPUS
  READER = casme_sq_long
  MANUAL_DOWNLOAD_INSTRUCTIONS = casme_sq_long.INSTRUCTIONS
  DESCRIPTION = ('CAS(ME)² long videos: one record per whole-video frame folder of rawpic/ (or cropped/) '
                 '(ids s15/15_0101disgustingteeth, subjects s15..s40, the frame folder ids), aligned grey faces '
                 'with dlib landmarks and a face-present flag per frame, and every interval of the code '
                 'workbook, micro- and macro-expression, as frame indices (offset 0 = unknown: apex mirrored). '
                 'Videos no annotation row names are kept without intervals.')
  BUILDER_CONFIGS = long_builder.long_configs(frames=('raw', 'cropped'))
