"""The naive spotter every learned one must beat: thresholded frame-difference energy.

e(t) = mean over the frame of |frame(t + d) − frame(t − d) − m(t)| (aligned grey frames, d ≈ 0.1 s, m(t) the
median of the difference: a change of the light is not a movement), scored where both frames show a face,
smoothed like the spotter's curves. Peaks of e over the video's relative threshold (`peaks.PeakRule`) are
spotted: a peak whose run above the threshold is no longer than `micro_max` frames is a micro-expression,
else a macro-expression, and its interval is the type's typical length centred on that run (the spotter's
own placement). Its threshold p is chosen per fold on the training subjects' videos (the best F1 over
`P_GRID`) — it needs no training, so it gets the most favourable honest setting.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import signal

from fdp_jax.spotting import metrics, peaks
from fdp_jax.spotting.videos import Video

P_GRID = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def energy(video: Video, d: int) -> np.ndarray:
  """(N,) mean absolute grey difference between frames t + d and t − d, less its median (NaN where either
  frame has no face)."""
  frames = video.frames[..., 0].astype(np.float32)
  n = len(frames)
  e = np.full(n, np.nan)
  if n <= 2 * d:
    return e
  diff = frames[2 * d:] - frames[:-2 * d]
  diff = np.abs(diff - np.median(diff, axis=(1, 2), keepdims=True)).mean((1, 2))
  ok = video.face_present[2 * d:] & video.face_present[:-2 * d]
  e[d:n - d] = np.where(ok, diff, np.nan)
  return e


def spot_video(video: Video, d: int, rule: peaks.PeakRule, micro_max: int, lengths: dict[str, int]
               ) -> list[metrics.Interval]:
  curve = peaks.smooth_curve(energy(video, d), rule.smooth)
  level = peaks.threshold(curve, rule)
  if not np.isfinite(level):
    return []
  heights = np.where(np.isnan(curve), -np.inf, curve)
  found, _ = signal.find_peaks(heights, height=level, distance=max(1, micro_max))
  runs: dict[tuple[int, int], int] = {}   # one interval per run above the threshold, at its highest peak
  for p in found:
    run = peaks.run_around(heights, p, level)
    if run not in runs or heights[p] > heights[runs[run]]:
      runs[run] = p
  spotted = []
  for (first, last), p in runs.items():
    kind = 'micro' if last - first + 1 <= micro_max else 'macro'
    onset, offset = peaks.centred(first, last, lengths[kind], len(curve))
    spotted.append((metrics.Interval(int(onset), int(offset), kind), heights[p]))
  return [i for i, _ in peaks.resolve_types(spotted)]


def choose_p(videos: Sequence[Video], d: int, smooth: int, micro_max: int, lengths: dict[str, int]) -> float:
  """The p of `P_GRID` with the best pooled spotting F1 on `videos` (ties: the smaller p)."""
  best, best_f1 = P_GRID[0], -1.0
  for p in P_GRID:
    rule = peaks.PeakRule(p=p, smooth=smooth)
    f1 = metrics.spotting_scores((spot_video(v, d, rule, micro_max, lengths), v.intervals)
                                 for v in videos)['overall']['f1']
    if f1 > best_f1:
      best, best_f1 = p, f1
  return best
