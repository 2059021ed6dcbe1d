"""samm_lv: SAMM Long Videos (Yap et al., 2020), micro- and macro-expression spotting, from a licensed local
copy.

  python -m fdp_jax.tools.build_dataset --dataset=samm_lv --config=raw_64_step7 --manual_dir=DIR
"""

from fdp_jax.corpora import long_builder
from fdp_jax.corpora import samm_lv


class Builder(long_builder.LongVideoBuilder):
  """SAMM-LV: whole 200-fps videos of 30 subjects with every micro- and macro-expression interval."""

  CORPUS = samm_lv.CORPUS
  READER = samm_lv
  MANUAL_DOWNLOAD_INSTRUCTIONS = samm_lv.INSTRUCTIONS
  DESCRIPTION = ('SAMM Long Videos: one record per video folder of SAMM_longvideos (ids 006_1, subjects 006), '
                 'aligned grey faces with dlib landmarks and a face-present flag per frame, and the micro- '
                 'and macro-expression intervals of SAMM_LongVideos_V*_Release.xlsx as frame indices. The '
                 'default config keeps every 7th frame (≈ 28.6 fps, the rate SoftNet spots at); raw_64 keeps '
                 'all 200 fps. Videos no annotation row names are kept without intervals.')
  # Step 7 first: the default. At 200 fps one video is tens of thousands of frames.
  BUILDER_CONFIGS = long_builder.long_configs(frame_steps=(7, 1))
