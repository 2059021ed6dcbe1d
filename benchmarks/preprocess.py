"""Face-alignment preprocessing throughput (frames/s) with 1 and 2 worker processes, and the speed-up.

  python benchmarks/preprocess.py                          # 32 clips × 30 frames of 240×240, 64² faces
  python benchmarks/preprocess.py --image_size=144
  python benchmarks/preprocess.py --frame_size=640x480     # raw-camera-like frames (detection ~5× dearer)
  python benchmarks/preprocess.py --alignment=frame --with_flow --clips=8

Times `fdp_jax.preprocess.clips.preprocess_clips` — the code the corpus builders run: read JPEGs, dlib HOG
detection on the onset frame, 68 landmarks on every frame, similarity alignment, grey warp, optionally
TV-L1 flow — over synthetic clips it writes itself into a temporary folder: every frame is a crop around
the face of scikit-image's `astronaut` photo, resized to `--frame_size`, under a small random affine per
clip (±3°, ±3 % scale, ±4 px) and a sub-pixel drift per frame, saved as `img<N>.jpg` (JPEG quality 95).
No external data is needed and the input is the same on every run (`--seed`).

For each worker count the iterator is consumed fully (`progress=False`) and every clip must succeed (a clip
without a detected face stops the benchmark); the aligned frames must be identical for every worker count.
Reported per run:
  wall       — from the call to the last record, pool start-up included (spawning the workers, their
               imports, dlib's detector and 68-point model loading: ~1.5 s per process on this machine);
  first      — time until the first record arrives (start-up + one clip);
  frames/s   — all frames / wall;
  steady     — frames/s of the second half of the clips: their frames over the time from the arrival of
               the first half's last record to the last record (the first half absorbs start-up and the
               workers' staggered starts; halves are whole rounds of `workers` clips);
  CPU s      — user + system CPU time of the benchmark process and its worker processes during the run.
The speed-up is the 2-worker figure over the 1-worker one, for frames/s and for steady frames/s.
`--repeats` (default 2) runs the worker counts that many times, alternating; the table keeps each one's
fastest wall.
The 1-minute load average before each run is printed: another busy process makes the numbers meaningless.
"""

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The astronaut's face in skimage.data.astronaut() (512×512), and the square crop around it.
FACE_CENTRE = (220.0, 121.0)          # (x, y); the face spans about x 175–265, y 76–166
SQUARE_CROP = (130, 30, 330, 230)     # x0, y0, x1, y1


def parse_size(text: str) -> tuple[int, int]:
  """'240' → (240, 240); '640x480' → (640, 480) as (width, height)."""
  parts = text.lower().split('x')
  if len(parts) == 1:
    return int(parts[0]), int(parts[0])
  if len(parts) == 2:
    return int(parts[0]), int(parts[1])
  raise ValueError(f'--frame_size must be N or WxH, got {text!r}')


def crop_box(width: int, height: int) -> tuple[int, int, int, int]:
  """The region of the 512² photo that becomes a frame: the 200² box around the face for square frames,
  else the largest box of the frame's aspect ratio that fits, as centred on the face as it can be."""
  if width == height:
    return SQUARE_CROP
  aspect = width / height
  cw, ch = (512, 512 / aspect) if aspect >= 1 else (512 * aspect, 512)
  cw, ch = int(round(cw)), int(round(ch))
  x0 = int(min(max(FACE_CENTRE[0] - cw / 2, 0), 512 - cw))
  y0 = int(min(max(FACE_CENTRE[1] - ch / 2, 0), 512 - ch))
  return x0, y0, x0 + cw, y0 + ch


