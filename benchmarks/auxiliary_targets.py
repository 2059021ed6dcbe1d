"""What FDP's two auxiliary targets allow on the synthetic corpus: the yardsticks for the logged `loss_rank`,
`rank_tau` and `di_unexplained` curves (benchmarks/README.md, "FDP's parts").

1. The ranking loss and Kendall τ of simple scorers.

The 8 frames of a clip are sampled over its onset → offset window (`data.window`, evaluation positions of
`data.frame_sampling='segments'`), so the expression rises to its apex in the first third and decays after it.
A scorer that sees one frame at a time can only order frames by what the frame shows — here, the
expression's intensity — and frames on either side of the apex look alike. The scorers:

  ties                    every frame the same score (the scorer at initialisation)
  random order            scores in a random order
  falling with intensity  −intensity: what a monotone reading of the expression gives
  E[position | intensity] the best function of intensity alone (fitted on subjects s00–s04, scored on
                          s05–s09): it needs to tell the onset (intensity 0) from the decay's tail
  chronological           the true order

2. The dynamic-image target (`preprocess.dynamic_image.dynamic_image_uint8`: the released min-max normalised
   image) of clips of 6 subjects, the decoder's loss for: the batch's mean image (`di_unexplained` 1), each
   clip's own grey level kept and its pattern replaced by the mean's, and the dynamic image of the same
   frames rendered without sensor noise and flicker (what no decoder can predict is the rest).

  python benchmarks/auxiliary_targets.py
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from configs import synthetic  # noqa: E402
from fdp_jax import input_pipeline, training_signals  # noqa: E402
from fdp_jax.corpora import face_drawing, face_motion, synthetic_faces  # noqa: E402
from fdp_jax.input_pipeline import sample_frame_indices  # noqa: E402
from fdp_jax.models import rank_pooling  # noqa: E402

SUBJECTS, CLIPS, MIN_FRAMES, MAX_FRAMES = 10, 24, 20, 36   # synthetic_me/default's builder config


def sampled_intensities(data_config) -> np.ndarray:
  """(subjects, clips, T) expression intensity of the frames evaluation samples from each clip's window."""
  out = np.zeros((SUBJECTS, CLIPS, data_config.num_frames))
  for s in range(SUBJECTS):
    subject = face_drawing.make_subject(0, s, data_config.image_size)
    for c in range(CLIPS):
      motion = face_motion.make_motion(subject, c, c % 5, 0, MIN_FRAMES, MAX_FRAMES)
      start, stop = motion.onset, motion.offset + 1
      idx = start + sample_frame_indices(stop - start, data_config.num_frames, data_config.frame_sampling, None,
                                         0.5)
      out[s, c] = motion.intensity[idx]
  return out


def score(name: str, scores: np.ndarray, temperature: float) -> str:
  scores = jnp.asarray(scores, jnp.float32)
  mask = jnp.ones(scores.shape, bool)
  loss = float(rank_pooling.ranking_loss(scores, mask, temperature))
  tau = float(np.mean(training_signals.kendall_tau(scores, mask)))
  return f'| {name} | {loss:.3f} | {tau:+.3f} |'


def main():
  config = synthetic.get_config()
  intensity = sampled_intensities(config.data)
  fit, held = intensity[:5].reshape(-1, config.data.num_frames), intensity[5:].reshape(-1, config.data.num_frames)
  t = config.data.num_frames
  bins = np.linspace(0, 1, 41)
  fit_bin, held_bin = np.digitize(fit, bins), np.digitize(held, bins)
  positions = np.broadcast_to(np.arange(t), fit.shape)
  expected = np.array([positions[fit_bin == k].mean() if (fit_bin == k).any() else t / 2 for k in range(42)])
  rng = np.random.default_rng(0)
  sharp = 20.0   # scores spread well beyond the soft rank's temperature: the ranks are hard
  temperature = config.loss.rank_temperature
  print(f'{len(held)} clips of synthetic_me/default (s05–s09), {t} frames over onset → offset; ranking loss at '
        f'temperature {temperature}\n')
  print('| scorer | ranking loss | Kendall τ |\n|---|---:|---:|')
  print(score('ties', np.zeros_like(held), temperature))
  print(score('random order', sharp * np.stack([rng.permutation(t) for _ in held]), temperature))
  print(score('falling with intensity', -sharp * held, temperature))
  print(score('E[position | intensity]', sharp * (expected[held_bin] + 1e-3 * held), temperature))
  print(score('chronological', sharp * np.broadcast_to(np.arange(t), held.shape), temperature))
  dynamic_image_target(config)


def dynamic_image_target(config) -> None:
  transform = input_pipeline.ClipTransform(config.data, train=False)
  noisy, clean = [], []
  for s in range(6):
    subject = face_drawing.make_subject(0, s, config.data.image_size)
    for c in range(4):
      for store, noise in ((noisy, True), (clean, False)):
        record = synthetic_faces.make_clip(subject, c, c % 5, 0, MIN_FRAMES, MAX_FRAMES, noise=noise)
        store.append(transform(dict(record, label=c % 5, _index=0))['dynamic_image'])
  noisy, clean = np.stack(noisy), np.stack(clean)
  mean = noisy.mean(0)
  spread = float(np.square(noisy - mean).mean())
  levels = noisy.mean((1, 2), keepdims=True)
  rows = (("the batch's mean image", mean),
          ("each clip's own grey level, the mean image's pattern", mean - mean.mean() + levels),
          ('the noise-free rendering\'s dynamic image', clean))
  print(f'\n{len(noisy)} clips of 6 subjects, {config.data.image_size} px: the dynamic images\' spread about '
        f'their mean {spread:.4f} (MSE)\n')
  print('| predictor | MSE | di_unexplained |\n|---|---:|---:|')
  for name, prediction in rows:
    mse = float(np.square(noisy - prediction).mean())
    print(f'| {name} | {mse:.4f} | {mse / spread:.3f} |')


if __name__ == '__main__':
  main()
