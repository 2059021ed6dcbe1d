"""Approximate rank pooling, soft ranks and the ranking loss (fdp_jax.models.rank_pooling)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from conftest import FIXTURES
from fdp_jax.models import rank_pooling as rp
from fdp_jax.preprocess import dynamic_image

FIXTURE = FIXTURES / 'dynamic_image.npz'


def sum_form(num_frames):
  """α_t = Σ_{k=t..T} (2k − T − 1)/k, its second, summed form, in float64."""
  t_all = np.arange(1, num_frames + 1)
  return np.array([sum((2 * k - num_frames - 1) / k for k in range(t, num_frames + 1)) for t in t_all])


@pytest.mark.parametrize('num_frames', [1, 2, 3, 5, 8, 16, 33])
def test_arp_coefficients_sum_to_zero_and_match_sum_form(num_frames):
  alpha = np.asarray(rp.arp_coefficients(num_frames))
  assert alpha.shape == (num_frames,)
  assert abs(alpha.sum()) < 1e-4
  np.testing.assert_allclose(alpha, sum_form(num_frames), rtol=1e-6, atol=1e-5)


def test_arp_coefficients_are_the_input_pipelines_rounded_once():
  # One definition: the dynamic-image targets (numpy, float64) and the model's pooling (float32).
  for num_frames in (1, 2, 8, 17):
    np.testing.assert_array_equal(np.asarray(rp.arp_coefficients(num_frames)),
                                  dynamic_image.arp_coefficients(num_frames).astype(np.float32))


def test_arp_coefficients_t8_values():
  # 2(9 − t) − 9(H_8 − H_{t−1}) in exact fractions (H_8 = 761/280).
  expected = np.array([-2369, -409, 291, 571, 641, 585, 445, 245]) / 280
  np.testing.assert_allclose(rp.arp_coefficients(8), expected, rtol=1e-6)


def test_masked_coefficients_full_and_prefix_masks():
  full = rp.masked_arp_coefficients(jnp.ones((2, 8), bool))
  np.testing.assert_allclose(full, np.tile(rp.arp_coefficients(8), (2, 1)), rtol=1e-5, atol=2e-5)
  lengths = np.array([8, 5, 2, 1, 0])
  mask = np.arange(8)[None] < lengths[:, None]
  got = np.asarray(rp.masked_arp_coefficients(jnp.asarray(mask)))
  for row, n in zip(got, lengths):
    np.testing.assert_allclose(row[:n], rp.arp_coefficients(int(n)), rtol=1e-5, atol=2e-5)
    assert np.all(row[n:] == 0)


def test_masked_coefficients_use_ranks_among_valid_frames():
  mask = jnp.array([[False, True, False, True, True, False]])
  got = np.asarray(rp.masked_arp_coefficients(mask))[0]
  np.testing.assert_allclose(got[[1, 3, 4]], rp.arp_coefficients(3), atol=2e-5)
  assert np.all(got[[0, 2, 5]] == 0)


def test_coefficients_at_integer_positions_are_exact():
  positions = jnp.tile(jnp.arange(1, 9, dtype=jnp.float32), (3, 1))
  got = rp.arp_coefficients_at(positions, jnp.full((3,), 8.0))
  np.testing.assert_allclose(got, np.tile(rp.arp_coefficients(8), (3, 1)), rtol=1e-5, atol=2e-5)


def test_arp_reproduces_released_dynamic_image():
  fixture = np.load(FIXTURE)
  frames = jnp.asarray(fixture['frames'])[None]                      # (1, 8, 64, 64, 1)
  np.testing.assert_allclose(rp.approximate_rank_pooling(frames)[0], fixture['dynamic_image_raw'], atol=1e-5)
  masked = rp.approximate_rank_pooling(frames, jnp.ones((1, 8), bool))[0]
  np.testing.assert_allclose(masked, fixture['dynamic_image_raw'], atol=1e-4)


def test_arp_ignores_masked_frames_and_is_zero_for_static_clips():
  # numpy data: on XLA:CPU every jax.random shape costs ~0.5 s of compilation.
  feats = jnp.asarray(np.random.default_rng(0).normal(size=(2, 6, 3, 3, 4)), jnp.float32)
  mask = jnp.array([[True] * 6, [True, True, True, True, False, False]])
  garbage = feats.at[1, 4:].set(jnp.nan)
  out = rp.approximate_rank_pooling(garbage, mask)
  assert np.all(np.isfinite(out))
  np.testing.assert_allclose(out[1], rp.approximate_rank_pooling(feats[1:2, :4])[0], atol=1e-4)
  static = jnp.broadcast_to(feats[:, :1], feats.shape)
  np.testing.assert_allclose(rp.approximate_rank_pooling(static), 0.0, atol=1e-4)


def test_soft_rank_orders_and_tends_to_hard_ranks():
  scores = jnp.array([[0.1, 0.5, 0.9, 1.4, 2.0], [3.0, -1.0, 2.0, 0.0, 1.0]])
  for tau in (1.0, 0.1):
    ranks = rp.soft_rank(scores, temperature=tau)
    assert np.all(np.diff(ranks[0]) > 0)
    assert np.all(ranks >= 1) and np.all(ranks <= 5)
    np.testing.assert_array_equal(np.argsort(ranks[1]), np.argsort(scores[1]))
  hard = rp.soft_rank(scores, temperature=1e-3)
  np.testing.assert_allclose(hard, [[1, 2, 3, 4, 5], [5, 1, 4, 2, 3]], atol=1e-4)


def test_soft_rank_with_mask_and_ties_has_finite_gradients():
  scores = jnp.array([[1.0, 1.0, 1.0, 2.0], [0.0, 3.0, -2.0, 5.0]])
  mask = jnp.array([[True, True, True, True], [True, False, True, False]])
  ranks = rp.soft_rank(scores, mask, temperature=0.1)
  np.testing.assert_allclose(ranks[0, :3], 2.0, atol=1e-3)          # ties share the mean of ranks 1..3
  np.testing.assert_allclose(ranks[1], [2, 0, 1, 0], atol=1e-3)      # ranked among valid frames only
  for m in (None, mask):
    grad = jax.grad(lambda s, m=m: jnp.sum(rp.soft_rank(s, m) * jnp.arange(4.0)))(scores)
    assert np.all(np.isfinite(grad))
  # Gradient through the whole rank-pooling path, including the digamma coefficients.
  def pooled(s):
    ranks = rp.soft_rank(s, mask)
    alpha = rp.arp_coefficients_at(ranks, mask.sum(1), mask)
    return jnp.sum(alpha * jnp.arange(4.0))
  grad = jax.grad(pooled)(scores)
  assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_soft_ranks_of_rising_scores_give_plain_arp():
  scores = jnp.linspace(-5.0, 5.0, 8)[None]
  ranks = rp.soft_rank(scores, temperature=1e-3)
  np.testing.assert_allclose(rp.arp_coefficients_at(ranks, jnp.array([8.0])), rp.arp_coefficients(8)[None],
                             atol=1e-4)


def test_ranking_loss_prefers_rising_scores_and_respects_mask():
  rising = jnp.arange(6.0)[None]
  falling = rising[:, ::-1]
  assert rp.ranking_loss(rising) < rp.ranking_loss(falling)
  grad = jax.grad(rp.ranking_loss)(jnp.zeros((2, 6)))
  assert np.all(np.isfinite(grad))
  mask = jnp.array([[True, True, True, False, False, False]])
  base = rp.ranking_loss(rising, mask)
  changed = rising.at[0, 3:].set(jnp.array([-50.0, 100.0, jnp.nan]))
  np.testing.assert_allclose(rp.ranking_loss(changed, mask), base, rtol=1e-6)
  np.testing.assert_allclose(base, rp.ranking_loss(rising[:, :3]), rtol=1e-6)
  # Clips with < 2 valid frames carry no pairs: no NaN, and they do not dilute the others.
  few = jnp.array([[True, False, False, False, False, False], [False] * 6])
  assert float(rp.ranking_loss(jnp.zeros((2, 6)), few)) == 0.0
  assert np.all(np.isfinite(jax.grad(rp.ranking_loss)(jnp.zeros((2, 6)), few)))
  two = jnp.concatenate([rising, rising]), jnp.concatenate([mask, few[:1]])
  np.testing.assert_allclose(rp.ranking_loss(*two), base, rtol=1e-6)


def test_ranking_loss_scores_ties_like_an_order_with_spearman_half():
  # With hard ranks the loss is (n² − 1)(1 − ρ) / 6n² (ρ: Spearman's with time): 0 for rising scores, its
  # maximum for falling ones — and ties, where a fresh scorer starts, read like ρ = 0.5. A scorer whose
  # order has ρ < 0.5 therefore *raises* the loss as its scores spread (benchmarks/README.md).
  n = 8
  rng = np.random.default_rng(0)
  for _ in range(5):
    scores = 50.0 * rng.permutation(n).astype(np.float32)
    rho = stats.spearmanr(np.arange(n), scores).statistic
    np.testing.assert_allclose(rp.ranking_loss(jnp.asarray(scores)[None]), (n * n - 1) * (1 - rho) / (6 * n * n),
                               rtol=1e-4)
  np.testing.assert_allclose(rp.ranking_loss(jnp.zeros((1, n))), (n * n - 1) / (12 * n * n), rtol=1e-6)
  assert float(rp.ranking_loss(50.0 * jnp.arange(n, dtype=jnp.float32)[None])) < 1e-6
  np.testing.assert_allclose(rp.ranking_loss(-50.0 * jnp.arange(n, dtype=jnp.float32)[None]),
                             (n * n - 1) * 2 / (6 * n * n), rtol=1e-4)


def test_everything_jits():
  mask = jnp.array([[True, True, False, True]])
  scores = jnp.array([[0.3, -0.2, 0.0, 0.9]])
  feats = jnp.ones((1, 4, 2, 2, 3))
  np.testing.assert_allclose(jax.jit(rp.approximate_rank_pooling)(feats, mask),
                             rp.approximate_rank_pooling(feats, mask), atol=1e-6)
  np.testing.assert_allclose(jax.jit(rp.soft_rank)(scores, mask), rp.soft_rank(scores, mask), atol=1e-6)
  np.testing.assert_allclose(jax.jit(rp.ranking_loss)(scores, mask), rp.ranking_loss(scores, mask), atol=1e-6)
  np.testing.assert_allclose(jax.jit(rp.masked_arp_coefficients)(mask), rp.masked_arp_coefficients(mask))
