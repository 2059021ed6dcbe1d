"""Frame sampling, augmentation, dynamic-image targets, padded evaluation batches and fold isolation."""

import numpy as np
import pytest

from configs import synthetic
from fdp_jax import config_checks, input_pipeline
from fdp_jax.cv.folds import loso_folds, select_folds
from fdp_jax.preprocess.dynamic_image import dynamic_image_uint8


def _record(i, subject, label, n=20, size=40):
  rng = np.random.default_rng(i)
  frames = rng.integers(0, 256, size=(n, size, size, 1), dtype=np.uint8)
  frames[:, 0, 0, 0] = np.arange(n)   # frame number written into a pixel, to check which were sampled
  return {'sample_id': f'{subject}/c{i}'.encode(), 'subject': subject.encode(), 'label': label,
          'frames': frames, 'onset': 3, 'apex': 7, 'offset': 15}


@pytest.fixture
def source():
  return [_record(i, f's{i % 3}', i % 5) for i in range(11)]


@pytest.fixture
def data_config():
  cfg = synthetic.get_config().data
  cfg.image_size = 32
  cfg.num_frames = 4
  cfg.frame_reference = 'none'
  return cfg


def test_released_rule_is_i_times_n_div_t_and_offsets_stay_in_window():
  np.testing.assert_array_equal(input_pipeline.sample_frame_indices(20, 8, 'released'), np.arange(8) * 2)
  rng = np.random.default_rng(0)
  seen = {tuple(input_pipeline.sample_frame_indices(20, 8, 'released', rng)) for _ in range(50)}
  assert seen == {tuple(np.arange(8) * 2), tuple(np.arange(8) * 2 + 1)}
  # shorter than T: frames repeat, never out of range
  np.testing.assert_array_equal(input_pipeline.sample_frame_indices(3, 6, 'released'), [0, 0, 1, 1, 2, 2])


def test_segment_sampling_is_chronological_and_within_segments():
  np.testing.assert_array_equal(input_pipeline.sample_frame_indices(16, 4, 'segments'), [2, 6, 10, 14])
  rng = np.random.default_rng(1)
  for _ in range(100):
    idx = input_pipeline.sample_frame_indices(17, 4, 'segments', rng)
    assert np.all(np.diff(idx) >= 0) and idx.min() >= 0 and idx.max() <= 16
    edges = np.arange(5) * 17 / 4
    assert np.all((np.floor(edges[:-1]) <= idx) & (idx < edges[1:]))
  with pytest.raises(ValueError, match='unknown frame sampling'):
    input_pipeline.sample_frame_indices(10, 4, 'random')


def test_evaluation_views_sample_other_positions_of_each_segment():
  assert input_pipeline.view_positions(1) == [None]
  assert input_pipeline.view_positions(4) == [0.125, 0.375, 0.625, 0.875]
  with pytest.raises(ValueError, match='num_views'):
    input_pipeline.view_positions(0)
  # 16 frames in 4 segments of 4: position p takes frame ⌊4p⌋ of each segment
  np.testing.assert_array_equal(input_pipeline.sample_frame_indices(16, 4, 'segments', position=0.125),
                                [0, 4, 8, 12])
  np.testing.assert_array_equal(input_pipeline.sample_frame_indices(16, 4, 'segments', position=0.875),
                                [3, 7, 11, 15])
  # the released rule: offset ⌊p · (n // T)⌋; no position keeps the release's own frames
  np.testing.assert_array_equal(input_pipeline.sample_frame_indices(24, 8, 'released', position=0.9),
                                np.arange(8) * 3 + 2)
  np.testing.assert_array_equal(input_pipeline.sample_frame_indices(24, 8, 'released'), np.arange(8) * 3)


def test_eval_transform_samples_the_onset_offset_window_and_builds_targets(source, data_config):
  data_config.crop_scale = 1.0
  ex = input_pipeline.ClipTransform(data_config, train=False)({**source[0], '_index': 0})
  assert ex['frames'].shape == (4, 32, 32, 1) and ex['frames'].dtype == np.float32
  assert -1.0 <= ex['frames'].min() and ex['frames'].max() <= 1.0
  assert ex['dynamic_image'].shape == (32, 32) and 0 <= ex['dynamic_image'].min() <= ex['dynamic_image'].max() <= 1
  assert ex['frame_mask'].all() and ex['mask'] and ex['label'] == 0
  # window onset 3 .. offset 15 (13 frames) in 4 segments → centres 1, 4, 8, 11 → frames 4, 7, 11, 14
  raw = source[0]['frames'][[4, 7, 11, 14], :, :, 0]
  resized = input_pipeline._resize(raw, 32).astype(np.float32) / 255
  np.testing.assert_allclose(ex['frames'][..., 0], (resized - 0.5) / 0.5, atol=1e-6)
  np.testing.assert_allclose(ex['dynamic_image'], dynamic_image_uint8(resized) / 255.0, atol=1e-6)


