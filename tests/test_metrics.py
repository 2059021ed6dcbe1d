"""Scores from confusion matrices, checked against values computed by hand."""

import numpy as np
import pytest

from fdp_jax import metrics


def test_confusion_matrix_counts_rows_true_columns_predicted():
  cm = metrics.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
  np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_confusion_matrix_rejects_out_of_range_and_length_mismatch():
  with pytest.raises(ValueError, match='outside'):
    metrics.confusion_matrix([0, 3], [0, 1], 3)
  with pytest.raises(ValueError, match='labels but'):
    metrics.confusion_matrix([0, 1], [0], 3)


def test_scores_by_hand():
  # rows true, columns predicted
  cm = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
  s = metrics.scores_from_confusion(cm)
  # F1 = 2TP / (support + predicted): class0 2/(2+2)=.5, class1 2/(1+2)=2/3, class2 4/(3+2)=.8
  f1 = np.array([0.5, 2 / 3, 0.8])
  recall = np.array([1 / 2, 1 / 1, 2 / 3])
  support = np.array([2, 1, 3])
  assert s['accuracy'] == pytest.approx(4 / 6)
  assert s['uf1'] == pytest.approx(f1.mean())
  assert s['uar'] == pytest.approx(recall.mean())
  assert s['wf1'] == pytest.approx((f1 * support).sum() / 6)
  assert s['war'] == pytest.approx(s['accuracy'])
  assert s['num_samples'] == 6


def test_class_absent_from_fold_not_predicted_is_left_out():
  # class 2 neither occurs nor is predicted in this fold
  cm = np.array([[2, 1, 0], [0, 3, 0], [0, 0, 0]])
  s = metrics.scores_from_confusion(cm)
  f1 = np.array([4 / 5, 6 / 7])
  assert s['uf1'] == pytest.approx(f1.mean())
  assert s['uar'] == pytest.approx((2 / 3 + 1) / 2)


def test_class_absent_but_predicted_counts_as_zero_f1():
  # class 2 absent from the labels, yet predicted once: a false alarm that UF1 must penalise
  cm = np.array([[2, 0, 1], [0, 3, 0], [0, 0, 0]])
  s = metrics.scores_from_confusion(cm)
  assert s['uf1'] == pytest.approx((4 / 5 + 1 + 0) / 3)
  assert s['uar'] == pytest.approx((2 / 3 + 1) / 2)


def test_summed_confusion_differs_from_mean_of_fold_scores():
  a = metrics.confusion_matrix([0, 0, 0, 1], [0, 0, 0, 0], 2)
  b = metrics.confusion_matrix([1], [1], 2)
  pooled = metrics.scores_from_confusion(a + b)
  mean_of_folds = np.mean([metrics.scores_from_confusion(m)['uf1'] for m in (a, b)])
  assert pooled['uf1'] == pytest.approx((6 / 7 + 2 / 3) / 2)
  assert pooled['uf1'] != pytest.approx(mean_of_folds)


def test_empty_matrix_is_an_error():
  with pytest.raises(ValueError, match='empty'):
    metrics.scores_from_confusion(np.zeros((3, 3)))


def test_per_class_scores_mark_undefined_as_none():
  cm = np.array([[2, 0, 1], [0, 3, 0], [0, 0, 0]])
  pc = metrics.per_class_scores(cm, ['a', 'b', 'c'])
  assert pc['a'] == {'support': 3, 'recall': pytest.approx(2 / 3), 'precision': 1.0, 'f1': pytest.approx(0.8)}
  assert pc['c']['recall'] is None and pc['c']['precision'] == 0.0 and pc['c']['f1'] == 0.0


def test_landmark_nme_is_one_function_on_the_host_and_in_a_jitted_step():
  """Evaluation, the training signal and MOL's references all read `metrics.landmark_nme`: numpy on the host,
  jax.numpy under jit, the same value."""
  import jax
  import jax.numpy as jnp
  rng = np.random.default_rng(0)
  target = rng.uniform(0, 64, (2, 3, 68, 2)).astype(np.float32)
  target[..., 36:42, :] = (10.0, 20.0)                              # eye centres 30 px apart
  target[..., 42:48, :] = (40.0, 20.0)
  predicted = target + np.float32(3.0) * np.array([0.6, 0.8], np.float32)   # every point 3 px off
  np.testing.assert_allclose(metrics.interpupil_distance(target), 30.0)
  host = metrics.landmark_nme(predicted, target)
  assert host.shape == (2, 3)
  np.testing.assert_allclose(host, 0.1, rtol=1e-6)
  jitted = jax.jit(lambda p, t: metrics.landmark_nme(p, t, jnp))(predicted, target)
  np.testing.assert_allclose(np.asarray(jitted), host, rtol=1e-6)
  # A degenerate target (both eyes at one point) is floored, not divided by zero.
  assert np.isfinite(metrics.landmark_nme(predicted, np.zeros_like(target))).all()
