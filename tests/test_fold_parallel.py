"""Fold-parallel cross-validation: K folds stacked, vmapped and sharded over fake CPU devices across two
processes, each fold's batch split over a data axis, train as they do one after another."""

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import REPO, fold_parallel_job_config, top_two_margins
from fdp_jax import experiment, rundir
from fdp_jax.cv import parallel

JOB = os.path.join(REPO, 'tests', 'fold_parallel_job.py')


def _job(data_dir, workdir, parallel_folds, **flags):
  cmd = [sys.executable, JOB, data_dir, str(workdir), str(parallel_folds)]
  cmd += [f'--{k}={v}' for k, v in flags.items()]
  return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc, timeout=600):
  out, _ = proc.communicate(timeout=timeout)
  assert proc.returncode == 0, out[-4000:]
  return out


def _results(workdir):
  with open(os.path.join(workdir, 'results.json')) as f:
    return json.load(f)


def _checkpoint(workdir, subject):
  with ocp.CheckpointManager(rundir.checkpoint_dir(workdir, subject)) as manager:
    return manager.restore(manager.latest_step(), args=ocp.args.StandardRestore())


def _assert_params_close(a, b, lr, largest=0.25):
  """Equal to float32 tolerance. The same per-device program rounds differently on a 1-device and on a
  4-device mesh of XLA:CPU (a rerun on the same mesh is bitwise equal), and Adam turns rounding noise in
  near-zero gradients into steps of up to the learning rate. A fold trained on the wrong data or key
  differs by O(lr) in every parameter, ‖x − y‖ ≈ lr·√N, which the L2 bound (a hundredth of that) catches.
  Measured at lr 3e-2 (162,751 parameters; natively, and with XLA capped at AVX and at SSE4_2): ‖x − y‖ =
  5.6–8.7e-4·lr·√N, largest element 0.04–0.09·lr."""
  x = np.concatenate([np.ravel(v) for v in jax.tree.leaves(a)])
  y = np.concatenate([np.ravel(v) for v in jax.tree.leaves(b)])
  assert x.size == y.size > 100_000
  assert np.linalg.norm(x - y) <= 0.01 * lr * np.sqrt(x.size)
  assert np.abs(x - y).max() <= largest * lr


def _free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


@pytest.fixture(scope='module')
def runs(tiny_data_dir, tmp_path_factory):
  """The 4-fold tiny LOSO two ways: sequential, in this process (one fold at a time, on one of its 2 fake
  devices); and all 4 folds at once by two processes of 2 fake devices each, on a (fold 2, data 2) mesh:
  each process holds one device row, vmaps 2 folds, and splits every fold's batch over its 2 devices. The
  two-process job is killed after its step-2 checkpoint and rerun, so it also resumes across processes.
  One job covers multi-process, fold-parallel, vmapped and data-parallel training, and multi-process
  resumption."""
  root = tmp_path_factory.mktemp('fold_parallel')
  workdir = root / 'two_processes'
  pair = dict(devices=2, data_parallel=2, num_processes=2)
  # Process 1 starts 40 s late, so process 0 reaches its first gather long before it, past the 30-s
  # deadline of the gather's own (Gloo) rendezvous: the gathers' barrier must absorb the lag (without it a
  # loaded machine failed this job). Each process stops for good before it records
  # a step-4 checkpoint: every fold has recorded step 2. The sequential run, in this process, runs meanwhile.
  port = _free_port()
  first = [_job(tiny_data_dir, workdir, 4, process_id=i, coordinator=f'localhost:{port}', lag_s=40,
                stall_at_step=4, **pair) for i in range(2)]
  experiment.main(fold_parallel_job_config(tiny_data_dir, parallel_folds=1), str(root / 'sequential'))
  deadline = time.time() + 300
  while len(glob.glob(str(workdir / 'progress' / '*.json'))) < 4 and time.time() < deadline:
    assert all(p.poll() is None for p in first), [p.communicate()[0][-3000:] for p in first]
    time.sleep(0.1)
  for p in first:
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=60)
  assert not (workdir / 'results.json').exists()
  port = _free_port()
  two = [_job(tiny_data_dir, workdir, 4, process_id=i, coordinator=f'localhost:{port}', **pair)
         for i in range(2)]
  outs = [_finish(p) for p in two]
  return root, outs


