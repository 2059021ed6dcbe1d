"""Speed and peak memory of a full PyTorch training step of the released FDP (benchmarks/torch_fdp.py) on this
machine: the same-machine baseline for the JAX steps of benchmarks/train_step.py.

  python benchmarks/torch_step.py --steps=5       # batch 8, 8×64×64

One step is train mode, forward, NLL(log_softmax) + 100·MSE, backward, Adam lr 1e-4 with coupled weight decay
1e-3; it is timed after one warm-up step, and one JSON line is printed in the style of benchmarks/train_step.py.
"""

import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch_setup  # noqa: E402,F401

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from torch_fdp import ReleasedFDPTorch  # noqa: E402


def time_train_step(batch: int, frames: int, image: int, num_steps: int, seed: int) -> dict:
  """Milliseconds per full PyTorch training step of the released model on random data."""
  torch.manual_seed(seed)
  model = ReleasedFDPTorch().train()
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-3)
  clips = torch.rand(batch, frames, 1, image, image) * 2 - 1
  target = torch.rand(batch, image, image)
  labels = torch.randint(0, 5, (batch,))

  def step():
    optimizer.zero_grad(set_to_none=True)
    logits, dynamic_image, _, _ = model(clips)
    loss = F.nll_loss(F.log_softmax(logits, -1), labels) + 100 * F.mse_loss(dynamic_image, target)
    loss.backward()
    optimizer.step()
    return loss.item()

  t0 = time.perf_counter()
  step()
  warmup_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  for _ in range(num_steps):
    loss = step()
  dt = (time.perf_counter() - t0) / num_steps
  return {
      'model': 'released_torch', 'framework': f'torch {torch.__version__}', 'device': 'cpu',
      'threads': torch.get_num_threads(), 'batch': batch, 'frames': frames, 'image': image,
      'params': sum(p.numel() for p in model.parameters()), 'warmup_s': round(warmup_s, 1),
      'step_ms': round(dt * 1000, 1), 'clips_per_s': round(batch / dt, 2), 'loss': round(loss, 4),
      'peak_rss_mib': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
  }


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--batch', type=int, default=8)
  p.add_argument('--steps', type=int, default=5)
  p.add_argument('--seed', type=int, default=0)
  a = p.parse_args()
  print(json.dumps(time_train_step(a.batch, 8, 64, a.steps, a.seed)))


if __name__ == '__main__':
  main()
