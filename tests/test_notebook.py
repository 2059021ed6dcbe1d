"""notebooks/colab_tpu.ipynb: a valid notebook whose code cells, run in order with a tiny config on CPU,
build the corpus, run a fold-parallel LOSO and draw the results."""

import json
import os
import re
import subprocess
import sys

import nbformat
import pytest

from conftest import REPO

NOTEBOOK = os.path.join(REPO, 'notebooks', 'colab_tpu.ipynb')
TINY = ('--config.data.builder_config=tiny --config.data.image_size=32 --config.data.num_frames=4 '
        '--config.data.num_threads=1 --config.train.batch_size=4 --config.train.num_steps=3 '
        '--config.train.warmup_steps=1 --config.eval.batch_size=4 --config.cv.subjects=s00,s01,s02')


def as_python(source: str) -> str:
  """The IPython a Colab cell uses, as plain Python: `!cmd` runs `cmd` in a shell ({NAME} expanded from the
  cell's variables, as IPython does) and must succeed; `%cd DIR` changes directory. Any other magic fails
  the test, so the notebook stays runnable by this check."""
  out = []
  for line in source.splitlines():
    indent, body = re.match(r'(\s*)(.*)', line).groups()
    if body.startswith('!'):
      out.append(f'{indent}_shell({body[1:]!r}.format_map(globals()))')
    elif body.startswith('%cd '):
      out.append(f'{indent}os.chdir({body[4:]!r}.format_map(globals()))')
    elif body.startswith('%'):
      raise AssertionError(f'unsupported magic in the notebook: {line}')
    else:
      out.append(line)
  return '\n'.join(out)


def _shell(command: str) -> None:
  proc = subprocess.run(command, shell=True, capture_output=True, text=True)
  assert proc.returncode == 0, f'{command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'


def test_notebook_is_valid_and_its_cells_run(tiny_data_dir, tmp_path, monkeypatch):
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  nbformat.validate(notebook)
  assert notebook.metadata['accelerator'] == 'TPU'
  code = [cell.source for cell in notebook.cells if cell.cell_type == 'code']
  assert 'parallel_folds=0' in '\n'.join(code)
  monkeypatch.setenv('MPLBACKEND', 'Agg')
  # The cells' `!python` is this interpreter, whether or not its environment is activated.
  monkeypatch.setenv('PATH', os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''))
  monkeypatch.chdir(tmp_path)
  namespace = {'__name__': '__notebook__', '_shell': _shell, 'os': os}
  exec(compile(as_python(code[0]), 'parameters', 'exec'), namespace)
  assert {'CONFIG', 'DATASET', 'CORPUS_DRIVE_DIR', 'WORKDIR', 'OVERRIDES'} <= set(namespace)
  workdir = str(tmp_path / 'run')
  namespace.update(REPO_DIR=str(REPO), DATA_DIR=tiny_data_dir, BUILDER_CONFIG='tiny', WORKDIR=workdir,
                   OVERRIDES=TINY)
  for i, source in enumerate(code[1:], 1):
    exec(compile(as_python(source), f'cell {i}', 'exec'), namespace)
  results = json.load(open(os.path.join(workdir, 'results.json')))
  assert [f['subject'] for f in results['folds']] == ['s00', 's01', 's02']
  timing = json.load(open(os.path.join(workdir, 'timing.json')))
  assert timing['mesh']['fold'] == 2       # the suite's two fake devices: the folds were spread over both
  assert os.path.getsize(os.path.join(workdir, 'confusion_matrix.png')) > 1000


def test_shell_lines_are_translated_and_other_magics_refused():
  assert as_python('  !echo {X}') == "  _shell('echo {X}'.format_map(globals()))"
  with pytest.raises(AssertionError, match='unsupported magic'):
    as_python('%timeit f()')