@pytest.mark.numerics
def test_parallel_folds_train_as_sequential_folds(runs):
  """4 folds at once (2 per process, vmapped, each batch split over 2 devices) give the sequential
  results: the same predictions, confusion matrices and scores, probabilities and parameters to float32
  rounding."""
  root, _ = runs
  seq, par = _results(root / 'sequential'), _results(root / 'two_processes')
  assert [f['subject'] for f in par['folds']] == ['s00', 's01', 's02', 's03']
  for a, b in zip(seq['folds'], par['folds']):
    assert a['subject'] == b['subject'] and a['sample_ids'] == b['sample_ids']
    # Two programs: their floats differ in the last digits on every CPU, so a clip whose top two classes
    # were that close could go either way. The job's learning rate keeps them far apart (conftest).
    assert top_two_margins(a['probabilities']).min() > 100 * 1e-5, a['subject']
    assert a['predictions'] == b['predictions'] and a['confusion_matrix'] == b['confusion_matrix']
    assert a['metrics'] == b['metrics']
    np.testing.assert_allclose(a['probabilities'], b['probabilities'], atol=1e-5)
  assert seq['aggregate'] == par['aggregate']
  assert seq['optimistic_best_test'] == par['optimistic_best_test']
  # each fold's batch is split over two devices, so its gradient and BatchNorm statistics are sums in
  # another order; a fold trained on the wrong data or key differs by O(lr) everywhere
  for subject in ('s00', 's01', 's02', 's03'):
    p, q = _checkpoint(root / 'sequential', subject), _checkpoint(root / 'two_processes', subject)
    assert int(p['step']) == int(q['step']) == 4
    _assert_params_close(p['params'], q['params'], lr=3e-2)
  # the folds really ran at once: one group of 4 on a (fold 2, data 2) mesh, against 4 groups of 1
  timing_seq = json.load(open(root / 'sequential' / 'timing.json'))
  timing_par = json.load(open(root / 'two_processes' / 'timing.json'))
  assert timing_par['mesh'] == {'fold': 2, 'data': 2} and len(timing_par['groups']) == 1
  assert timing_par['groups'][0]['resumed_from_step'] == 2      # the rerun continued the killed job
  assert timing_seq['mesh'] == {'fold': 1, 'data': 1} and len(timing_seq['groups']) == 4


def test_two_processes_write_the_run_once(runs):
  root, outs = runs
  # written once, by process 0: only it prints the table; both processes finished every fold
  assert sum('Aggregate over the summed confusion matrix' in out for out in outs) == 1
  assert [f['status'] for f in _results(root / 'two_processes')['folds']] == ['done'] * 4


@pytest.mark.parametrize('num_folds,max_slots,multiple,expected', [
    (26, 16, 1, 13),   # two groups of 13, not 16 + 10
    (26, 16, 8, 16),   # 13 is not a multiple of 8 devices: 16 (still 2 groups)
    (10, 4, 4, 4),
    (3, 8, 8, 3),      # fewer folds than slots
    (10, 1, 1, 1),
])
def test_balanced_group_size(num_folds, max_slots, multiple, expected):
  assert parallel.balanced_group_size(num_folds, max_slots, multiple) == expected


def test_fold_groups_pad_the_last_group_with_idle_slots():
  assert parallel.fold_groups(list('abcde'), 2) == [['a', 'b'], ['c', 'd'], ['e', None]]
  assert parallel.fold_groups(list('abcd'), 4) == [['a', 'b', 'c', 'd']]


def test_fold_axis_uses_a_divisor_of_the_group_size():
  # the suite runs with 2 fake CPU devices
  assert jax.device_count() == 2
  assert parallel.fold_axis_size(4, 1) == 2
  assert parallel.fold_axis_size(3, 1) == 1     # 3 slots cannot split over 2 devices evenly
  assert parallel.fold_axis_size(1, 1) == 1
  assert parallel.fold_axis_size(2, 2) == 1     # both devices on the data axis
  with pytest.raises(ValueError, match='data_parallel=4 exceeds'):
    parallel.fold_axis_size(2, 4)


@pytest.mark.parametrize('num_slots,data_parallel', [(1, 1), (2, 1), (4, 1), (3, 1), (2, 2)])
def test_a_group_step_follows_its_declared_specs(num_slots, data_parallel):
  """Each slot sees its own entry of `SLOTS`/`SLOT_BATCHES` arguments and `SHARED` ones whole, on one slot
  per device (2 devices), several (4 slots: a vmap on each) or a data axis; results come back as declared."""
  mesh = parallel.make_mesh(num_slots, data_parallel)

  def one(key, batch, step, table):
    return {'total': key + batch['x'].sum() + step + table.sum(), 'x': batch['x']}, batch['y'] * 2

  step = parallel.fold_parallel(one, mesh, num_slots,
                                (parallel.SLOTS, parallel.SLOT_BATCHES, parallel.SHARED, parallel.SHARED),
                                ({'total': parallel.SLOTS, 'x': parallel.SLOT_BATCHES}, parallel.SLOT_BATCHES))
  keys = np.arange(num_slots, dtype=np.float32) * 1000
  batch = {'x': np.arange(num_slots * 4, dtype=np.float32).reshape(num_slots, 4),
           'y': np.ones((num_slots, 4), np.int32)}
  table = np.array([10.0, 20.0], np.float32)
  out, doubled = step(keys, batch, np.float32(5), table)
  np.testing.assert_array_equal(out['total'], keys + batch['x'].sum(1) + 5 + 30)
  np.testing.assert_array_equal(out['x'], batch['x'])
  np.testing.assert_array_equal(doubled, 2 * batch['y'])
  assert out['total'].sharding.spec == parallel.SLOTS and doubled.sharding.spec == parallel.SLOT_BATCHES
  assert dict(mesh.shape) == {'fold': parallel.fold_axis_size(num_slots, data_parallel), 'data': data_parallel}
