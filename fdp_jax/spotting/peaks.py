"""From a video's per-frame scores to spotted intervals: smoothing, a threshold relative to the video's own
score statistics, peaks, and an interval of the expression type's typical length centred on the run of
frames above the threshold around each peak (the run's middle, not the peak: a saturated score's maximum
can sit anywhere on its plateau; on synthetic_long/dev, F1 0.62 against 0.52 centred on the peak).

Threshold (the rule of the published spotting baselines, e.g. SoftNet): mean + p · (max − mean) of the
video's smoothed scores over its scored frames, and never below `min_score` — a video in which nothing
happens still has a maximum, and without the floor its noise would be spotted. Peaks are at least one
interval length apart. Frames without a score (no face, the video's ends) are never peaks.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
from scipy import signal

from fdp_jax.spotting.metrics import Interval


@dataclasses.dataclass(frozen=True)
class PeakRule:
  p: float = 0.5                # threshold = mean + p·(max − mean)
  min_score: float = 0.0        # absolute floor of the threshold
  smooth: int = 5               # frames of the moving average


def fill_curve(n: int, centres: np.ndarray, values: np.ndarray) -> np.ndarray:
  """(n,) scores at every frame from scores at snippet centres (linear between neighbouring centres no
  more than 2 strides apart; NaN elsewhere)."""
  curve = np.full(n, np.nan)
  if not len(centres):
    return curve
  order = np.argsort(centres)
  centres, values = np.asarray(centres)[order], np.asarray(values, np.float64)[order]
  curve[centres] = values
  gaps = np.diff(centres)
  stride = int(np.min(gaps)) if len(gaps) else 1
  for a, b, va, vb in zip(centres[:-1], centres[1:], values[:-1], values[1:]):
    if 1 < b - a <= 2 * stride:
      curve[a:b + 1] = np.linspace(va, vb, b - a + 1)
  return curve


def smooth_curve(curve: np.ndarray, window: int) -> np.ndarray:
  """Moving average over `window` frames of the scored frames (NaN stays NaN)."""
  if window <= 1:
    return curve.copy()
  valid = ~np.isnan(curve)
  kernel = np.ones(window)
  total = np.convolve(np.where(valid, curve, 0.0), kernel, 'same')
  count = np.convolve(valid.astype(np.float64), kernel, 'same')
  out = total / np.maximum(count, 1)
  out[~valid] = np.nan
  return out


def threshold(curve: np.ndarray, rule: PeakRule) -> float:
  valid = curve[~np.isnan(curve)]
  if not len(valid):
    return np.inf
  mean, high = float(valid.mean()), float(valid.max())
  return max(mean + rule.p * (high - mean), rule.min_score)


def run_around(heights: np.ndarray, peak: int, level: float) -> tuple[int, int]:
  """(first, last) of the run of frames at or above `level` that holds `peak`."""
  first = last = peak
  while first > 0 and heights[first - 1] >= level:
    first -= 1
  while last < len(heights) - 1 and heights[last + 1] >= level:
    last += 1
  return first, last


def centred(first: int, last: int, length: int, n: int) -> tuple[int, int]:
  """An interval of `length` frames centred on [first, last], inside 0 … n−1."""
  onset = max(0, (first + last) // 2 - (length - 1) // 2)
  return onset, min(n - 1, onset + length - 1)


def spot(curve: np.ndarray, rule: PeakRule, length: int, kind: str) -> list[tuple[Interval, float]]:
  """[(interval, peak score)] of one type in one video. curve: (N,) scores (NaN = not scored); length: the
  interval length (frames), centred on the run above the threshold around each peak, clipped to the video."""
  smoothed = smooth_curve(curve, rule.smooth)
  level = threshold(smoothed, rule)
  if not np.isfinite(level):
    return []
  heights = np.where(np.isnan(smoothed), -np.inf, smoothed)
  peaks, _ = signal.find_peaks(heights, height=level, distance=max(1, length))
  out, runs = [], set()
  for p in peaks:
    run = run_around(heights, p, level)
    if run in runs:   # two peaks on one run above the threshold: one event
      continue
    runs.add(run)
    onset, offset = centred(*run, length, len(curve))
    out.append((Interval(int(onset), int(offset), kind), float(heights[p])))
  return out


def resolve_types(spotted: Sequence[tuple[Interval, float]]) -> list[tuple[Interval, float]]:
  """Where a micro and a macro interval overlap, the one with the higher peak score stays (one expression
  is one event); intervals of the same type never overlap (peaks are an interval length apart)."""
  kept: list[tuple[Interval, float]] = []
  for interval, score in sorted(spotted, key=lambda x: -x[1]):
    if all(k.type == interval.type or k.offset < interval.onset or interval.offset < k.onset for k, _ in kept):
      kept.append((interval, score))
  return sorted(kept, key=lambda x: x[0].onset)


def typical_lengths(intervals: Sequence[Interval], default: dict[str, int]) -> dict[str, int]:
  """{type: median length in frames} of annotated intervals (a fold's training videos); `default` for a
  type with none."""
  out = dict(default)
  for kind in default:
    lengths = [i.offset - i.onset + 1 for i in intervals if i.type == kind]
    if lengths:
      out[kind] = int(round(float(np.median(lengths))))
  return out