def test_train_transform_is_random_but_reproducible(source, data_config):
  t = input_pipeline.ClipTransform(data_config, train=True)
  rec = {**source[1], '_index': 1}
  a = t(rec, np.random.default_rng(5))
  b = t(rec, np.random.default_rng(5))
  c = [t(rec, np.random.default_rng(s))['frames'] for s in range(6)]
  np.testing.assert_array_equal(a['frames'], b['frames'])
  assert any(not np.array_equal(c[0], x) for x in c[1:])


def test_eval_batches_pad_and_mask_every_record_once(source, data_config):
  idx = [0, 2, 4, 5, 7]
  batches = list(input_pipeline.eval_batches(source, idx, data_config, batch_size=2))
  assert len(batches) == 3 and all(b['frames'].shape[0] == 2 for b in batches)
  mask = np.concatenate([b['mask'] for b in batches])
  index = np.concatenate([b['index'] for b in batches])
  np.testing.assert_array_equal(mask, [1, 1, 1, 1, 1, 0])
  assert sorted(index[mask].tolist()) == idx


def test_train_iterator_draws_only_training_records(source, data_config):
  fold = loso_folds([s['subject'].decode() for s in source])[0]
  it = input_pipeline.train_iterator(source, fold.train_indices, data_config, batch_size=3, seed=0,
                                     num_threads=1)
  seen = np.concatenate([next(it)['index'] for _ in range(10)])
  assert set(seen.tolist()) == set(fold.train_indices.tolist())


def test_loso_folds_have_no_subject_leakage():
  subjects = ['b', 'a', 'c', 'a', 'b', 'b']
  folds = loso_folds(subjects)
  assert [f.subject for f in folds] == ['a', 'b', 'c'] and [f.number for f in folds] == [0, 1, 2]
  for f in folds:
    assert {subjects[i] for i in f.test_indices} == {f.subject}
    assert f.subject not in {subjects[i] for i in f.train_indices}
    assert len(f.train_indices) + len(f.test_indices) == len(subjects)
  with pytest.raises(ValueError, match='unknown subjects'):
    select_folds(folds, 'z')
  assert [f.number for f in select_folds(folds, ' c')] == [2]


def test_released_per_split_normalisation_centres_and_scales_the_split(source, data_config):
  indices = [0, 3, 4, 7]
  shift, scale = input_pipeline.split_statistics(source, indices, data_config)
  data_config.normalization = 'released_per_split'
  norm = input_pipeline.normalization_for(source, indices, data_config)
  assert norm == (shift, scale)
  batch = next(input_pipeline.eval_batches(source, indices, data_config, 4, norm))
  np.testing.assert_allclose(batch['frames'].mean(), 0.0, atol=1e-5)
  np.testing.assert_allclose(batch['frames'].max(), 1.0, rtol=1e-6)
  plain = next(input_pipeline.eval_batches(source, indices, data_config, 4))
  np.testing.assert_allclose(batch['frames'], (plain['frames'] - shift) / scale, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(batch['dynamic_image'], plain['dynamic_image'])   # targets untouched
  data_config.normalization = 'standard'
  assert input_pipeline.normalization_for(source, indices, data_config) is None
  data_config.normalization = 'zscore'
  with pytest.raises(ValueError, match='zscore'):
    input_pipeline.normalization_for(source, indices, data_config)


@pytest.mark.parametrize('rule', ['clip_mean', 'first'])
def test_reference_frame_removes_appearance_and_keeps_motion(source, data_config, rule):
  data_config.frame_reference, data_config.reference_gain = rule, 3.0
  record = {**source[0], '_index': 0}
  raw = input_pipeline.ClipTransform(data_config, train=False)(record)
  data_config.frame_reference = 'none'
  plain = input_pipeline.ClipTransform(data_config, train=False)(record)
  x = plain['frames'][..., 0]
  want = 3.0 * (x - (x.mean(0, keepdims=True) if rule == 'clip_mean' else x[:1]))
  np.testing.assert_allclose(raw['frames'][..., 0], want, atol=1e-5)
  np.testing.assert_allclose(raw['dynamic_image'], plain['dynamic_image'])  # the target stays the raw one
  # A still clip (appearance only, no motion) becomes all zeros.
  still = {**record, 'frames': np.repeat(record['frames'][:1], 20, axis=0)}
  data_config.frame_reference = rule
  assert np.abs(input_pipeline.ClipTransform(data_config, train=False)(still)['frames']).max() == 0


def test_unknown_reference_and_static_baseline_with_reference_are_refused(source, data_config):
  data_config.frame_reference = 'median'
  with pytest.raises(ValueError, match='frame_reference'):
    input_pipeline.ClipTransform(data_config, train=False)({**source[0], '_index': 0})
  config = synthetic.get_config()
  config.model.temporal_pooling = 'static'
  with pytest.raises(config_checks.ConfigError, match='single-frame baseline'):
    config_checks.check_before_work(config)
  config_checks.check_before_work(synthetic.get_config('static'))  # the baseline config
  assert synthetic.get_config('static').data.frame_reference == 'none'
