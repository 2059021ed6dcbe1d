"""Spotting scores by their definition, on hand-made cases: the IoU boundary, one-to-one matching, types,
pooling over videos, and spot-then-recognise."""

import pytest

from fdp_jax.spotting.metrics import Interval, iou, match, spotting_scores, strs


def test_iou_counts_inclusive_frames_and_the_boundary_is_a_true_positive():
  truth = Interval(0, 9)                                    # 10 frames
  assert iou(Interval(0, 4), truth) == 0.5                  # 5 of 10: exactly the threshold
  assert iou(Interval(0, 3), truth) == 0.4
  assert iou(Interval(5, 14), truth) == pytest.approx(5 / 15)
  assert iou(Interval(10, 12), truth) == 0.0                # adjacent, no common frame
  assert match([Interval(0, 4)], [truth]) == [(0, 0)]       # IoU 0.5 counts
  assert match([Interval(0, 3)], [truth]) == []
  with pytest.raises(ValueError, match='ends before'):
    Interval(5, 4)


def test_one_spotted_interval_matches_one_ground_truth_at_most():
  """[0, 19] has IoU exactly 0.5 with both [0, 9] and [10, 19]: one true positive, one miss (the reference
  script would count two)."""
  scores = spotting_scores([([Interval(0, 19)], [Interval(0, 9), Interval(10, 19)])])['overall']
  assert (scores['tp'], scores['fp'], scores['fn']) == (1, 0, 1)
  assert scores['precision'] == 1.0 and scores['recall'] == 0.5 and scores['f1'] == pytest.approx(2 / 3)


def test_matching_maximises_the_true_positives_not_the_first_best_iou():
  """A=[1,10] fits X=[0,9] best (0.82) but also Y=[4,13] (0.54); B=[0,5] fits only X (0.6). Taking the best
  IoU first would leave B unmatched; the one-to-one maximum pairs A–Y and B–X."""
  spotted, truth = [Interval(1, 10), Interval(0, 5)], [Interval(0, 9), Interval(4, 13)]
  assert iou(spotted[0], truth[0]) > iou(spotted[1], truth[0]) >= 0.5 and iou(spotted[0], truth[1]) >= 0.5
  assert iou(spotted[1], truth[1]) < 0.5
  assert sorted(match(spotted, truth)) == [(0, 1), (1, 0)]


def test_types_match_only_their_own_and_counts_pool_over_videos():
  video1 = ([Interval(0, 9, 'micro'), Interval(30, 80, 'macro')],
            [Interval(0, 9, 'macro'), Interval(30, 79, 'macro'), Interval(100, 110, 'micro')])
  video2 = ([Interval(5, 12, 'micro'), Interval(200, 210, 'micro')], [Interval(5, 13, 'micro')])
  s = spotting_scores([video1, video2])
  # video1: the micro [0,9] does not match the macro [0,9]; the macros match. video2: one micro matches.
  assert (s['overall']['tp'], s['overall']['fp'], s['overall']['fn']) == (2, 2, 2)
  assert (s['micro']['tp'], s['micro']['fp'], s['micro']['fn']) == (1, 2, 1)
  assert (s['macro']['tp'], s['macro']['fp'], s['macro']['fn']) == (1, 0, 1)
  assert s['micro']['f1'] == pytest.approx(2 * 1 / (3 + 2)) and s['macro']['f1'] == pytest.approx(2 / 3)
  assert s['matches'] == [[(1, 1)], [(0, 0)]]
  empty = spotting_scores([([], [Interval(0, 5)])])['overall']
  assert (empty['precision'], empty['recall'], empty['f1']) == (0.0, 0.0, 0.0)


def test_strs_is_spotting_f1_times_the_analysis_uf1_of_true_positives():
  """Two videos, 3 classes. Truths: [0,9] class 0, [20,29] class 1, [40,49] class 2 (missed). Spotted:
  [0,9] → 0 (right), [20,29] → 2 (wrong), [60,70] → 1 (a false positive: not analysed). Spotting: tp 2,
  fp 1, fn 1 → F1 2/3. Analysis over the 2 true positives: labels (0, 1), predictions (0, 2): F1 of class 0
  is 1, classes 1 and 2 are 0 → UF1 1/3; recall of the present classes 1 and 0 → UAR 1/2."""
  videos = [([Interval(0, 9, label=0), Interval(60, 70, label=1)], [Interval(0, 9, label=0)]),
            ([Interval(20, 29, label=2)], [Interval(20, 29, label=1), Interval(40, 49, label=2)])]
  result = strs(videos, num_classes=3)
  assert result['spotting']['overall']['f1'] == pytest.approx(2 / 3)
  assert result['analysis']['num_intervals'] == 2
  assert result['analysis']['uf1'] == pytest.approx(1 / 3) and result['analysis']['uar'] == pytest.approx(0.5)
  assert result['strs'] == pytest.approx(2 / 3 * 1 / 3)
  with pytest.raises(ValueError, match='no recognised class'):
    strs([([Interval(0, 9)], [Interval(0, 9, label=0)])], num_classes=3)
