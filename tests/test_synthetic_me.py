"""Tests of the synthetic micro-expression corpus: the generator and its TFDS builder (`tiny` config)."""

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from datasets.synthetic_me import synthetic_me_dataset_builder as builder_lib
from fdp_jax import schema
from fdp_jax.corpora import face_drawing as fd
from fdp_jax.corpora import face_motion as fm
from fdp_jax.corpora import synthetic_faces as sf

TINY = next(c for c in builder_lib.Builder.BUILDER_CONFIGS if c.name == 'tiny')


def _build(data_dir):
  b = builder_lib.Builder(config='tiny', data_dir=str(data_dir), file_format='array_record')
  b.download_and_prepare()
  src = b.as_data_source()['train']
  records = [src[i] for i in range(len(src))]
  for r in records:  # text comes back as bytes
    for k in ('sample_id', 'corpus', 'subject', 'clip'):
      r[k] = r[k].decode()
  return {r['sample_id']: r for r in records}


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
  return _build(tmp_path_factory.mktemp('tfds'))


def _regenerate(record, **kwargs):
  """Subject, motion and make_clip output for a built record, regenerated independently."""
  subject = fd.make_subject(TINY.seed, int(record['subject'][1:]), TINY.image_size)
  clip, label = int(record['clip'][1:]), int(record['label'])
  args = (subject, clip, label, TINY.seed, TINY.min_frames, TINY.max_frames)
  return subject, fm.make_motion(*args), sf.make_clip(*args, with_flow=True, **kwargs)


def test_builder_name_and_declared_counts(tiny):
  assert builder_lib.Builder.name == 'synthetic_me'
  assert len(tiny) == TINY.num_subjects * TINY.clips_per_subject == 40
  assert {r['subject'] for r in tiny.values()} == {f's{i:02d}' for i in range(TINY.num_subjects)}
  assert {r['corpus'] for r in tiny.values()} == {'synthetic_me'}
  for sid, r in tiny.items():
    assert sid == f"{r['subject']}/{r['clip']}"


def test_labels_cover_every_class_per_subject(tiny):
  by_subject = {}
  for r in tiny.values():
    assert 0 <= r['label'] < len(sf.CLASS_NAMES)
    by_subject.setdefault(r['subject'], []).append(r['label'])
  for labels in by_subject.values():
    counts = np.bincount(labels, minlength=5)
    assert (counts >= 1).all(), counts
    assert counts.argmax() == sf.CLASS_NAMES.index('others')


@pytest.mark.parametrize('n', [10, 24, 50])
def test_allocation_follows_casme2_proportions(n):
  target = np.array(sf.CASME2_CLASS_COUNTS) / sum(sf.CASME2_CLASS_COUNTS)
  orders = []
  for s in range(3):
    labels = sf.allocate_labels(0, s, n)
    counts = np.bincount(labels, minlength=5)
    assert counts.sum() == n and (counts >= 1).all()
    assert np.abs(counts / n - target).max() <= 1 / n + 1e-9
    orders.append(tuple(labels))
  assert len(set(orders)) > 1  # shuffled per subject


def test_records_follow_the_schema(tiny):
  for r in tiny.values():
    schema.check_example(r, TINY.image_size, with_flow=True)
    t = r['frames'].shape[0]
    assert TINY.min_frames <= t <= TINY.max_frames
    assert r['frames'].dtype == np.uint8 and r['frames'].shape == (t, 32, 32, 1)
    assert r['landmarks'].dtype == np.float32 and r['landmarks'].shape == (t, 68, 2)
    assert r['flow'].dtype == np.float32 and r['flow'].shape == (t - 1, 32, 32, 2)
    np.testing.assert_array_equal(r['frame_numbers'], np.arange(t))
    assert 1 <= r['onset'] < r['apex'] < r['offset'] < t  # neutral frames lead in
  assert len({r['frames'].shape[0] for r in tiny.values()}) > 3  # clip lengths vary


def test_intensity_profile_is_asymmetric(tiny):
  for r in list(tiny.values())[:10]:
    _, m, _ = _regenerate(r)
    a, on, ap, off = m.intensity, m.onset, m.apex, m.offset
    assert (a[:on + 1] == 0).all() and a[ap] == 1 and a.argmax() == ap
    assert (np.diff(a[on:ap + 1]) > 0).all() and (np.diff(a[ap:]) < 0).all()
    assert ap - on < off - ap               # fast rise, slow decay
    assert 0.1 <= a[off] <= 0.3             # not back to neutral at offset


