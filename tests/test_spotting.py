"""Spotting pieces on hand-made inputs: snippets of long videos (where, which label, never across a faceless
frame), score curves to intervals (relative threshold and its floor, placement, types), the frame-difference
baseline, and the synthetic long-video corpus (ground truth, distractors, the same faces as synthetic_me)."""

import numpy as np
import pytest

from fdp_jax.corpora import face_drawing, face_motion, synthetic_faces, synthetic_long
from fdp_jax.spotting import baseline, metrics, peaks, snippets
from fdp_jax.spotting.videos import Video


def _video(n=120, absent=(), intervals=(), frames=None):
  present = np.ones(n, bool)
  present[list(absent)] = False
  frames = np.zeros((n, 8, 8, 1), np.uint8) if frames is None else frames
  return Video('s01/v0', 's01', 30.0, frames, present, tuple(intervals), ('',) * len(intervals),
               tuple((i.onset + i.offset) // 2 for i in intervals))


def test_snippets_centres_labels_and_faceless_windows():
  video = _video(60, absent=[30], intervals=[metrics.Interval(10, 14, 'micro'), metrics.Interval(40, 52, 'macro'),
                                             metrics.Interval(12, 20, 'macro')])
  labels = snippets.frame_labels(video)
  assert labels[10:15].tolist() == [1] * 5 and labels[15:21].tolist() == [2] * 6 and labels[9] == 0
  centres = snippets.snippet_centres(video, half_window=4, stride=2)
  # Windows t-4..t+4 inside the video that do not contain frame 30.
  assert centres.tolist() == [4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 36, 38, 40, 42, 44, 46, 48, 50, 52, 54]
  source = snippets.SnippetSource([video], 4, 2)
  record = source[5]   # centre 14
  assert record['sample_id'] == 's01/v0@14' and record['label'] == 1 and record['frames'].shape == (9, 8, 8, 1)
  assert (record['onset'], record['apex'], record['offset']) == (0, 4, 8)
  assert np.shares_memory(record['frames'], video.frames)   # a view, not a copy
  index = source.index()
  assert index.class_names == snippets.CLASS_NAMES and index.labels.tolist() == labels[centres].tolist()
  assert snippets.parse_sample_id('s01/v0@14') == ('s01/v0', 14)


def test_fill_and_smooth_keep_unscored_frames_unscored():
  curve = peaks.fill_curve(14, np.array([2, 4, 6, 12]), np.array([0.0, 1.0, 0.5, 0.5]))
  assert np.isnan(curve[[0, 1, 7, 8, 9, 10, 11, 13]]).all()     # 6 → 12 is more than 2 strides apart
  np.testing.assert_allclose(curve[2:7], [0, 0.5, 1, 0.75, 0.5])
  smoothed = peaks.smooth_curve(curve, 3)
  assert np.isnan(smoothed[[0, 1, 7]]).all() and smoothed[3] == pytest.approx(0.5)


def test_spot_threshold_placement_and_types():
  n = 200
  curve = np.full(n, 0.05)
  curve[40:49] = 0.9                 # a strong micro-like bump centred at 44
  curve[120:126] = 0.2               # a weak one, under mean + 0.5 (max − mean)
  curve[:5] = np.nan
  rule = peaks.PeakRule(p=0.5, min_score=0.0, smooth=1)
  found = peaks.spot(curve, rule, length=11, kind='micro')
  assert [(i.onset, i.offset, i.type) for i, _ in found] == [(39, 49, 'micro')]   # the plateau's middle, 44
  assert peaks.spot(np.full(n, 0.1) + np.r_[np.zeros(100), 0.05, np.zeros(99)],
                    peaks.PeakRule(p=0.5, min_score=0.3, smooth=1), 11, 'micro') == []   # under the floor
  both = peaks.resolve_types([(metrics.Interval(40, 50, 'micro'), 0.9), (metrics.Interval(30, 70, 'macro'), 0.6),
                              (metrics.Interval(100, 140, 'macro'), 0.5)])
  assert [(i.onset, i.type) for i, _ in both] == [(40, 'micro'), (100, 'macro')]
  lengths = peaks.typical_lengths([metrics.Interval(0, 9, 'micro'), metrics.Interval(0, 11, 'micro')],
                                  {'micro': 5, 'macro': 40})
  assert lengths == {'micro': 11, 'macro': 40}


def test_baseline_spots_motion_and_types_it_by_duration():
  n, rng = 300, np.random.default_rng(0)
  frames = rng.normal(100, 1, (n, 16, 16, 1))
  t = np.arange(n)
  micro = np.clip(40 - 13 * np.abs(t - 103), 0, None)     # a short local rise and fall: micro
  macro = np.clip(80 - 4 * np.abs(t - 220), 0, None)      # a long one: macro
  frames[:, 4:8, 4:8] += micro[:, None, None, None]
  frames[:, 8:12, 8:12] += macro[:, None, None, None]
  frames += np.where(np.arange(n) >= 150, 30, 0)[:, None, None, None]   # a light step: not a movement
  video = _video(n, absent=range(260, 280), frames=np.clip(frames, 0, 255).astype(np.uint8))
  e = baseline.energy(video, 3)
  assert np.isnan(e[257:283]).all() and not np.isnan(e[100])
  assert e[150] < 2 * np.nanmedian(e)  # the light step is removed with the difference's median
  found = baseline.spot_video(video, 3, peaks.PeakRule(p=0.3, smooth=1), micro_max=12, lengths={'micro': 9, 'macro': 41})
  # The long event's rise and fall are two runs (at its apex f(t+d) = f(t−d)), both long enough to be macro;
  # the light step at 150 is no run at all.
  assert [i.type for i in found] == ['micro', 'macro', 'macro']
  assert all(i.offset < 150 or i.onset > 150 for i in found)
  truth = [metrics.Interval(99, 107, 'micro'), metrics.Interval(200, 240, 'macro')]
  assert metrics.spotting_scores([(found, truth)])['micro']['tp'] == 1


def test_synthetic_long_video_ground_truth_and_distractors():
  subject = face_drawing.make_subject(0, 1, 32)
  plan = synthetic_long.plan_video(subject, 0, 0, 600)
  kinds = [e.kind for e in plan['events']]
  assert kinds.count('micro') == 3 and kinds.count('macro') == 2 and kinds.count('blink') == 5
  ordered = sorted(plan['events'], key=lambda e: e.onset)
  assert all(b.onset - a.offset > synthetic_long.GAP for a, b in zip(ordered, ordered[1:]))
  record = synthetic_long.make_video(subject, 0, 0, 600)
  iv = record['intervals']
  expressions = [e for e in ordered if e.kind in ('micro', 'macro')]
  assert iv['type'] == [e.kind for e in expressions]          # distractors are not annotated
  assert [int(o) for o in iv['onset']] == [e.onset for e in expressions]
  assert all(8 <= e.offset - e.onset + 1 <= 14 for e in expressions if e.kind == 'micro')
  assert all(e.label >= 0 and iv['emotion'][k] == synthetic_faces.CLASS_NAMES[e.label]
             for k, e in enumerate(expressions))
  # The face is synthetic_me's subject 1: a neutral frame equals that subject's clip frame up to noise.
  neutral = next(t for t in range(600) if all(not (e.onset - 3 <= t <= e.offset + 20) for e in ordered))
  clip = synthetic_faces.render_frames(subject, face_motion.make_motion(subject, 0, 0, 0, 12, 12), None)[0]
  assert np.abs(record['frames'][neutral].astype(float) - clip.astype(float)).mean() < 6
  away = [e for e in ordered if e.kind == 'away']
  present = record['face_present']
  assert present.sum() == 600 - sum(e.offset - e.onset + 1 for e in away)
  for e in away:
    assert not present[e.onset:e.offset + 1].any() and record['frames'][e.onset:e.offset + 1].std() < 5
