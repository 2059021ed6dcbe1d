"""Spot-then-recognise on the embedded synthetic long videos (`synthetic_long/default`), LOSO.

  python launch.py --config=configs/spot_synthetic.py
  python launch.py --config=configs/spot_synthetic.py --config.recognizer_workdir=runs/<a synthetic.py run>

The recogniser is configs/synthetic.py (FDP, the same synthetic faces: `synthetic_long` subject s03 is
`synthetic_me` subject s03), trained in the same run on the folds of the spotting subjects unless
`recognizer_workdir` names a finished run.
"""

from configs import arguments, spot_recipe, synthetic

ARGUMENTS = {None: ''}


def get_config(arg: str | None = None):
  arguments.check(__file__, arg, ARGUMENTS)
  config = spot_recipe.spot_config('synthetic_long', 'default', synthetic.get_config())
  config.settings_chosen_on = ('synthetic_long/dev (8 other subjects): frame size, frame reference, frames per '
                               'snippet and the threshold rule (benchmarks/choose_spotting.py); the schedule '
                               'was set without a comparison')
  return config
