"""MOL as released, with the released recipe, on SAMM, 5 classes; LOSO.

  python launch.py --config=configs/mol_samm.py
  python launch.py --config=configs/mol_samm.py:mer_only    # the flow/landmark-free ablation
Build the corpus first, with flow at 144 px (README, "Real corpora"):
  python -m fdp_jax.tools.build_dataset --dataset=samm --config=5class_raw_144_flow --manual_dir=DIR
"""

from configs import arguments, mol_recipe

ARGUMENTS = {None: 'MOL as released', 'mer_only': 'the flow/landmark-free ablation'}


def get_config(arg: str | None = None):
  arg = arguments.check(__file__, arg, ARGUMENTS)
  config = mol_recipe.mol_config('samm', '5class_raw_144_flow', 5)
  return mol_recipe.without_auxiliary_tasks(config) if arg == 'mer_only' else config
