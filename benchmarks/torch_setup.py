"""What the PyTorch measurements (benchmarks/torch_parity.py, benchmarks/torch_step.py) do before anything
else: put the repository on the path, and stop with a message where PyTorch, which fdp_jax does not depend
on, is not installed."""

import importlib.util
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

if importlib.util.find_spec('torch') is None:
  sys.exit(f'{os.path.basename(sys.argv[0])} needs PyTorch, which fdp_jax does not depend on: pip install torch')
