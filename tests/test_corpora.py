"""Licensed-corpus builders on fixture corpora generated here (real layouts, workbooks and quirks, faces
that dlib really finds): counts, labels per protocol, subjects, ids, phase repairs, skip reports, LOSO
folds, interrupted builds, parallel workers, and the stop-before-work message of a missing corpus."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from fdp_jax import data_sources
from fdp_jax.cv.folds import loso_folds
from fdp_jax.corpora import builder as corpus_builder
from fdp_jax.corpora import layout
from fdp_jax.corpora import megc2019
from fdp_jax.corpora import phases
from fdp_jax.corpora import class_sets
from fdp_jax.preprocess import clips
from tests import corpus_fixtures


def build(name, config, manual_dir, data_dir, workers=1):
  builder = data_sources.builder_class(name)(config=config, data_dir=data_dir, file_format='array_record',
                                             workers=workers)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder


def read_all(builder):
  source = builder.as_data_source()['train']
  records = [source[i] for i in range(len(source))]
  return {r['sample_id'].decode(): r for r in records}


def check_built(builder, expected, classes):
  records = read_all(builder)
  assert set(records) == set(expected['built'])
  assert builder.info.features['label'].names == list(classes)
  for sid, (emotion, onset, apex, offset) in expected['built'].items():
    r = records[sid]
    assert classes[int(r['label'])] == emotion, sid
    assert (int(r['onset']), int(r['apex']), int(r['offset'])) == (onset, apex, offset), sid
    t = r['frames'].shape[0]
    assert r['frames'].shape == (t, 64, 64, 1) and r['frames'].dtype == np.uint8
    assert r['landmarks'].shape == (t, 68, 2) and r['frame_numbers'].shape == (t,)
    assert np.all(np.diff(r['frame_numbers']) > 0), 'frames must be in numeric order'
    # The landmarks went through the alignment: the eyes sit level-ish inside the 64-px face.
    eyes = r['landmarks'][:, 36:48]
    assert np.all((eyes > 5) & (eyes < 59)), sid
  index = data_sources.read_index(builder.as_data_source()['train'], classes)
  assert set(index.subjects) == expected['subjects']
  folds = loso_folds(index.subjects)
  assert sorted(f.subject for f in folds) == sorted(expected['subjects'])
  for f in folds:
    assert {index.subjects[i] for i in f.test_indices} == {f.subject}
    assert f.subject not in {index.subjects[i] for i in f.train_indices}
  meta = builder.info.metadata
  skipped = dict((name, why) for name, why in meta['skipped'])
  for sid, reason in expected.get('skipped', {}).items():
    assert reason in skipped[sid], (sid, skipped.get(sid))
  assert meta['num_skipped'] == len(expected.get('skipped', {}))
  assert {sid for sid, _ in meta['repairs']} == expected.get('repaired', set())
  assert {sid for sid, _ in meta['dropped_by_class_set']} == expected.get('dropped', set())
  assert f'{meta["num_skipped"]} skipped' in builder.info.description
  return records


@pytest.fixture(scope='module')
def casme2_root(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('casme2'))
  return root, corpus_fixtures.make_casme2(root)


@pytest.mark.parametrize('name, config, feature', [('casme2', '5class_raw_64', 'label'),
                                                     ('samm_lv', 'raw_64', 'intervals')])
def test_clip_and_long_video_builders_share_one_header(name, config, feature, tmp_path):
  """One base class gives the clip and the long-video builders their version, workers and dataset info (the
  corpus's description); each names only its records' features."""
  cls = data_sources.builder_class(name)
  assert issubclass(cls, corpus_builder.CorpusBuilder) and cls._info is corpus_builder.CorpusBuilder._info
  built = cls(config=config, data_dir=str(tmp_path), workers=3)
  assert built.workers == 3 and str(built.version) == '1.0.0'
  assert built.info.description == cls.DESCRIPTION and feature in built.info.features
  assert built.MANUAL_DOWNLOAD_INSTRUCTIONS == cls.READER.INSTRUCTIONS


def test_casme2_build(casme2_root, tmp_path):
  root, expected = casme2_root
  builder = build('casme2', '5class_raw_64', root, str(tmp_path))
  records = check_built(builder, expected, class_sets.get('casme2', '5class').classes)
  assert set(builder.info.metadata['unlabelled']) == expected['unlabelled']
  assert records['sub01/EP02_01f']['frame_numbers'].tolist() == list(range(95, 103))
  # The repair rules, as the report states them.
  repairs = dict(builder.info.metadata['repairs'])
  assert 'R3' in repairs['sub01/EP03_02'] and 'midpoint 13' in repairs['sub01/EP03_02']
  assert 'R2' in repairs['sub02/EP01_2'] and '47' in repairs['sub02/EP01_2']


def test_casme2_cropped_and_3class_read_the_other_tree(casme2_root):
  root, _ = casme2_root
  specs, report = __import__('fdp_jax.corpora.casme2', fromlist=['x']).find_samples(root, 'cropped')
  assert all(os.path.basename(p).startswith('reg_img') for s in specs for p in s.frame_paths)
  assert 'Cropped' in specs[0].frame_paths[0]
  three = class_sets.get('casme2', '3class')
  labels = {s.sample_id: three.label(s.emotion) for s in specs}
  assert labels['sub02/EP01_2'] == 0 and labels['sub01/EP02_01f'] == 1 and labels['sub01/EP03_02'] == 2
  assert labels['sub03/EP07_01'] is None  # 'others' is outside the composite classes


def test_samm_build(tmp_path):
  root = str(tmp_path / 'manual')
  expected = corpus_fixtures.make_samm(root)
  builder = build('samm', '5class_raw_64', root, str(tmp_path / 'out'))
  check_built(builder, expected, class_sets.get('samm', '5class').classes)


def test_smic_build_with_two_workers_and_flow(tmp_path):
  root = str(tmp_path / 'manual')
  expected = corpus_fixtures.make_smic(root)
  one = read_all(build('smic', 'hs_3class_cropped_64', root, str(tmp_path / 'one'), workers=1))
  builder = build('smic', 'hs_3class_cropped_64', root, str(tmp_path / 'two'), workers=2)
  two = check_built(builder, expected, class_sets.get('smic', '3class').classes)
  for sid in one:  # worker processes change nothing but the wall time
    np.testing.assert_array_equal(one[sid]['frames'], two[sid]['frames'])
    np.testing.assert_allclose(one[sid]['landmarks'], two[sid]['landmarks'])
  assert 'hs_3class_cropped_144_flow' in [c.name for c in builder.BUILDER_CONFIGS]
  flow_features = data_sources.builder_class('smic')(config='hs_3class_cropped_144_flow',
                                                     data_dir=str(tmp_path / 'f')).info.features
  assert flow_features['flow'].shape == (None, 144, 144, 2)


def test_mol_configs_align_every_frame_as_released_and_keep_the_clip_alignment(tmp_path, monkeypatch):
  """'*_144_flow' aligns each frame on its own (MOL's release), at version 1.1.0; a dataset built at 1.0.0
  was aligned once per clip and is read as such; '*_144_flow_clip' offers that alignment under its own name."""
  from fdp_jax.corpora import builder as corpus_builder
  configs = {c.name: c for c in data_sources.builder_class('casme2').BUILDER_CONFIGS}
  frame, clip = configs['5class_raw_144_flow'], configs['5class_raw_144_flow_clip']
  assert (frame.alignment, clip.alignment, configs['5class_raw_64'].alignment) == ('frame', 'clip', 'clip')
  assert str(frame.version) == '1.1.0' and corpus_builder.alignment_of(frame, '1.1.0') == 'frame'
  assert corpus_builder.alignment_of(frame, '1.0.0') == 'clip'
  assert data_sources.get_builder('casme2', '5class_raw_144_flow', str(tmp_path)).version == '1.1.0'
  root = str(tmp_path / 'manual')
  corpus_fixtures.make_samm(root)
  seen = []
  real = clips.preprocess_clips

  def spy(specs, options, *args, **kwargs):
    seen.append(options.alignment)
    return real(specs[:1], options, *args, **kwargs)

  monkeypatch.setattr(clips, 'preprocess_clips', spy)
  build('samm', '5class_raw_144_flow', root, str(tmp_path / 'frame'), workers=1)
  assert seen == ['frame']


def test_casme_sq_build(tmp_path):
  root = str(tmp_path / 'manual')
  expected = corpus_fixtures.make_casme_sq(root)
  builder = build('casme_sq', '4class_raw_64', root, str(tmp_path / 'out'))
  records = check_built(builder, expected, class_sets.get('casme_sq', '4class').classes)
  assert records['s15/anger1_1']['frame_numbers'].tolist() == list(range(5, 13))  # the window only
  assert records['s15/anger1_2']['frame_numbers'].tolist() == list(range(20, 27))  # offset 0 → 26


def test_casme3_build_all_protocols_agree(tmp_path):
  root = str(tmp_path / 'manual')
  expected = corpus_fixtures.make_casme3(root)
  builder = build('casme3', '7class_raw_64', root, str(tmp_path / 'out'))
  records = check_built(builder, expected, class_sets.get('casme3', '7class').classes)
  assert records['spNO.3/c/7']['frame_numbers'].tolist() == list(range(7, 14))  # the ME-clip package
  specs, _ = __import__('fdp_jax.corpora.casme3', fromlist=['x']).find_samples(root)
  four, three = class_sets.get('casme3', '4class'), class_sets.get('casme3', '3class')
  emotions = {s.sample_id: class_sets.canonical_emotion('casme3', s.emotion) for s in specs}
  assert emotions['spNO.1/a/15'] == 'others'  # 'Others' read as 'others'
  assert four.classes[four.label(emotions['spNO.2/b/5'])] == 'negative'  # fear
  assert three.label(emotions['spNO.1/a/15']) is None


def test_megc2019_composite(tmp_path, monkeypatch):
  root = tmp_path / 'manual'
  corpus_fixtures.make_casme2(str(root / 'casme2'))
  corpus_fixtures.make_samm(str(root / 'samm'))
  corpus_fixtures.make_smic(str(root / 'smic'))
  assert os.path.isfile(megc2019.EXCLUSIONS)   # the list the builder reads, shipped beside the reader
  exclusions = tmp_path / 'megc2019_exclusions.txt'
  exclusions.write_text('# test\nsamm:011/011_2_2\n')
  monkeypatch.setattr(megc2019, 'EXCLUSIONS', str(exclusions))
  builder = build('megc2019', '3class_cropped_64', str(root), str(tmp_path / 'out'))
  records = read_all(builder)
  classes = builder.info.features['label'].names
  assert classes == ['negative', 'positive', 'surprise']
  got = {sid: classes[int(r['label'])] for sid, r in records.items()}
  assert got == {
      'casme2:sub01/EP02_01f': 'positive', 'casme2:sub01/EP03_02': 'surprise',
      'casme2:sub02/EP01_2': 'negative', 'casme2:sub03/EP06_02_01': 'negative',
      'samm:006/006_1_2': 'positive', 'samm:006/006_1_3': 'surprise', 'samm:007/007_3_1': 'negative',
      'smic:s1/s1_ne_01': 'negative', 'smic:s1/s1_po_02': 'positive',
      'smic:s2/s2_sur_01': 'surprise'}
  assert {r['corpus'].decode() for r in records.values()} == {'casme2', 'samm', 'smic'}
  assert records['samm:006/006_1_2']['subject'].decode() == 'samm:006'
  dropped = dict(builder.info.metadata['dropped_by_class_set'])
  assert dropped['samm:011/011_2_2'] == 'listed in megc2019_exclusions.txt'
  assert dropped['casme2:sub02/EP09f'] == 'fear'
  assert {n for n, _ in builder.info.metadata['skipped']} == {
      'casme2:sub03/EP08_01', 'smic:s2/s2_ne_03'}  # EP07_01 (no face) is 'others': dropped first
  assert dropped['casme2:sub03/EP07_01'] == 'others'


def test_interrupted_build_never_reads_as_complete(casme2_root, tmp_path, monkeypatch):
  root, _ = casme2_root
  calls = []
  real = clips.preprocess_clip

  def dies_on_third(spec, options, landmarker):
    calls.append(spec.sample_id)
    if len(calls) == 3:
      raise KeyboardInterrupt('simulated interruption')
    return real(spec, options, landmarker)

  monkeypatch.setattr(clips, 'preprocess_clip', dies_on_third)
  with pytest.raises(KeyboardInterrupt):
    build('casme2', '5class_raw_64', root, str(tmp_path))
  builder = data_sources.builder_class('casme2')(config='5class_raw_64', data_dir=str(tmp_path))
  assert not builder.is_prepared()
  with pytest.raises(data_sources.DatasetNotBuiltError):
    data_sources.ensure_built(builder)
  monkeypatch.setattr(clips, 'preprocess_clip', real)
  assert len(read_all(build('casme2', '5class_raw_64', root, str(tmp_path)))) == 4  # a rerun completes


def test_missing_workbook_names_what_and_where(tmp_path):
  corpus_fixtures.write_frames(str(tmp_path / 'SAMM' / '006' / '006_1_2'), ['006_1.jpg'],
                               corpus_fixtures.faceless_frames(1, 0))
  with pytest.raises(layout.CorpusLayoutError, match=r'SAMM FACS-code workbook.*\n.*request it'):
    build('samm', '5class_raw_64', str(tmp_path), str(tmp_path / 'out'))


def test_launch_config_stops_before_work_when_corpus_is_not_built(tmp_path):
  from configs import casme3
  config = casme3.get_config()
  config.data.data_dir = str(tmp_path)
  with pytest.raises(data_sources.DatasetNotBuiltError) as e:
    data_sources.load_corpus(config.data)
  message = str(e.value)
  assert os.path.join(str(tmp_path), 'casme3', '7class_raw_64') in message
  assert 'python -m fdp_jax.tools.build_dataset --dataset=casme3 --config=7class_raw_64' in message
  assert 'casme.psych.ac.cn' in message
  assert not os.listdir(tmp_path)  # nothing was started
  from fdp_jax import experiment
  with pytest.raises(SystemExit, match='request it at'):
    experiment.main(config, str(tmp_path / 'run'))                     # what launch.py calls
  assert not os.listdir(tmp_path)  # not even the run directory


def test_phase_repair_rules():
  report = phases.BuildReport()
  numbers = list(range(10, 30))
  # A clip folder keeps every frame; phases are indices of the nearest stored frames.
  assert phases.locate_phases('a', numbers, 12, '/', 20, report, whole_video=False) == (0, 19, 2, 6, 10)
  assert phases.locate_phases('b', numbers, 5, 3, 0, report, whole_video=False) == (0, 19, 0, 9, 19)
  assert phases.locate_phases('c', numbers, 14, 16, 0, report, whole_video=True) == (4, 8, 0, 2, 4)
  assert [r[0] for r in report.repairs] == ['a', 'b', 'b', 'b', 'c']
  with pytest.raises(phases.SkipSample, match='after offset'):
    phases.locate_phases('d', numbers, 25, 26, 12, report, whole_video=True)
  with pytest.raises(phases.SkipSample, match='offset unknown'):
    phases.locate_phases('e', numbers, 14, 14, 0, report, whole_video=True)
  with pytest.raises(phases.SkipSample, match='not a frame number'):
    phases.locate_phases('f', numbers, None, 14, 20, report, whole_video=True)


def test_build_command_without_the_corpus_says_what_to_do(tmp_path):
  import subprocess
  import sys
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  done = subprocess.run([sys.executable, '-m', 'fdp_jax.tools.build_dataset', '--dataset=smic',
                         f'--data_dir={tmp_path}', f'--manual_dir={tmp_path / "nowhere"}'],
                        cwd=repo, capture_output=True, text=True, timeout=120)
  assert done.returncode == 1
  assert 'nowhere is not a folder' in done.stderr and 'SMIC_all_cropped/HS/s1/micro' in done.stderr
  assert not (tmp_path / 'smic').exists() or not any((tmp_path / 'smic').rglob('*.array_record*'))