def write_clips(root: str, num_clips: int, num_frames: int, frame_size: tuple[int, int], seed: int):
  """Writes `num_clips` folders of `num_frames` JPEGs under `root`; returns their ClipSpecs."""
  import cv2
  import numpy as np
  import skimage.data

  from fdp_jax.preprocess.clips import ClipSpec

  photo = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
  x0, y0, x1, y1 = crop_box(*frame_size)
  rng = np.random.default_rng(seed)
  specs = []
  for c in range(num_clips):
    angle = rng.uniform(-3, 3)
    scale = rng.uniform(0.97, 1.03)
    shift = rng.uniform(-4, 4, 2)
    phase = rng.uniform(0, 2 * np.pi, 2)
    folder = os.path.join(root, f'clip{c:03d}')
    os.makedirs(folder)
    paths, numbers = [], []
    for t in range(num_frames):
      # Sub-pixel drift (≤ 0.6 px) around the clip's pose, like a barely moving head.
      drift = 0.6 * np.sin(2 * np.pi * t / max(num_frames, 1) + phase)
      matrix = cv2.getRotationMatrix2D(FACE_CENTRE, angle, scale)
      matrix[:, 2] += shift + drift
      moved = cv2.warpAffine(photo, matrix, (512, 512), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT101)
      frame = cv2.resize(moved[y0:y1, x0:x1], frame_size, interpolation=cv2.INTER_AREA)
      number = 100 + t
      path = os.path.join(folder, f'img{number}.jpg')
      if not cv2.imwrite(path, frame, [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise RuntimeError(f'could not write {path}')
      paths.append(path)
      numbers.append(number)
    specs.append(ClipSpec(sample_id=f'bench_{c:03d}', subject='astronaut', clip=f'clip{c:03d}',
                          emotion='others', frame_paths=tuple(paths), frame_numbers=tuple(numbers),
                          onset=0, apex=num_frames // 2, offset=num_frames - 1, corpus='benchmark'))
  return specs


def cpu_seconds() -> float:
  """User + system CPU time of this process and of its reaped children (the pool's workers)."""
  return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                resource.getrusage(resource.RUSAGE_CHILDREN)))


def measure(specs, options, workers: int) -> dict:
  """One full pass of preprocess_clips; returns the timings and the records' frames."""
  from fdp_jax.preprocess import clips

  arrivals, frames, failures = [], [], []
  cpu0 = cpu_seconds()
  t0 = time.perf_counter()
  for spec, record, error in clips.preprocess_clips(specs, options, workers=workers, progress=False):
    arrivals.append(time.perf_counter() - t0)
    if error is not None:
      failures.append(f'{spec.sample_id}: {error}')
    else:
      frames.append(record['frames'])
  wall = time.perf_counter() - t0       # the pool is closed and its workers reaped by now
  cpu = cpu_seconds() - cpu0
  if failures:
    raise SystemExit(f'{len(failures)} of {len(specs)} clips failed with {workers} worker(s):\n  '
                     + '\n  '.join(failures))
  if len(arrivals) != len(specs):
    raise SystemExit(f'{len(arrivals)} records for {len(specs)} clips')
  counts = [len(s.frame_paths) for s in specs]
  # The first half ends on a whole round of `workers` clips.
  half = workers * max(round(len(specs) / 2 / workers), 1)
  steady_frames = sum(counts[half:])       # 0 (steady: nan) when there are too few clips
  steady_time = arrivals[-1] - arrivals[half - 1] if steady_frames else 0.0
  return {
      'workers': workers, 'wall': wall, 'first': arrivals[0], 'cpu': cpu,
      'fps': sum(counts) / wall,
      'steady_fps': steady_frames / steady_time if steady_frames and steady_time > 0 else float('nan'),
      'frames': frames,
  }


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--clips', type=int, default=32, help='number of synthetic clips')
  p.add_argument('--frames', type=int, default=30, help='frames per clip')
  p.add_argument('--frame_size', default='240', help='frame size: N (square crop) or WxH, e.g. 640x480')
  p.add_argument('--image_size', type=int, default=64, help='aligned face size (64, or 144)')
  p.add_argument('--alignment', default='clip', choices=('clip', 'frame'))
  p.add_argument('--with_flow', action=argparse.BooleanOptionalAction, default=False,
                 help='also compute TV-L1 flow (opencv-contrib)')
  p.add_argument('--workers', default='1,2', help='comma-separated worker counts')
  p.add_argument('--repeats', type=int, default=2, help='runs per worker count; the fastest is kept')
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--keep', default='', help='write the frames here (kept) instead of a temporary folder')
  a = p.parse_args()

  import numpy as np

  from fdp_jax.preprocess.clips import AlignmentOptions

  frame_size = parse_size(a.frame_size)
  worker_counts = [int(w) for w in a.workers.split(',')]
  options = AlignmentOptions(image_size=a.image_size, alignment=a.alignment, with_flow=a.with_flow)
  root = a.keep or tempfile.mkdtemp(prefix='fdp_bench_preprocess_')
  os.makedirs(root, exist_ok=True)
  try:
    t0 = time.perf_counter()
    specs = write_clips(root, a.clips, a.frames, frame_size, a.seed)
    total = a.clips * a.frames
    print(f'input: {a.clips} clips × {a.frames} frames = {total} JPEG frames of '
          f'{frame_size[0]}×{frame_size[1]} (astronaut crop), written in {time.perf_counter() - t0:.1f} s')
    print(f'options: image_size={a.image_size} alignment={a.alignment} with_flow={a.with_flow}; '
          f'{os.cpu_count()} CPUs; steady = frames/s over the second half of the clips (start-up excluded)')
    best: dict[int, dict] = {}
    for r in range(a.repeats):
      for w in worker_counts:
        load = os.getloadavg()[0]
        m = measure(specs, options, w)
        print(f'  run {r + 1} workers={w}: load avg before {load:.2f}, wall {m["wall"]:.2f} s, '
              f'first record {m["first"]:.2f} s, {m["fps"]:.1f} frames/s, steady {m["steady_fps"]:.1f} frames/s, '
              f'CPU {m["cpu"]:.2f} s',
              flush=True)
        if w not in best or m['wall'] < best[w]['wall']:
          best[w] = m
    reference = best[worker_counts[0]]['frames']
    for w, m in best.items():
      if len(m['frames']) != len(reference) or not all(
          np.array_equal(x, y) for x, y in zip(m['frames'], reference)):
        raise SystemExit(f'workers={w} gave different frames from workers={worker_counts[0]}')
    print('\n| workers | wall (s) | first record (s) | frames/s | steady frames/s | CPU (s) |')
    print('|---:|---:|---:|---:|---:|---:|')
    for w, m in best.items():
      print(f'| {w} | {m["wall"]:.2f} | {m["first"]:.2f} | {m["fps"]:.1f} | {m["steady_fps"]:.1f} | {m["cpu"]:.2f} |')
    if 1 in best:
      for w, m in best.items():
        if w != 1:
          print(f'\nspeed-up {w} workers over 1: {m["fps"] / best[1]["fps"]:.2f}× overall (start-up included), '
                f'{m["steady_fps"] / best[1]["steady_fps"]:.2f}× steady state')
  finally:
    if not a.keep:
      shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
  main()
