"""Runs a trained fold's model on a new clip (`fdp_jax.clip_prediction`).

  python -m fdp_jax.tools.predict --workdir=RUN --input=FRAMES_DIR_OR_VIDEO --output=DIR [--fold=SUBJECT]
      [--onset=I --offset=J]

The clip goes through the builders' preprocessing (dlib face on the onset frame, 68 landmarks on every frame,
one alignment matrix per clip), then the run's frame sampling and normalisation, then the model of one fold
(by default the run's first; any fold's model never saw its own subject). Written to DIR:

  prediction.json     class probabilities, the predicted class ("undecided" near uniform), the window and
                      frames used, the checkpoint, and a warning for a run trained on synthetic faces
  contact_sheet.png   the aligned frames of the window (the sampled ones framed in white)
  dynamic_image.png   FDP: the dynamic image of the sampled frames beside the one the model decodes
  flow_landmarks.png  MOL: per frame pair, the predicted landmarks on the frame and the predicted flow
  frames/             for a video input, its frames as PNG files (what the preprocessing read)

PATH is a folder of frames (image files read as the corpus builders read them, `preprocess.frame_folders`:
in numeric order of the number ending their names, hidden files ignored) or a video file OpenCV can decode.
Onset/offset are indices into those frames (default: the whole clip).
"""

from __future__ import annotations

from absl import flags

from fdp_jax import caveats
from fdp_jax.clip_prediction import PredictError, predict_clip
from fdp_jax.tools import common

FLAGS = flags.FLAGS


def define_flags() -> None:
  common.define_input_flags('Run directory written by launch.py.', 'A folder of frames or a video file.',
                            'Folder for prediction.json and the images.',
                            'Held-out subject whose model to use (default: the run\'s first fold).')
  flags.DEFINE_integer('onset', None, 'Index of the first frame of the window (default 0).')
  flags.DEFINE_integer('offset', None, 'Index of the last frame of the window (default: the last frame).')


def main(argv):
  del argv
  prediction = common.run_quietly(
      lambda: predict_clip(FLAGS.workdir, FLAGS.input, FLAGS.output, FLAGS.fold, FLAGS.onset, FLAGS.offset),
      (PredictError, FileNotFoundError), 'predict: ')
  if prediction['warning']:
    print(f"WARNING: {prediction['warning']}")
  best = sorted(prediction['probabilities'].items(), key=lambda kv: -kv[1])
  print(f"{caveats.describe(prediction['predicted_class'])}  (" + ', '.join(f'{k} {v:.3f}' for k, v in best) + ')')
  print(f"window {prediction['window']['onset']}..{prediction['window']['offset']}, frames "
        f"{prediction['window']['sampled_frames']}; checkpoint {prediction['checkpoint']['path']}")
  print(f'written to {FLAGS.output}')


if __name__ == '__main__':
  common.start(define_flags, main)
