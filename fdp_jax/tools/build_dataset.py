"""Builds a corpus's TFDS dataset through the Python API (the `tfds` command needs TensorFlow; this does not).

  python -m fdp_jax.tools.build_dataset --dataset=synthetic_me --config=default
  python -m fdp_jax.tools.build_dataset --dataset=casme2 --manual_dir=/data/CASME2 --data_dir=~/tensorflow_datasets

TFDS writes into an `incomplete.*` folder and renames it only when every split is written, so an
interrupted build never reads as a complete dataset; rerunning the command starts it again cleanly and
deletes the folder the interrupted one left (`data_sources.remove_interrupted_builds`).
"""

import os
import sys

from absl import app, flags

from fdp_jax import data_sources

flags.DEFINE_string('dataset', 'synthetic_me', 'Corpus name: a folder datasets/<name>/.')
flags.DEFINE_string('config', None, 'Builder config name (default: the builder\'s first).')
flags.DEFINE_string('data_dir', None, 'Output root (default: $TFDS_DATA_DIR or ~/tensorflow_datasets).')
flags.DEFINE_string('manual_dir', None, 'Folder holding the licensed corpus (real corpora only).')
flags.DEFINE_integer('workers', None, 'Preprocessing processes for real corpora (default: all cores).')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  import tensorflow_datasets as tfds
  kwargs = {'workers': FLAGS.workers} if FLAGS.workers else {}
  builder = data_sources.get_builder(FLAGS.dataset, FLAGS.config, FLAGS.data_dir, **kwargs)
  instructions = getattr(builder, 'MANUAL_DOWNLOAD_INSTRUCTIONS', None)
  if instructions and not builder.is_prepared():
    if not FLAGS.manual_dir or not os.path.isdir(FLAGS.manual_dir):
      where = f'{FLAGS.manual_dir} is not a folder' if FLAGS.manual_dir else 'no --manual_dir given'
      sys.exit(f'{builder.name} is built from your licensed copy of the corpus ({where}).\n'
               f'Pass --manual_dir=DIR, the folder holding it.\n{instructions}')
  download_config = tfds.download.DownloadConfig(manual_dir=FLAGS.manual_dir) if FLAGS.manual_dir else None
  if not builder.is_prepared():
    data_sources.remove_interrupted_builds(builder)
  builder.download_and_prepare(download_config=download_config)
  print(f'{builder.info.full_name}: {builder.info.splits} at {builder.data_dir}')
  if builder.info.metadata and 'num_skipped' in builder.info.metadata:
    print(builder.info.description.split('Build report: ', 1)[-1])


if __name__ == '__main__':
  app.run(main)
