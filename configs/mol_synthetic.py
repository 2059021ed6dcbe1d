"""MOL on the synthetic corpus (its `mol` builder config: 128-px faces with exact flow and landmarks), LOSO.

  python launch.py --config=configs/mol_synthetic.py:small   # MOL for CPUs, then its MER-only ablation
  python launch.py --config=configs/mol_synthetic.py         # MOL as released (hours on a CPU)
  python launch.py --config=configs/mol_synthetic.py:mer_only   # the released network's flow/landmark-free ablation
  python launch.py --config=configs/mol_synthetic.py:small_mer_only   # the small ablation alone
  python launch.py --config=configs/mol_synthetic.py --config.cv.subjects=s00,s03,s09   # three folds

As released, a CPU-sized schedule: batch 4, 120 steps per fold, lr 3e-4 with warm-up and cosine decay (the
released recipe, batch 32 × 1000 steps, takes hours per fold on a 2-core CPU). The faces are stored at 128
px, so there is no 144 → 128 crop (crop_scale 1).

`small`: the same structure (conv stack, F5C = FCC + CCC, FlowNetC with its correlation, landmark head, 3D-CNN
MER head, the same three losses) at a quarter of every channel count on 64-px frames (8×8 F5C maps), with
the settings that let its heads learn (benchmarks/README.md, "MOL on the synthetic corpus" and "Why MOL
collapses"): landmark outputs centred in half-sides, the flow MSE measured in units of the corpus's flow
spread, a MER path that reads motion (the release's collapses to one class), each frame registered to its
clip's mean frame, lr 3e-3, 400 steps. After MOL it trains the MER-only ablation (same folds, steps and
seed) and prints both beside the flow and landmark references. To see the release's collapse at this size:
`--config.model.mer_reference=none --config.model.mer_norm=False --config.model.f5c_layer_scale=False
--config.model.dropout=0.5 --config.data.stabilise=none`.
"""

from configs import arguments, mol_recipe

ARGUMENTS = {None: 'MOL as released', 'mer_only': 'the flow/landmark-free ablation',
             'small': 'MOL for CPUs (width 1/4, 64 px), then its MER-only ablation',
             'small_mer_only': 'the small MER-only ablation alone'}

# The flow between consecutive sampled frames at 64 px of the `mol_dev` corpus (1.2.0, each frame aligned on
# its own): standard deviation 0.26 px over every pixel of every pair (0.25 on `mol`; 0.058 on 1.1.0,
# aligned once per clip; 0.084 once `small` registers the frames). The small model's flow loss is the MSE in
# this unit, 10 × MSE / unit²: the release's 10 × pixel MSE on sub-pixel flows has gradients at Adam's ε
# (median 7.6e-9 over the flow net at initialisation on 1.1.0), and the flow head barely moves. In units of
# the registered spread (10× the weight) the flow head did no better on `mol_dev` and the landmarks worse.
SMALL_FLOW_UNIT = 0.26


def get_config(arg: str | None = None):
  arg = arguments.check(__file__, arg, ARGUMENTS)
  config = mol_recipe.mol_config('synthetic_me', 'mol', 5)
  config.data.crop_scale = 1.0
  config.train.batch_size = 4
  config.train.num_steps = 120
  config.train.learning_rate = 3e-4
  config.train.schedule = 'warmup_cosine'
  config.train.warmup_steps = 10
  config.train.end_lr_factor = 0.05
  config.train.grad_clip_norm = 1.0
  config.settings_chosen_on = ('the CPU-sized schedule (batch, steps, learning rate) was set by hand on this '
                               'corpus\'s own folds, not on a separate development corpus')
  config.train.log_every_steps = 10
  config.loss.class_balance = True
  config.compare_ablation = False
  if arg in ('small', 'small_mer_only'):
    small(config)
    config.compare_ablation = arg == 'small'
  return mol_recipe.without_auxiliary_tasks(config) if arg in ('mer_only', 'small_mer_only') else config


def small(config) -> None:
  """MOL for CPUs (see the module docstring)."""
  config.data.image_size = 64
  config.model.width = 0.25
  config.model.landmark_units = 'centred'
  config.model.correlation_patch = 0     # 7×7 on the 8×8 maps: the release's other 392 are always 0
  # The MER path that reads motion (models/mol.py; as released it collapses to one class, benchmarks/README.md
  # "Why MOL collapses"): the F5C maps minus their clip mean, normalised, from F5C blocks that start as the
  # identity, no dropout; each frame registered to its clip's mean frame, which undoes the per-frame
  # alignment error the `mol` corpus carries as the release's pipeline does.
  config.model.mer_reference = 'clip_mean'
  config.model.mer_norm = True
  config.model.f5c_layer_scale = True
  config.model.dropout = 0.0
  config.data.stabilise = 'affine'
  config.loss.flow = 10.0 / SMALL_FLOW_UNIT ** 2
  config.train.learning_rate = 3e-3
  config.train.num_steps = 400
  config.settings_chosen_on = ('the MER path, dropout, frame registration and learning rate on the mol_dev '
                               'corpus (other subjects; benchmarks/mol_collapse.py and two-fold runs, '
                               'benchmarks/README.md "Why MOL collapses"); landmark units and flow-loss scale '
                               "on one batch of clips (benchmarks/mol_heads.py), the flow unit measured on "
                               'mol_dev; width and steps for the CPU budget')
