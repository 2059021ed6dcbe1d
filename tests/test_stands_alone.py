"""The repository stands alone: a clone, a Colab session or a reviewer has the repository and nothing beside
it, so no tracked file may reach for a path outside it (the parity fixtures live in tests/fixtures/)."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

# Written so that this file does not match them itself.
ESCAPES = [
    (re.compile(r'\.\.[/\\]+shared\b'), 'a sibling folder of the checkout'),
    (re.compile(r'(?<![\w-])shared[/\\](?:reference|docs|hooks)\b'), 'a team folder beside the checkout'),
    (re.compile(r"""['"]\.\.['"]\s*,\s*['"]\.\.['"]"""), 'two parent steps in one path'),
    (re.compile(r'\.parents\[\d+\]\.parent\b'), 'the parent of a parent of this file'),
    (re.compile(r'(?<![\w.~-])/(?:work|root|home/\w+)/'), "an absolute path of one machine"),
]
PARENTS = re.compile(r'Path\(__file__\)(?:\.resolve\(\))?\.parents\[(\d+)\]')
BINARY = ('.npz', '.png', '.jpg', '.jpeg', '.bmp', '.gif', '.pdf', '.xlsx', '.array_record')
SKIP_DIRS = {'.git', '.venv', 'runs', '__pycache__', '.pytest_cache'}


def repository_files(root: Path) -> list[Path]:
  """The tracked files (a git checkout), or every file outside build and run folders (an unpacked archive)."""
  try:
    out = subprocess.run(['git', 'ls-files', '-z'], cwd=root, capture_output=True, check=True).stdout
    return [root / name for name in out.decode().split('\0') if name and (root / name).is_file()]
  except (OSError, subprocess.CalledProcessError):
    files = []
    for folder, dirs, names in os.walk(root):
      dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
      files += [Path(folder) / n for n in names]
    return files


def escapes(path: Path, root: Path) -> list[str]:
  """'file:line: what' for every reference in `path` to a place outside `root`."""
  relative = path.relative_to(root)
  try:
    text = path.read_text(encoding='utf-8')
  except UnicodeDecodeError:
    return []
  found = []
  for number, line in enumerate(text.splitlines(), 1):
    for pattern, what in ESCAPES:
      if pattern.search(line):
        found.append(f'{relative}:{number}: {what}: {line.strip()}')
    for match in PARENTS.finditer(line):
      # parents[k] of a/b/c.py is the repository's root for k = 2; more climbs out of it.
      if int(match.group(1)) >= len(relative.parts):
        found.append(f'{relative}:{number}: a folder above the repository: {line.strip()}')
  return found


def test_no_file_refers_to_a_path_outside_the_repository():
  files = [f for f in repository_files(REPO) if f.suffix.lower() not in BINARY]
  assert len(files) > 50 and REPO / 'tests' / 'conftest.py' in files
  found = [hit for f in files for hit in escapes(f, REPO)]
  assert not found, 'copy what is needed into the repository instead:\n' + '\n'.join(found)


# Each example is assembled from pieces, so that this file does not hold the escapes it checks for.
UP = '..'
@pytest.mark.parametrize('line, where', [
    (f"REFERENCE = os.path.join(os.path.dirname(__file__), '{UP}', '{UP}', 'data')", 'tests/x.py'),
    ("FIXTURE = Path(__file__).resolve().parents[1]" + ".parent / 'data.npz'", 'tests/x.py'),
    ('The fixtures in `' + UP + '/shared' + '/reference/` cover pieces', 'README.md'),
    ("ROOT = Path(__file__).resolve().parents" + "[2]", 'tests/x.py'),
    ("data_dir = '/" + "root/tensorflow_datasets'", 'configs/x.py'),
])
def test_the_scan_finds_each_kind_of_escape(tmp_path, line, where):
  path = tmp_path / where
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(f'x = 1\n{line}\n')
  assert {hit.split(':')[1] for hit in escapes(path, tmp_path)} == {'2'}


@pytest.mark.parametrize('line, where', [
    ("REPO = Path(__file__).resolve().parents[1]", 'tests/conftest.py'),
    ("data_dir = os.path.expanduser('~/tensorflow_datasets')", 'fdp_jax/x.py'),
    ('the fixtures in `tests/fixtures/` are shared by the parity tests', 'README.md'),
])
def test_the_scan_accepts_paths_inside_the_repository(tmp_path, line, where):
  path = tmp_path / where
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(line + '\n')
  assert escapes(path, tmp_path) == []
