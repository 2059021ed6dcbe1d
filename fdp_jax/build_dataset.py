"""Builds a corpus's TFDS dataset through the Python API (the `tfds` command needs TensorFlow; this does not).

  python -m fdp_jax.build_dataset --dataset=synthetic_me --config=default
  python -m fdp_jax.build_dataset --dataset=casme2 --manual_dir=/data/CASME2 --data_dir=~/tensorflow_datasets

TFDS writes into an `incomplete.*` folder and renames it only when every split is written, so an
interrupted build never reads as a complete dataset; rerunning the command starts it again cleanly.
"""

from absl import app, flags

from fdp_jax import data_sources

flags.DEFINE_string('dataset', 'synthetic_me', 'Corpus name: a folder datasets/<name>/.')
flags.DEFINE_string('config', None, 'Builder config name (default: the builder\'s first).')
flags.DEFINE_string('data_dir', None, 'Output root (default: $TFDS_DATA_DIR or ~/tensorflow_datasets).')
flags.DEFINE_string('manual_dir', None, 'Folder holding the licensed corpus (real corpora only).')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  import tensorflow_datasets as tfds
  builder = data_sources.get_builder(FLAGS.dataset, FLAGS.config, FLAGS.data_dir)
  download_config = tfds.download.DownloadConfig(manual_dir=FLAGS.manual_dir) if FLAGS.manual_dir else None
  builder.download_and_prepare(download_config=download_config)
  print(f'{builder.info.full_name}: {builder.info.splits} at {builder.data_dir}')


if __name__ == '__main__':
  app.run(main)
