"""Spots and recognises micro- and macro-expressions in a user's own video with a finished spotting run
(`fdp_jax.spotting.video_analysis`).

  python -m fdp_jax.tools.analyze --workdir=SPOT_RUN --input=VIDEO_OR_FRAMES_DIR --output=DIR [--fold=SUBJECT]

The video goes through the long-video preprocessing of the corpus builders (`preprocess.long_video`: the face
detected and its landmarks tracked on every frame, aligned by temporally smoothed landmarks); frames where no
face is found are reported and never scored. The spotter of one fold of the run (default its first) scores a
snippet around every `spot.stride`-th frame, peaks over the video's own threshold become intervals (the
run's rule and that fold's interval lengths), and the recogniser's fold classifies each. A video whose frame
rate is a multiple of the corpus's is read at every k-th frame, so that a snippet spans the same time.
Written to DIR:

  intervals.json       every spotted interval: type, frames and seconds, score, class and probabilities;
                       the segments without a face; what was used
  timeline.png         the score curves, the spotted intervals and the frames without a face
  interval_<k>.png     a contact sheet of each spotted interval's aligned frames

Exit status 1, with a message, for an unreadable file, a video without a face anywhere, or one shorter than a
snippet.
"""

from __future__ import annotations

from absl import flags

from fdp_jax.preprocess import frame_folders
from fdp_jax.spotting import recognise
from fdp_jax.spotting.video_analysis import AnalyzeError, analyze_video
from fdp_jax.tools import common

FLAGS = flags.FLAGS


def define_flags() -> None:
  common.define_input_flags('A finished spotting run (launch.py with configs/spot_*.py).',
                            'A video file or a folder of frames.', 'Folder for intervals.json and the figures.',
                            "Held-out subject whose spotter to use (default: the run's first fold).")
  flags.DEFINE_float('fps', 0.0, 'Frame rate of a folder of frames (default: the corpus\'s).')


def main(argv):
  del argv
  result = common.run_quietly(
      lambda: analyze_video(FLAGS.workdir, FLAGS.input, FLAGS.output, FLAGS.fold, FLAGS.fps),
      (AnalyzeError, recognise.RecognizerError, frame_folders.DuplicateFrameNumber, FileNotFoundError),
      'analyze: ')
  for seg in result['frames_without_face']:
    print(f"no face in frames {seg['first_frame']}–{seg['last_frame']}: skipped, never scored")
  for i in result['intervals']:
    print(f"{i['type']:5s} {i['onset_s']:7.2f}–{i['offset_s']:7.2f} s  score {i['score']:.2f}  {i['class']}")
  print(f"{len(result['intervals'])} interval(s); written to {FLAGS.output}")


if __name__ == '__main__':
  common.start(define_flags, main)