def test_deterministic_and_seed_dependent(tiny, tmp_path):
  again = _build(tmp_path)
  for sid, r in tiny.items():
    np.testing.assert_array_equal(r['frames'], again[sid]['frames'])
    np.testing.assert_array_equal(r['flow'], again[sid]['flow'])
  # Any clip regenerates on its own, identical to the built record.
  r = tiny['s02/c005']
  _, _, clip = _regenerate(r)
  for k in ('frames', 'landmarks', 'flow', 'onset', 'apex', 'offset', 'label'):
    np.testing.assert_array_equal(clip[k], r[k])
  subject = fd.make_subject(1, 2, 32)
  other = sf.make_clip(subject, 5, int(r['label']), 1, 12, 18)
  n = min(len(other['frames']), len(r['frames']))
  assert np.abs(other['frames'][:n].astype(int) - r['frames'][:n]).mean() > 5


def test_inverse_map_is_exact():
  subject = fd.make_subject(0, 1, 64)
  m = fm.make_motion(subject, 0, 1, 0, 12, 18)
  grid = fd.pixel_grid(64, 2)
  for t in range(len(m.intensity)):
    assert np.abs(m.forward(m.inverse(grid, t), t) - grid).max() < 1e-4


def test_stored_flow_and_landmarks_are_exact(tiny):
  grid = fd.pixel_grid(32)
  for sid in ('s00/c000', 's03/c009'):
    r = tiny[sid]
    subject, m, _ = _regenerate(r)
    lm = r['landmarks'].astype(np.float64)
    largest_step = 0.0
    for t in range(len(lm) - 1):
      np.testing.assert_allclose(r['flow'][t], m.flow(grid, t), atol=1e-5)
      np.testing.assert_allclose(lm[t], m.forward(subject.landmarks, t), atol=1e-4)
      # Landmark displacement is the flow at the landmark: exactly, and through the stored field.
      step = lm[t + 1] - lm[t]
      assert np.abs(m.flow(lm[t], t) - step).max() < 1e-3
      inside = ((lm[t] >= 0) & (lm[t] <= 31)).all(-1)  # the chin may sit past the last pixel centre
      sampled = np.stack([ndimage.map_coordinates(r['flow'][t, ..., i], [lm[t, inside, 1], lm[t, inside, 0]],
                                                  order=1) for i in (0, 1)], -1)
      assert np.abs(sampled - step[inside]).max() < 0.03
      largest_step = max(largest_step, np.abs(step).max())
    assert largest_step > 0.03   # the check above compares against real motion, not against zero


