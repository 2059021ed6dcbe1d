"""FDP model sizes shared by the configs: the released widths/depths and a CPU-sized one. The encoder's keys
are the fields of `fdp_jax.models.lgfat.EncoderSpec`; the others those of `fdp_jax.models.fdp.FDP`."""

import ml_collections

from configs import base


def fdp_model(size: str = 'small') -> ml_collections.ConfigDict:
  """`size='released'`: Next-ViT widths of the release; `size='small'`: trains in minutes on 2 CPU cores."""
  m = base.model_defaults('fdp')   # name 'fdp', variant 'paper': the paper design (fdp_jax.models.fdp)
  # 'paper': every stage is `depth` LFA blocks then one GFA block; 'released': LFA only, as the released code
  # runs.
  m.block_layout = 'paper'
  # 'rank' (rank scorer + approximate rank pooling at the soft ranks), 'arp' (plain approximate rank
  # pooling), 'static' (centre frame only: the single-frame baseline), 'conv3d_released' (the release's
  # learned Conv3d pooling, its kernel spanning all frames).
  m.temporal_pooling = 'rank'
  m.head_dim = 8
  m.mix_ratio = 0.75            # share of a GFA block's width given to E-MHSA
  m.lfa_mlp_ratio = 3
  m.gfa_mlp_ratio = 2
  m.dropout = 0.0               # inside the encoder MLPs
  m.head_dropout = 0.3          # before the MER classifier
  if size == 'released':
    m.stem_channels = (64, 32, 64)
    m.depths = (3, 4, 10, 3)
    m.channels = (96, 192, 384, 768)
    m.gfa_channels = (128, 256, 512, 1024)
    m.sr_ratios = (8, 4, 2, 1)
    m.drop_path_rate = 0.1
    m.feature_dim = 512
    m.head_hidden = 256
    m.decoder_channels = (256, 128, 64, 32, 16)
  elif size == 'small':
    # One stage, so the final map is 16×16 at 64 px: sub-pixel AU motion has to survive to the pooled
    # representation (a second stride-2 stage learned markedly slower on the synthetic corpus). GFA widths
    # use the head_dim fallback of `lgfat.gfa_split` (48 → 40 attention + 8 conv).
    m.stem_channels = (16, 16, 16)
    m.depths = (1,)
    m.channels = (32,)
    m.gfa_channels = (48,)
    m.sr_ratios = (4,)
    # No stochastic depth or head dropout: within a CPU-sized schedule they only slowed learning
    # (benchmarks/README.md).
    m.drop_path_rate = 0.0
    m.head_dropout = 0.0
    m.feature_dim = 64
    m.head_hidden = 64
    m.decoder_channels = (16, 8)
  else:
    raise ValueError(f"unknown FDP size {size!r}: use 'small' or 'released'")
  return m


def released_fdp_model() -> ml_collections.ConfigDict:
  """FDP exactly as released (`fdp_jax.models.fdp_released`): LFA-only encoder, (B, 8, 4096) frame
  features reshaped into a 64×64×8 volume, CLS_Net, SegNet. Loads converted PyTorch weights
  (`python -m fdp_jax.tools.convert`); 64×64 frames and 8 of them only."""
  m = base.model_defaults('fdp')
  m.variant = 'released'
  m.block_layout = 'released'   # the encoder has no GFA blocks, as in the release
  m.stem_channels = (64, 32, 64)
  m.depths = (3, 4, 10, 3)
  m.channels = (96, 192, 384, 768)
  m.drop_path_rate = 0.1
  m.dropout = 0.0
  m.feature_dim = 4096
  m.segnet_channels = (64, 128, 256, 512, 512)
  return m
