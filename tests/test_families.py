"""`families.Family` carries what differs between FDP, MOL and the spotter: its modules return their outputs dict
themselves, and the converter, the aggregate's lines, the step after the folds and the prediction picture are
the family's own."""

import jax
import jax.numpy as jnp
import pytest

from configs import mol_synthetic, spot_synthetic, synthetic, synthetic_released
from fdp_jax import families, run_results
from fdp_jax.models import released_weights
from fdp_jax.models.fdp_released import ReleasedFDP
from fdp_jax.models.mol import MOL

CONFIGS = {'fdp': synthetic.get_config, 'fdp_released': synthetic_released.get_config,
           'mol': lambda: mol_synthetic.get_config('small'), 'spotter': spot_synthetic.get_config}


def test_every_family_is_reached_from_its_configs():
  for name, get_config in CONFIGS.items():
    assert families.family(get_config().model).name == name


def test_mol_module_returns_its_outputs_dict():
  config = mol_synthetic.get_config('small')
  model = families.build_model(config.model, 3, 64)
  frames = jax.ShapeDtypeStruct((2, 4, 64, 64, 1), jnp.float32)
  out = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x, train=False)[0], frames)
  assert {k: v.shape for k, v in out.items()} == {'logits': (2, 3), 'flow': (2, 3, 64, 64, 2),
                                                  'landmarks': (2, 3, 68, 2)}


def test_the_converter_knows_exactly_the_families_released_weights():
  carried = {f.released_weights.name: f for f in families.FAMILIES.values() if f.released_weights}
  assert carried.keys() == released_weights.RELEASED.keys() == {'fdp', 'mol'}
  assert carried['fdp'].name == 'fdp_released' and carried['mol'].name == 'mol'
  assert all(carried[name].released_weights is weights for name, weights in released_weights.RELEASED.items())
  assert isinstance(released_weights.released_model('fdp'), ReleasedFDP)
  assert isinstance(released_weights.released_model('mol'), MOL)
  with pytest.raises(ValueError, match='knows'):
    released_weights.released_model('spotter')


def test_only_mol_adds_aggregate_lines_and_only_where_it_has_its_values():
  aggregate = {'flow_epe': 0.5, 'flow_epe_moving': 0.75, 'landmark_nme': 0.0625}
  lines = families.aggregate_lines(aggregate)
  assert lines == families.FAMILIES['mol'].aggregate_lines(aggregate)
  assert lines == ['MOL auxiliary tasks over all test clips: flow end-point error 0.500 px (0.750 px on moving '
                   'pixels), landmark NME 0.0625 (mean error / inter-pupil distance).']
  assert families.aggregate_lines({'uf1': 0.5}) == []
  assert all(f.aggregate_lines(aggregate) == [] for name, f in families.FAMILIES.items() if name != 'mol')


def test_markdown_table_prints_the_family_lines():
  results = {'folds': [], 'selection': 'end_of_schedule',
             'aggregate': {'num_folds': 1, 'num_samples': 2, 'uf1': 0.5, 'uar': 0.5, 'wf1': 0.5, 'war': 0.5,
                           'accuracy': 0.5, 'flow_epe': 0.5, 'landmark_nme': 0.0625}}
  assert 'flow end-point error 0.500 px, landmark NME 0.0625' in run_results.markdown_table(results)


def test_after_folds_runs_mol_evidence_only_for_mol_with_its_targets():
  results = {'aggregate': {}}
  for name in ('fdp', 'fdp_released', 'spotter'):
    assert families.FAMILIES[name].after_folds(None, '/nonexistent', results, None) == {}
  config = mol_synthetic.get_config('small')
  config.data.targets = 'mer'
  assert families.family(config.model).after_folds(config, '/nonexistent', results, None) == {}


def test_what_each_family_shows_and_does():
  pictures = {name: f.prediction_picture for name, f in families.FAMILIES.items()}
  assert pictures == {'fdp': 'dynamic_image', 'fdp_released': 'dynamic_image', 'mol': 'flow_landmarks',
                      'spotter': None}
  assert [name for name, f in families.FAMILIES.items() if not f.recognition] == ['spotter']
