"""In-context linear regression tasks and the least-squares reference (checked against numpy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from companion.data import LinearRegressionTasks, least_squares_predict


def _episodes(dim: int, n_support: int, n_query: int, noise: float = 0.0, seed: int = 0):
    return LinearRegressionTasks(dim, noise).sample(
        5, n_support=n_support, n_query=n_query, generator=torch.Generator().manual_seed(seed),
        dtype=torch.float64)


def test_tasks_are_y_equals_w_dot_x_with_the_requested_shapes():
    batch, w = _episodes(3, 4, 6)
    assert batch.support_x.shape == (5, 4, 3) and batch.support_y.shape == (5, 4, 1)
    assert batch.query_x.shape == (5, 6, 3) and batch.query_y.shape == (5, 6, 1)
    assert w.shape == (5, 3)
    for x, y in ((batch.support_x, batch.support_y), (batch.query_x, batch.query_y)):
        expected = (x * w[:, None, :]).sum(-1, keepdim=True)  # [T, n, 1], written differently
        torch.testing.assert_close(y, expected, rtol=0, atol=1e-12)


def test_noise_has_the_requested_standard_deviation():
    batch, w = LinearRegressionTasks(2, noise=0.5).sample(
        200, n_support=50, n_query=1, generator=torch.Generator().manual_seed(0),
        dtype=torch.float64)
    residual = batch.support_y[..., 0] - (batch.support_x @ w[:, :, None])[..., 0]
    assert abs(residual.std().item() - 0.5) < 0.02  # 10,000 draws: std error ~0.0035


def test_sampler_is_seeded():
    tasks = LinearRegressionTasks(3)
    a = tasks.sampler(n_support=4, n_query=2, seed=1).sample_batch(3)
    b = tasks.sampler(n_support=4, n_query=2,
                      generator=torch.Generator().manual_seed(1)).sample_batch(3)
    assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_y, b.query_y)
    episode = tasks.sampler(n_support=4, n_query=2, seed=1).sample()
    single = tasks.sampler(n_support=4, n_query=2, seed=1).sample_batch(1)
    assert torch.equal(episode.support_x, single.support_x[0])
    assert torch.equal(episode.query_y, single.query_y[0])


@pytest.mark.parametrize("n_support", [3, 4, 9])
def test_least_squares_is_exact_on_noiseless_data_with_enough_examples(n_support):
    batch, _ = _episodes(3, n_support, 7)
    predicted = least_squares_predict(batch.support_x, batch.support_y, batch.query_x)
    torch.testing.assert_close(predicted, batch.query_y, rtol=0, atol=1e-10)


@pytest.mark.parametrize(("dim", "n_support", "noise"), [(5, 2, 0.0), (5, 4, 0.0), (3, 8, 0.3)])
def test_least_squares_matches_numpy_lstsq(dim, n_support, noise):
    """Minimum-norm solution for n < d, ordinary least squares for n >= d (noisy data)."""
    batch, _ = _episodes(dim, n_support, 4, noise=noise)
    predicted = least_squares_predict(batch.support_x, batch.support_y, batch.query_x)
    for t in range(len(batch)):
        w, *_ = np.linalg.lstsq(batch.support_x[t].numpy(), batch.support_y[t].numpy(),
                                rcond=None)
        np.testing.assert_allclose(predicted[t].numpy(), batch.query_x[t].numpy() @ w,
                                   rtol=1e-9, atol=1e-10)


def test_least_squares_with_flat_targets_and_one_task():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([1.0, 4.0, 3.0], dtype=torch.float64)  # w = (1, 2) fits exactly
    out = least_squares_predict(x, y, torch.tensor([[2.0, 1.0]], dtype=torch.float64))
    torch.testing.assert_close(out, torch.tensor([4.0], dtype=torch.float64))


def test_bad_input_raises():
    x, y, q = torch.randn(2, 4, 3), torch.randn(2, 4, 1), torch.randn(2, 2, 3)
    with pytest.raises(ValueError, match="support_x"):
        least_squares_predict(x.masked_fill(x > 1, float("nan")), y, q)
    with pytest.raises(ValueError, match="query_x"):
        least_squares_predict(x, y, q.masked_fill(q > 0, float("inf")))
    with pytest.raises(ValueError, match="query_x"):
        least_squares_predict(x, y, torch.randn(2, 2, 4))
    with pytest.raises(ValueError, match="support_y"):
        least_squares_predict(x, torch.randn(2, 5, 1), q)
    with pytest.raises(ValueError, match="dim"):
        LinearRegressionTasks(0)
    with pytest.raises(ValueError, match="noise"):
        LinearRegressionTasks(2, noise=-1.0)
    with pytest.raises(ValueError, match="n_support"):
        LinearRegressionTasks(2).sampler(n_support=0, n_query=1, seed=0)
