"""Leave-one-subject-out cross-validation, its folds trained in parallel.

  folds.py       the folds: one per held-out subject
  parallel.py    groups of folds as one program: stacked states, the (fold, data) device mesh, multi-host
  training.py    the training loop of a group, with its non-finite guard
  evaluation.py  held-out predictions (several temporal views), scoring, the optimistic best-test record
  checkpoints.py per-fold checkpoints and progress files: where an interrupted group continues
  loso.py        the whole LOSO cross-validation, `run_loso`: the one entry point
"""
