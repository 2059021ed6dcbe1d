"""A page for reviewing spotting by watching: the video, under it the P(micro) / P(macro) curves with a cursor
that follows playback, the spotted intervals as segments that seek the video when clicked, the frames without
a face shaded, and per interval its times, type, score, class (`caveats.decided_class`: "undecided" near
uniform) with its probabilities. Keys: space plays / pauses, arrows step one frame, n / p jump to the
next / previous spotted interval.

One self-contained HTML file (`review_page.html` with the data inlined as JSON; inline script and style, no
network), so that it opens by double-click from the file system; each video is an H.264 MP4 beside it,
re-encoded with the ffmpeg that `imageio-ffmpeg` ships (no system ffmpeg needed), at the frame rate of the
frames scored, so that frame k starts at k / fps seconds.

Two pages use it:
  analyze's index.html    a user's video (the frames read, in colour, or the aligned face crops on request)
  a spotting run's report.html   every held-out video's aligned frames, the annotated intervals beside the
                          spotted ones, coloured by outcome: true positive, false positive, missed
"""

from __future__ import annotations

import html
import json
import os
import warnings
from typing import Iterable, Sequence

import numpy as np

from fdp_jax import caveats, rundir

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'review_page.html')
# Encoded frame heights: small aligned crops are enlarged (nearest neighbour) to at least MIN_HEIGHT, large
# frames shrunk to at most MAX_HEIGHT, keeping the page's videos small.
MIN_HEIGHT, MAX_HEIGHT = 240, 480


def _frame_size(height: int, width: int) -> tuple[int, int]:
  """(height, width) to encode a frame of this size at: even (yuv420p), within [MIN_HEIGHT, MAX_HEIGHT]."""
  scale = -(-MIN_HEIGHT // height) if height < MIN_HEIGHT else min(1.0, MAX_HEIGHT / height)
  return 2 * max(1, round(height * scale / 2)), 2 * max(1, round(width * scale / 2))


def encode_video(frames: Iterable[np.ndarray | None], path: str, fps: float) -> int:
  """Writes `frames` (each (H, W, 3) BGR or (H, W[, 1]) grey uint8, all of one size; None, an unreadable frame,
  as black) as an H.264 MP4 at `fps`; returns the number of frames written."""
  import cv2
  import imageio_ffmpeg
  writer, size, count = None, None, 0
  try:
    for frame in frames:
      if frame is not None:
        frame = np.asarray(frame)
        frame = cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2RGB) if frame.ndim == 2 or \
            frame.shape[-1] == 1 else cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
      if writer is None:
        if frame is None:
          raise ValueError(f'{path}: the first frame is unreadable, so the video size is unknown')
        h, w = _frame_size(*frame.shape[:2])
        size = (w, h)
        writer = imageio_ffmpeg.write_frames(path, size, fps=fps, codec='libx264', pix_fmt_in='rgb24',
                                             pix_fmt_out='yuv420p', macro_block_size=2, quality=None,
                                             output_params=['-crf', '23', '-movflags', '+faststart'],
                                             ffmpeg_log_level='error')
        with warnings.catch_warnings():
          # JAX warns of any fork in a process that runs it; this child execs ffmpeg at once.
          warnings.filterwarnings('ignore', message=r'os\.fork\(\) was called', category=RuntimeWarning)
          writer.send(None)
      if frame is None:
        frame = np.zeros((size[1], size[0], 3), np.uint8)
      elif frame.shape[:2] != (size[1], size[0]):
        enlarge = size[1] > frame.shape[0]
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_NEAREST if enlarge else cv2.INTER_AREA)
      writer.send(np.ascontiguousarray(frame))
      count += 1
  finally:
    if writer is not None:
      writer.close()
  return count


def curves(curve: np.ndarray) -> dict:
  """{'micro': [...], 'macro': [...]} of an (N, 3) none/micro/macro curve: per frame, 3 decimals, None where
  no snippet was scored."""
  return {kind: [None if np.isnan(p) else round(float(p), 3) for p in curve[:, c]]
          for c, kind in ((1, 'micro'), (2, 'macro'))}


def spotted_view(interval: dict, class_names: Sequence[str], decided: str | None = None) -> dict:
  """One spotted interval as the page shows it ({'onset', 'offset', 'type', 'score', 'probabilities' and
  optionally 'outcome', 'sheet'} in); its class `decided`, by default `caveats.decided_class` of its
  probabilities."""
  probabilities = interval['probabilities']
  view = {k: interval[k] for k in ('onset', 'offset', 'type', 'score')}
  view['probabilities'] = probabilities
  view['class'] = decided or caveats.decided_class([probabilities[c] for c in class_names], class_names)
  for key in ('outcome', 'sheet'):
    if key in interval:
      view[key] = interval[key]
  return view


