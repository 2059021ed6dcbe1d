"""Spots and recognises micro- and macro-expressions in a user's own video with a finished spotting run
(`fdp_jax.spotting.video_analysis`).

  python -m fdp_jax.tools.analyze --workdir=SPOT_RUN --input=VIDEO_OR_FRAMES_DIR --output=DIR [--fold=SUBJECT]
      [--page_video=input|aligned]

How the video is read, spotted and classified: `fdp_jax.spotting.video_analysis`. Written to DIR:

  intervals.json       every spotted interval: type, frames and seconds, score, class and probabilities;
                       the segments without a face; what was used
  timeline.png         the score curves, the spotted intervals and the frames without a face
  interval_<k>.png     a contact sheet of each spotted interval's aligned frames
  index.html           the review page: open it in a browser (double-click) to watch the video with its
                       curves and intervals (video.mp4 beside it)

Exit status 1, with a message, for an unreadable file, a video without a face anywhere, or one shorter than a
snippet.
"""

from __future__ import annotations

import os

from absl import flags

from fdp_jax import caveats
from fdp_jax.preprocess import frame_folders
from fdp_jax.spotting import recognise, video_analysis
from fdp_jax.tools import common

FLAGS = flags.FLAGS


def define_flags() -> None:
  common.define_input_flags('A finished spotting run (launch.py with configs/spot_*.py).',
                            'A video file or a folder of frames.', 'Folder for intervals.json and the figures.',
                            "Held-out subject whose spotter to use (default: the run's first fold).")
  flags.DEFINE_float('fps', 0.0, 'Frame rate of a folder of frames (default: the corpus\'s).')
  flags.DEFINE_enum('page_video', 'input', video_analysis.PAGE_VIDEOS,
                    'What the review page plays: the input\'s frames, or the aligned face crops the spotter saw.')


def main(argv):
  del argv
  result = common.run_quietly(
      lambda: video_analysis.analyze_video(FLAGS.workdir, FLAGS.input, FLAGS.output, FLAGS.fold, FLAGS.fps,
                                           FLAGS.page_video),
      (video_analysis.AnalyzeError, recognise.RecognizerError, frame_folders.DuplicateFrameNumber, FileNotFoundError),
      'analyze: ')
  if result['warning']:
    print(f"WARNING: {result['warning']}")
  for seg in result['frames_without_face']:
    print(f"no face in frames {seg['first_frame']}–{seg['last_frame']}: skipped, never scored")
  for i in result['intervals']:
    print(f"{i['type']:5s} {i['onset_s']:7.2f}–{i['offset_s']:7.2f} s  score {i['score']:.2f}  "
          f"{caveats.describe(i['class'])}")
  print(f"{len(result['intervals'])} interval(s); written to {FLAGS.output}; to watch them open "
        f"{os.path.join(FLAGS.output, video_analysis.PAGE)}")


if __name__ == '__main__':
  common.start(define_flags, main)
