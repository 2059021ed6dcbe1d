"""The `cv` section every config shares: the protocol, which folds, how many at once, and multi-host."""

import ml_collections


def cv_config(checkpoint_every_steps: int = 100) -> ml_collections.ConfigDict:
  cv = ml_collections.ConfigDict()
  cv.protocol = 'loso'
  cv.subjects = 'all'           # or comma-separated held-out subjects for a partial run: 's00,s03'
  # Folds trained at once (fdp_jax.fold_parallel): stacked, vmapped, sharded over the `fold` mesh axis.
  # 0 = as many as fit (one per device on CPU; on GPU/TPU as many as 80 % of device memory holds);
  # 1 = one after another.
  cv.parallel_folds = 0
  cv.data_parallel = 1          # devices along the `data` mesh axis: each fold's batch split over them
  # Every fold is checkpointed this often and at its end (a multiple of train.log_every_steps): a killed run
  # rerun with the same command continues from there (fdp_jax.resume).
  cv.checkpoint_every_steps = checkpoint_every_steps
  cv.best_test_every_steps = 0  # > 0: also record the released best-test-step selection (OPTIMISTIC)
  # Multi-host: jax.distributed.initialize() before anything else. Leave the three below empty on TPU pods
  # and SLURM/Kubernetes (they come from the environment); set them for a hand-started job.
  cv.distributed = False
  cv.coordinator_address = ''   # 'host:port' of process 0
  cv.num_processes = 1
  cv.process_id = 0
  return cv
