"""Config errors stop a run before any work starts (no corpus build, no compilation, no run directory), with
a message that names the key and says what to set."""

import os
import subprocess
import sys

import pytest

from conftest import REPO, tiny_config
from fdp_jax import config_checks, data_sources, experiment


def _launch(tmp_path, *flags):
  done = subprocess.run([sys.executable, 'launch.py', f'--workdir={tmp_path / "run"}', *flags], cwd=REPO,
                        capture_output=True, text=True, timeout=120,
                        env=dict(os.environ, TFDS_DATA_DIR=str(tmp_path / 'tfds')))
  assert done.returncode == 1, done.stderr[-2000:]
  assert 'Traceback' not in done.stderr
  assert not (tmp_path / 'run').exists() and not (tmp_path / 'tfds').exists()   # no work started
  return done.stderr


@pytest.mark.parametrize('config_flag', [[], ['--config=configs/casme2.py']])
def test_unknown_key_on_the_command_line(tmp_path, config_flag):
  err = _launch(tmp_path, *config_flag, '--config.train.nmu_steps=3')
  assert "--config.train.nmu_steps names a key the config does not have (did you mean 'num_steps'?)" in err


def test_wrong_type_on_the_command_line(tmp_path):
  err = _launch(tmp_path, '--config.train.num_steps=abc')
  assert "flag --config.train.num_steps=abc: invalid literal for int()" in err


def test_unknown_choice_and_bad_ranges_stop_before_work(tiny_data_dir, tmp_path):
  for key, value, message in [
      ('data.window', 'bogus', "unknown data.window 'bogus': use 'onset_offset' or 'whole'"),
      ('data.frame_sampling', 'every', "unknown frame sampling rule 'every'"),
      ('data.frame_reference', 'median', "unknown data.frame_reference 'median'"),
      ('train.optimizer', 'sgd', "unknown train.optimizer 'sgd'"),
      ('train.num_steps', 0, 'train.num_steps must be an integer ≥ 1, got 0'),
      ('cv.checkpoint_every_steps', 3, 'cv.checkpoint_every_steps (3) must be a multiple of '
                                       'train.log_every_steps (2)'),
      ('train.learning_rate', -1e-3, 'train.learning_rate must be > 0'),
      ('train.ema_decay', 1.0, 'train.ema_decay must be in [0, 1)'),
      ('train.compute_dtype', 'float16', "unknown train.compute_dtype 'float16'"),
      ('train.conv_routing', 'winograd', "unknown conv routing 'winograd'"),
      ('cv.protocol', 'kfold', "unknown cv.protocol 'kfold'")]:
    config = tiny_config(tiny_data_dir, log_every_steps=2)
    section, name = key.split('.')
    config[section][name] = value
    workdir = tmp_path / name
    with pytest.raises(SystemExit) as e:
      experiment.main(config, str(workdir))
    assert message in str(e.value.code), key
    assert not workdir.exists(), key


def test_more_frames_than_the_shortest_clip_stops_before_work(tiny_data_dir, tmp_path):
  config = tiny_config(tiny_data_dir)
  _, index, _ = data_sources.load_corpus(config.data)
  shortest = int(index.window_lengths.min())
  config.data.num_frames = shortest + 1
  with pytest.raises(SystemExit) as e:
    experiment.main(config, str(tmp_path / 'run'))
  message = str(e.value.code)
  assert f'data.num_frames={shortest + 1} is larger than' in message
  short = index.sample_ids[int(index.window_lengths.argmin())]
  assert f'{short} ({shortest})' in message                           # names the clips and their lengths
  assert f'--config.data.num_frames={shortest}' in message and 'allow_short_clips=True' in message
  assert not (tmp_path / 'run').exists()
  config.data.allow_short_clips = True                                 # the stated way to accept them
  config_checks.check_against_corpus(config, index)
  config.data.num_frames = shortest
  config.data.allow_short_clips = False
  config_checks.check_against_corpus(config, index)


def test_class_count_mismatch_names_the_fix(tiny_data_dir, tmp_path):
  config = tiny_config(tiny_data_dir)
  config.data.num_classes = 3
  with pytest.raises(SystemExit, match=r'--config.data.num_classes=5'):
    experiment.main(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()


def test_every_config_of_a_run_is_validated_once_before_work(monkeypatch):
  """The config, its selection candidates, a MOL run's MER-only ablation and the recogniser a spotting run
  trains: each checked exactly once, by `experiment.check_run`, before anything starts."""
  from configs import mol_synthetic, spot_synthetic, synthetic
  checked = []
  check = config_checks.check_before_work
  monkeypatch.setattr(config_checks, 'check_before_work', lambda c: (checked.append(c), check(c)))

  config = mol_synthetic.get_config('small')
  experiment.check_run(config)
  assert [c.loss.flow for c in checked] == [config.loss.flow, 0.0]
  checked.clear()
  spotting = spot_synthetic.get_config()
  experiment.check_run(spotting)
  assert [c.model.name for c in checked] == ['spotter', 'fdp']
  checked.clear()
  config = synthetic.get_config()
  config.cv.selection, config.cv.selection_grid = 'inner_loso', 'train.learning_rate=1e-2|train.num_steps=9'
  experiment.check_run(config)
  assert [(c.train.learning_rate, c.train.num_steps) for c in checked] == [(1e-3, 180), (1e-2, 180), (1e-3, 9)]


def test_a_bad_recogniser_stops_a_spotting_run_before_work(tmp_path):
  """The recogniser a spotting run trains after its spotter is refused before the spotter starts."""
  from configs import spot_synthetic
  config = spot_synthetic.get_config()
  config.recognizer.train.num_steps = 0
  with pytest.raises(SystemExit) as e:
    experiment.main(config, str(tmp_path / 'run'))
  assert 'train.num_steps must be an integer ≥ 1, got 0' in str(e.value.code)
  assert not (tmp_path / 'run').exists()
