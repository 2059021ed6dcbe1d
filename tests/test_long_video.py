"""Long-video preprocessing (`preprocess.long_video`) on frames where dlib finds a real face: every frame
tracked, faceless stretches and unreadable frames flagged and stored blank, short detection gaps bridged,
alignment by smoothed landmarks; and the long-video builder's frame step."""

import os

import numpy as np
import pytest

from fdp_jax.corpora import long_builder, long_videos
from fdp_jax.preprocess import face_alignment, long_video
from tests import corpus_fixtures


@pytest.fixture(scope='module')
def video_dir(tmp_path_factory):
  """20 face frames, 6 faceless, 1 faceless between faces, an unreadable file, 8 face frames."""
  root = str(tmp_path_factory.mktemp('long'))
  faces = corpus_fixtures.face_frames(30, 3)
  frames = faces[:20] + corpus_fixtures.faceless_frames(6, 4) + faces[20:22] + corpus_fixtures.faceless_frames(1, 5) \
      + faces[22:30]
  names = [f'{i:03d}.png' for i in range(len(frames))]
  corpus_fixtures.write_frames(root, names, frames)
  with open(os.path.join(root, '037.png'), 'wb') as f:   # one more frame, unreadable
    f.write(b'')
  return root, sorted(os.path.join(root, n) for n in os.listdir(root))


def test_every_frame_tracked_faceless_flagged(video_dir):
  _, paths = video_dir
  options = long_video.TrackingOptions(image_size=64)
  arrays, unreadable = long_video.preprocess_frames(long_video.path_reader(paths), options,
                                                    face_alignment.FaceLandmarker())
  present = arrays['face_present']
  assert len(present) == 38
  expected = np.ones(38, bool)
  expected[20:26] = False            # six faceless frames: longer than max_gap, no face
  expected[37] = False               # the unreadable file
  assert present.tolist() == expected.tolist()   # frame 28 (one faceless frame between faces) is bridged
  assert [os.path.basename(n) for n, _ in unreadable] == ['037.png']
  assert 'empty' in unreadable[0][1]
  frames, landmarks = arrays['frames'], arrays['landmarks']
  assert frames.shape == (38, 64, 64, 1) and frames.dtype == np.uint8
  assert np.all(frames[~present] == face_alignment.BORDER_VALUE) and np.all(landmarks[~present] == 0)
  eyes = landmarks[present][:, 36:48]
  assert np.all((eyes > 8) & (eyes < 56))
  # Smoothed alignment: the eye centres move little between consecutive aligned face frames (the source
  # face drifts 0.25 px and 0.1° per frame; frame-by-frame alignment jitter would be larger).
  centres = landmarks[:20, 36:48].mean(1)
  assert np.abs(np.diff(centres, axis=0)).max() < 1.5


def test_no_face_anywhere_is_an_error(tmp_path):
  corpus_fixtures.write_frames(str(tmp_path), [f'{i}.png' for i in range(5)], corpus_fixtures.faceless_frames(5, 1))
  paths = sorted(str(p) for p in tmp_path.iterdir())
  with pytest.raises(long_video.VideoError, match='no face found in any of its 5 frames'):
    long_video.preprocess_frames(long_video.path_reader(paths), long_video.TrackingOptions(),
                                 face_alignment.FaceLandmarker())


def test_bridging_rule():
  detected = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0], bool)
  assert long_video._bridged(detected, 3).astype(int).tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0]
  assert long_video.face_segments(np.array([0, 1, 1, 0, 1], bool)) == [(1, 2), (4, 4)]


def test_frame_step_keeps_each_interval_inside_its_frames():
  spec = long_videos.VideoSpec('v', 's', 'c', 200.0, tuple(f'{i}.jpg' for i in range(100)), tuple(range(100)),
                               (long_videos.IntervalSpec(10, 30, 60, 'macro'), long_videos.IntervalSpec(43, 45, 47, 'micro')))
  sub = long_builder.subsample(spec, 7)
  assert sub.fps == pytest.approx(200 / 7) and len(sub.frame_paths) == 15 and sub.frame_numbers[1] == 7
  macro, micro = sub.intervals
  assert (macro.onset, macro.apex, macro.offset) == (2, 4, 8)     # frames 14..56 lie inside 10..60
  assert (micro.onset, micro.apex, micro.offset) == (6, 6, 6)     # shorter than a step: the apex's frame 42