def video_view(title: str, src: str, fps: float, curve: np.ndarray | None, no_face: list, spotted: list[dict],
               about: list[str], frame_step: int = 1, truth: list[dict] | None = None,
               baseline: list[dict] | None = None) -> dict:
  """One video as the page shows it: `src` (relative to the page) at `fps`, its (N, 3) none/micro/macro `curve`,
  [first, last] runs of frames without a face, spotted intervals (`spotted_view`), lines `about` it; `frame_step`:
  input frames per frame shown; `truth` / `baseline` rows when the video has them."""
  num_frames = len(curve)
  return {'title': title, 'src': src, 'fps': fps, 'frame_step': frame_step, 'num_frames': num_frames,
          'curves': curves(curve), 'no_face': no_face, 'spotted': spotted, 'truth': truth,
          'baseline': baseline, 'about': about}


def run_video_view(entry: dict, curve: np.ndarray | None, src: str, fps: float, class_names: Sequence[str]
                   ) -> dict:
  """A held-out video of a spotting run (its results.json entry) as the page shows it: spotted intervals
  true or false positives, annotated ones found or missed (`true_positives`: [spotted, annotated] pairs)."""
  matched_spotted = {s for s, _ in entry['true_positives']}
  matched_truth = {t for _, t in entry['true_positives']}
  spotted = [spotted_view({**i, 'outcome': 'TP' if k in matched_spotted else 'FP'}, class_names)
             for k, i in enumerate(entry['spotted'])]
  truth = [{**{k: i[k] for k in ('onset', 'offset', 'type')}, 'class': i['emotion'] or '',
            'outcome': 'TP' if k in matched_truth else 'FN'} for k, i in enumerate(entry['truth'])]
  found = len(matched_truth)
  if curve is None:
    curve = np.full((entry['num_frames'], 3), np.nan)
  about = [f"subject {entry['subject']}, {entry['num_frames']} frames at {fps:g} fps",
           f"{len(truth)} annotated, {len(spotted)} spotted: {found} found, "
           f"{len(spotted) - len(matched_spotted)} false positive(s), {len(truth) - found} missed",
           'the aligned face crops the spotter saw']
  return video_view(entry['video_id'], src, fps, curve, entry['no_face'], spotted, about, truth=truth,
                    baseline=entry['baseline'])


def write_page(path: str, title: str, videos: list[dict], warning: str = '', judged: bool = False) -> None:
  """Writes the page: `videos` as `video_view` makes them, a chooser when several;
  `judged`: intervals coloured by outcome against annotations rather than by type."""
  data = {'title': title, 'warning': warning, 'judged': judged, 'undecided_rule': caveats.UNDECIDED_RULE,
          'videos': videos}
  # '<' escaped so that no string in the data can close the script element it sits in.
  payload = json.dumps(data, separators=(',', ':')).replace('<', '\\u003c')
  with open(TEMPLATE) as f:
    page = f.read()
  page = page.replace('__TITLE__', html.escape(title)).replace('__DATA__', payload)
  with open(path, 'w') as f:
    f.write(page)


def write_run_page(workdir: str, results: dict, videos: list, curves: dict[str, np.ndarray]) -> str:
  """A spotting run's review page (`rundir.REVIEW_PAGE`) over every held-out video of its results.json dict
  `results` (`videos`: the corpus's `spotting.videos.Video`s, `curves`: {video_id: (N, 3)}), each video's
  aligned frames encoded under `rundir.REVIEW_DIR`; returns the page's path."""
  by_id = {v.video_id: v for v in videos}
  class_names = results['recognizer']['class_names']
  os.makedirs(rundir.path(workdir, rundir.REVIEW_DIR), exist_ok=True)
  views = []
  for entry in results['videos']:
    video, src = by_id[entry['video_id']], rundir.review_video(entry['video_id'])
    encode_video(iter(video.frames), rundir.path(workdir, src), video.fps)
    views.append(run_video_view(entry, curves.get(entry['video_id']), src, video.fps, class_names))
  d = results['dataset']
  path = rundir.path(workdir, rundir.REVIEW_PAGE)
  write_page(path, f"Spotting, LOSO on {d['name']}/{d['config']}: held-out videos", views, judged=True)
  return path
