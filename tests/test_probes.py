"""Linear probes: the frames each feature takes, a fit that sees only its fold's training clips, and a LOSO run
written like a training run's."""

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_config
from fdp_jax.tools import probes


def test_features_take_the_centre_frame_or_apex_minus_onset():
  frames = np.arange(10, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 1), np.uint8) * 20
  record = {'frames': frames, 'onset': 2, 'apex': 5, 'offset': 8}
  np.testing.assert_allclose(probes.clip_feature(record, 'centre_frame', 4), 100 / 127.5 - 1)      # frame 5
  np.testing.assert_allclose(probes.clip_feature(record, 'apex_minus_onset', 4), (100 - 40) / 127.5)
  assert probes.clip_feature(record, 'centre_frame', 2).shape == (4,)
  with pytest.raises(ValueError, match='apex_minus_onset'):
    probes.clip_feature(record, 'optical_flow', 4)


def test_fit_separates_training_clips_and_ignores_held_out_ones():
  rng = np.random.default_rng(0)
  labels = np.repeat(np.arange(3), 10).astype(np.int32)
  x = rng.normal(0, 1, (30, 6)).astype(np.float32)
  x[np.arange(30), labels] += 3.0                        # class c pushes pixel c
  weights = np.ones(30, np.float32)
  weights[::5] = 0                                       # the held-out clips
  p = np.asarray(probes.fit_predict(jnp.asarray(x), jnp.asarray(labels), jnp.asarray(weights), 3, 1e-2))
  assert (p.argmax(-1) == labels)[weights > 0].mean() == 1.0
  np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
  moved = x.copy()
  moved[::5] += 50.0                                     # held-out clips change: the fit must not
  flipped = labels.copy()
  flipped[::5] = (flipped[::5] + 1) % 3
  q = np.asarray(probes.fit_predict(jnp.asarray(moved), jnp.asarray(flipped), jnp.asarray(weights), 3, 1e-2))
  np.testing.assert_allclose(q[weights > 0], p[weights > 0], atol=1e-5)


def test_probe_loso_writes_results_like_a_run(tiny_data_dir, tmp_path):
  config = tiny_config(tiny_data_dir)
  results = probes.run_probe(config, 'apex_minus_onset', str(tmp_path))
  with open(os.path.join(tmp_path, 'results.json')) as f:
    assert json.load(f) == json.loads(json.dumps(results))
  assert results['model'] == {'name': 'linear_probe', 'feature': 'apex_minus_onset', 'l2': probes.DEFAULT_L2,
                              'iterations': probes.ITERATIONS}
  assert [f['subject'] for f in results['folds']] == ['s00', 's01', 's02', 's03']
  assert results['aggregate']['complete'] and results['aggregate']['num_samples'] == 40
  for f in results['folds']:
    assert all(sid.startswith(f['subject'] + '/') for sid in f['sample_ids'])
  assert os.path.exists(os.path.join(tmp_path, 'report.md'))