def _interior_warp_errors(frames, motion, size):
  """Mean |frame t+1 sampled at x + flow(x) - frame t| and the zero-flow baseline, central half."""
  grid = fd.pixel_grid(size)
  inner = (slice(size // 4, 3 * size // 4),) * 2
  warp, zero = [], []
  for t in range(len(frames) - 1):
    pts = grid + motion.flow(grid, t)
    warped = ndimage.map_coordinates(frames[t + 1], [pts[..., 1], pts[..., 0]], order=3, mode='nearest')
    warp.append(np.abs(warped - frames[t])[inner].mean())
    zero.append(np.abs(frames[t + 1] - frames[t])[inner].mean())
  return np.mean(warp), np.mean(zero)


@pytest.mark.parametrize('size, max_ratio', [(32, 0.65), (64, 0.4)])
def test_flow_warps_frame_back(size, max_ratio):
  subject = fd.make_subject(0, 2, size)
  for label in range(5):
    m = fm.make_motion(subject, label, label, 0, 12, 18)
    frames = sf.render_frames(subject, m, None, quantize=False)[..., 0].astype(np.float64)
    warp, zero = _interior_warp_errors(frames, m, size)
    assert warp < max_ratio * zero, (label, warp, zero)
    # The image-space residual is resampling error only: the face point under x + flow is the same.
    grid = fd.pixel_grid(size)
    for t in (m.onset, m.apex):
      p = m.inverse(grid, t)
      np.testing.assert_allclose(m.inverse(grid + m.flow(grid, t), t + 1), p, atol=1e-4)


def test_landmarks_sit_on_drawn_features():
  for s in range(4):
    subject = fd.make_subject(0, s, 128)
    tn, lm = subject.tones, subject.landmarks
    face = lambda idx: fd.face_intensity(subject, lm[idx])
    # Jaw points lie on the outline, where the face mask is one half.
    jaw_mid = 0.5 * (tn['background'] + tn['skin'] - tn['shade'])
    assert np.abs(face(slice(4, 13)) - jaw_mid).max() < 0.35 * (tn['skin'] - tn['background'])
    skin = fd.face_intensity(subject, lm[[2, 14]] + [[12, 0], [-12, 0]]).mean()  # cheeks
    above = lm[17:27] - [0, 3 * subject.geometry['brow_th']]           # forehead just above the brows
    assert (face(slice(17, 27)) < fd.face_intensity(subject, above) - 0.4 * tn['brow']).all()
    assert face([61, 62, 63, 65, 66, 67]).max() < skin - 20           # on the lip line
    eyes = fd.face_intensity(subject, np.stack([lm[36:42].mean(0), lm[42:48].mean(0)]))
    assert eyes.max() < min(skin, tn['sclera']) - 20                   # eye centres on the dark irises


REGIONS = {'brows': slice(17, 27), 'mouth': slice(48, 68), 'nose': slice(31, 36)}
MOVING = {'happiness': ('mouth', 'brows'), 'surprise': ('brows', 'mouth'),
          'disgust': ('nose', 'brows'), 'repression': ('mouth', 'brows')}


@pytest.mark.parametrize('name', sf.CLASS_NAMES)
def test_motion_is_localised_and_small(name):
  label = sf.CLASS_NAMES.index(name)
  for size in (64, 128):
    u = size / 128
    subject = fd.make_subject(0, 0, size)
    for clip in range(3):
      m = fm.make_motion(subject, clip, label, 0, 20, 36)
      peak = np.linalg.norm(m.au_field(fd.pixel_grid(size, 4)), axis=-1).max()
      assert u * 0.99 <= peak <= u * 2.0 + 1e-9  # 1-2 px at 128 px, 0.5-1 px at 64 px
      magnitude = np.linalg.norm(m.au_field(subject.landmarks), axis=-1)
      if name in MOVING:
        moving, still = MOVING[name]
        assert magnitude[REGIONS[moving]].max() > 0.4 * peak
        assert magnitude[REGIONS[still]].max() < 0.01 * peak
      # Localised: at least half of the face does not move.
      grid_mag = np.linalg.norm(m.au_field(fd.pixel_grid(size)), axis=-1)
      assert np.mean(grid_mag < 0.01 * peak) > 0.5


@pytest.mark.parametrize('name, moving, still', [('surprise', 'brow_y', 'mouth_y'),
                                                  ('happiness', 'mouth_y', 'brow_y')])
def test_rendered_change_is_localised(name, moving, still):
  subject = fd.make_subject(0, 3, 64)
  m = fm.make_motion(subject, 0, sf.CLASS_NAMES.index(name), 0, 20, 36)
  m = dataclasses.replace(m, angle=0 * m.angle, shift=0 * m.shift)  # AU motion only
  frames = sf.render_frames(subject, m, None, quantize=False)[..., 0]
  change = np.abs(frames[m.apex] - frames[m.onset]).max(1)  # (S,) per row
  row = lambda key: change[int(round(subject.geometry[key])) + np.arange(-3, 4)].max()
  assert row(moving) > 5 and row(still) < 0.01 * row(moving)


def test_single_frame_does_not_give_the_class_away():
  subject = fd.make_subject(0, 1, 64)
  clips = [sf.make_clip(subject, 3, label, 0, 20, 36) for label in range(5)]
  # The label only enters through the motion: every frame up to onset is identical across labels.
  on = int(clips[0]['onset'])
  for c in clips[1:]:
    np.testing.assert_array_equal(c['frames'][:on + 1], clips[0]['frames'][:on + 1])
    np.testing.assert_array_equal(c['landmarks'][:on + 1], clips[0]['landmarks'][:on + 1])
    ap = int(c['apex'])
    assert np.abs(c['landmarks'][ap] - clips[0]['landmarks'][ap]).max() > 0.2
  # Appearance varies across subjects far more than the apex deformation changes a face.
  subjects = [fd.make_subject(0, s, 128) for s in range(10)]
  placement = np.linalg.norm(np.stack([s.landmarks for s in subjects]).std(0), axis=-1).mean()
  m = fm.make_motion(subjects[0], 0, 1, 0, 20, 36)
  apex_shift = np.linalg.norm(m.au_field(subjects[0].landmarks), axis=-1).max()
  assert placement > 1.5 * apex_shift
  grid = fd.pixel_grid(128)
  neutral = [fd.face_intensity(s, grid) for s in subjects[:4]]
  across = np.mean([np.abs(a - b).mean() for i, a in enumerate(neutral) for b in neutral[:i]])
  frames = sf.render_frames(subjects[0], m, None, quantize=False)[..., 0]
  assert across > 5 * np.abs(frames[m.apex] - frames[m.onset]).mean()


def test_noise_and_flicker_are_small():
  subject = fd.make_subject(0, 0, 64)
  m = fm.make_motion(subject, 0, 4, 0, 20, 36)
  clean = sf.render_frames(subject, m, None, quantize=False)[..., 0]
  noisy = sf.render_frames(subject, m, np.random.default_rng(0), quantize=False)[..., 0]
  residual = noisy - clean
  assert 0.8 < residual.std() < 2.0                        # ~1 grey level of sensor noise (+ flicker)
  gain = (noisy.mean((1, 2)) / clean.mean((1, 2)))
  assert 0.002 < gain.std() < 0.03                         # ~1 % brightness flicker


def test_others_never_draw_a_bilateral_lip_corner_pull():
  # AU12L + AU12R is happiness's AU12: an 'others' clip with both would carry a contradicting label
  draws = [set(fm._class_aus(np.random.default_rng([0, i]), sf.CLASS_NAMES.index('others')))
           for i in range(600)]
  assert not any({'AU12L', 'AU12R'} <= aus for aus in draws)
  assert sum('AU12L' in aus for aus in draws) > 50 and sum('AU12R' in aus for aus in draws) > 50
  assert all(set(fm._class_aus(np.random.default_rng(i), 0)) >= {'AU12'} for i in range(20))


def test_dev_config_draws_other_subjects_by_the_same_rules():
  """`dev` (where the default config's settings are chosen) has `default`'s shape and generative rules but
  other subjects: no face of one appears in the other."""
  configs = {c.name: c for c in builder_lib.Builder.BUILDER_CONFIGS}
  default, dev = configs['default'], configs['dev']
  assert dataclasses.replace(dev, name='default', seed=default.seed, description=default.description) == default
  assert dev.seed != default.seed
  size = default.image_size
  faces = {seed: [sf.render_frames(fd.make_subject(seed, s, size),
                                   fm.make_motion(fd.make_subject(seed, s, size), 0, 0, seed, 20, 20))[0]
                  for s in range(default.num_subjects)] for seed in (default.seed, dev.seed)}
  for a in faces[default.seed]:
    assert min(np.abs(a.astype(float) - b).mean() for b in faces[dev.seed]) > 2


def test_mol_corpus_aligns_each_frame_on_its_own_from_1_2_0():
  """`mol` 1.2.0 (and `mol_dev`) add each frame's own alignment error (`MOL_ALIGNMENT`), 1.1.0 stays
  readable as it was; with it the flow between frames grows to the measured size (exact flow std ≈ 0.49 px at
  128 px, against ≈ 0.07 without), every other draw is the same, and the stored flow and landmarks stay
  exact."""
  configs = {c.name: c for c in builder_lib.Builder.BUILDER_CONFIGS}
  mol, dev = configs['mol'], configs['mol_dev']
  assert str(mol.version) == '1.2.0' and [str(v) for v in mol.supported_versions] == ['1.1.0']
  assert builder_lib.alignment_of(mol, '1.1.0') is None
  assert builder_lib.alignment_of(mol, '1.2.0') == builder_lib.alignment_of(dev, '1.2.0') == fm.MOL_ALIGNMENT
  assert dataclasses.replace(dev, name='mol', seed=mol.seed, description=mol.description,
                             supported_versions=mol.supported_versions) == mol
  subject = fd.make_subject(0, 3, 128)
  plain = fm.make_motion(subject, 2, 1, 0, 20, 24)
  aligned = fm.make_motion(subject, 2, 1, 0, 20, 24, fm.MOL_ALIGNMENT)
  assert (plain.onset, plain.apex, len(plain.intensity)) == (aligned.onset, aligned.apex, len(aligned.intensity))
  np.testing.assert_array_equal(plain.au_vectors, aligned.au_vectors)
  grid = fd.pixel_grid(128)
  spread = lambda m: np.std([m.flow(grid, t) for t in range(len(m.intensity) - 1)])  # noqa: E731
  assert spread(plain) < 0.15 < 0.3 < spread(aligned) < 0.8, (spread(plain), spread(aligned))
  for t in (0, aligned.apex):
    assert np.abs(aligned.forward(aligned.inverse(grid, t), t) - grid).max() < 1e-4
    p = aligned.inverse(grid, t)
    np.testing.assert_allclose(aligned.inverse(grid + aligned.flow(grid, t), t + 1), p, atol=1e-4)
