"""Every default lives in configs/base.py: a config file's config has every key there (so every key is read by
attribute, never with a second default), and a config that lacks keys — a run directory's config.json from
before the keys existed — is completed with their neutral values, which are what the code ran before they were
options."""

import importlib

import ml_collections
import pytest

from configs import base, mol_recipe, spot_recipe, synthetic
from test_config_arguments import LAUNCHABLE


def _keys(tree, prefix=''):
  keys = set()
  for key, value in tree.items():
    keys |= _keys(value, f'{prefix}{key}.') if isinstance(value, (dict, ml_collections.ConfigDict)) else {prefix + key}
  return keys


def _defaults(config) -> ml_collections.ConfigDict:
  full = base.base_config('b', 'c', 1)
  full.model = base.model_defaults(config.model.name)
  full.loss = base.loss_defaults(config.model.name)
  return full


@pytest.mark.parametrize('name', LAUNCHABLE)
def test_every_config_file_has_every_default_key(name):
  module = importlib.import_module(f'configs.{name}')
  for arg in module.ARGUMENTS:
    config = module.get_config(arg)
    for each in [config] + ([config.recognizer] if 'recognizer' in config else []):
      assert _keys(_defaults(each)) <= _keys(each), (name, arg, _keys(_defaults(each)) - _keys(each))
    # Completion adds nothing to a config file's config: what a run writes to config.json is unchanged.
    assert base.complete(config).to_dict() == config.to_dict(), (name, arg)


@pytest.mark.parametrize('family', ['fdp', 'mol', 'spotter'])
def test_a_config_completed_from_base_has_every_base_key(family):
  bare = {'data': {'builder': 'synthetic_me', 'builder_config': 'default', 'num_classes': 5},
          'model': {'name': family}, 'train': {'num_steps': 7}}
  config = base.complete(bare)
  assert _keys(_defaults(config)) <= _keys(config)
  assert config.train.num_steps == 7 and config.data.builder == 'synthetic_me'   # its own values stay
  assert config.train.batch_size == base.base_config('b', 'c', 1).train.batch_size
  assert config.loss.class_balance is False and config.task == 'recognition' and not config.compare_ablation


def test_mol_neutral_defaults_are_the_release_wiring():
  model, loss = base.model_defaults('mol'), base.loss_defaults('mol')
  assert (model.width, model.landmark_units, model.pair_batch_norm, model.correlation_patch) == (1.0, 'pixels',
                                                                                                  True, 21)
  assert (model.mer_reference, model.mer_norm, model.f5c_layer_scale) == ('none', False, False)
  assert (loss.mer, loss.flow, loss.landmarks, loss.class_balance) == (1.0, 10.0, 0.5, False)
  # The MOL recipe is those defaults: no model or loss value restated.
  config = mol_recipe.mol_config('synthetic_me', 'mol', 5)
  assert config.model.to_dict() == model.to_dict() and config.loss.to_dict() == loss.to_dict()
  assert base.model_defaults('fdp').variant == 'paper'
  with pytest.raises(ValueError, match='unknown model name'):
    base.model_defaults('resnet')


def test_a_spotting_configs_recogniser_is_completed_too():
  config = spot_recipe.spot_config('synthetic_long', 'default', synthetic.get_config()).to_dict()
  del config['recognizer']['data']['stabilise'], config['model']['dropout']
  completed = base.complete(config)
  assert completed.recognizer.data.stabilise == 'none'
  assert 'dropout' not in completed.model   # a recipe's value, not a neutral default: never made up
