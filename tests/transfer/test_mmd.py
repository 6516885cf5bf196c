"""Multi-kernel MMD: zero for one distribution, the Gaussian closed form, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from companion.transfer import (
    MultiKernelMMD,
    gaussian_kernel,
    median_lengthscale,
    mmd2_linear,
    mmd2_unbiased,
)


def _expected_kernel(var: float, mean_diff: float, lengthscale: float, d: int) -> float:
    """E exp(-||Z||^2 / (2 l^2)) for Z ~ N(m, var I_d), ||m|| = mean_diff:
    (l^2 / (l^2 + var))^(d/2) exp(-||m||^2 / (2 (l^2 + var)))."""
    l2 = lengthscale ** 2
    return (l2 / (l2 + var)) ** (d / 2) * math.exp(-mean_diff ** 2 / (2 * (l2 + var)))


def _closed_form_mmd2(mu: float, s1: float, s2: float, lengthscale: float, d: int) -> float:
    """MMD^2 between N(0, s1^2 I) and N(mu e_1, s2^2 I): x - x' ~ N(0, 2 s1^2 I), y - y' ~
    N(0, 2 s2^2 I), x - y ~ N(-mu e_1, (s1^2 + s2^2) I)."""
    return (_expected_kernel(2 * s1 ** 2, 0, lengthscale, d)
            + _expected_kernel(2 * s2 ** 2, 0, lengthscale, d)
            - 2 * _expected_kernel(s1 ** 2 + s2 ** 2, mu, lengthscale, d))


def _gaussians(n: int, mu: float, s1: float, s2: float, d: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = s1 * torch.randn(n, d, generator=g, dtype=torch.float64)
    y = s2 * torch.randn(n, d, generator=g, dtype=torch.float64)
    y[:, 0] += mu
    return x, y


def test_kernel_matrix_by_hand():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    y = torch.tensor([[0.0, 2.0]])
    k = gaussian_kernel(x, y, [1.0, 2.0], [0.25, 0.75])
    expected = torch.tensor([[0.25 * math.exp(-2) + 0.75 * math.exp(-0.5)],
                             [0.25 * math.exp(-2.5) + 0.75 * math.exp(-5 / 8)]])
    torch.testing.assert_close(k, expected)


# Standard deviations of the estimators, measured over 20 seeds at half these sample sizes
# (0.0095, 0.0042, 0.0133 for the three unbiased cases; 0.008 multi-kernel; 0.0039 linear
# at n = 20000) and scaled by 1/sqrt(2): every tolerance below is about 4 of them.
@pytest.mark.parametrize(("mu", "s1", "s2", "tol"), [
    (1.0, 1.0, 1.0, 0.027), (0.0, 1.0, 1.5, 0.012), (2.0, 0.7, 1.2, 0.038)])
def test_unbiased_estimate_matches_the_gaussian_closed_form(mu, s1, s2, tol):
    """d = 2, n = 2000 per sample, one Gaussian kernel of length scale 1."""
    x, y = _gaussians(2000, mu, s1, s2, d=2, seed=0)
    expected = _closed_form_mmd2(mu, s1, s2, lengthscale=1.0, d=2)
    assert expected > 2 * tol  # the distributions differ measurably
    assert mmd2_unbiased(x, y, lengthscales=[1.0]).item() == pytest.approx(expected, abs=tol)


def test_multi_kernel_estimate_is_the_weighted_sum_of_closed_forms():
    x, y = _gaussians(2000, 1.0, 1.0, 1.0, d=2, seed=1)
    expected = sum(w * _closed_form_mmd2(1.0, 1.0, 1.0, ls, 2)
                   for ls, w in ((0.5, 0.3), (2.0, 0.7)))
    got = mmd2_unbiased(x, y, lengthscales=[0.5, 2.0], weights=[0.3, 0.7]).item()
    assert got == pytest.approx(expected, abs=0.023)


def test_linear_time_estimate_matches_the_closed_form_with_more_samples():
    """n = 40000: 20000 quadruples."""
    x, y = _gaussians(40000, 1.0, 1.0, 1.0, d=2, seed=2)
    expected = _closed_form_mmd2(1.0, 1.0, 1.0, 1.0, 2)
    assert mmd2_linear(x, y, lengthscales=[1.0]).item() == pytest.approx(expected, abs=0.011)


def test_estimates_are_near_zero_for_one_distribution():
    """Standard deviations (20 seeds): 0.0006 unbiased with the median-heuristic kernels at
    n = 500, 0.0056 linear-time at n = 8000; tolerances of about 4-5 of them."""
    x, y = _gaussians(500, 0.0, 1.0, 1.0, d=3, seed=3)
    assert abs(mmd2_unbiased(x, y).item()) < 0.003
    x, y = _gaussians(8000, 0.0, 1.0, 1.0, d=3, seed=3)
    assert abs(mmd2_linear(x, y, lengthscales=[1.0]).item()) < 0.025


def test_unbiased_estimate_averages_to_zero_and_is_sometimes_negative():
    """Unbiasedness: over many small samples of one distribution the mean is ~0, and single
    estimates fall on both sides of zero (a biased V-statistic would always be > 0)."""
    g = torch.Generator().manual_seed(4)
    values = torch.stack([mmd2_unbiased(torch.randn(20, 2, generator=g, dtype=torch.float64),
                                        torch.randn(20, 2, generator=g, dtype=torch.float64),
                                        lengthscales=[1.0]) for _ in range(400)])
    assert abs(values.mean().item()) < 3 * values.std().item() / 20
    assert (values < 0).any() and (values > 0).any()


def test_median_heuristic_and_module():
    x = torch.tensor([[0.0], [1.0], [3.0]])
    assert median_lengthscale(x[:2], x[2:]) == pytest.approx(2.0)  # distances 1, 2, 3
    assert median_lengthscale(torch.zeros(2, 1), torch.zeros(2, 1)) == 1.0
    xs, ys = _gaussians(300, 1.0, 1.0, 1.0, d=2, seed=5)
    loss = MultiKernelMMD()
    torch.testing.assert_close(loss(xs, ys), mmd2_unbiased(xs, ys))
    fixed = MultiKernelMMD(lengthscales=[1.0], estimator="linear")
    torch.testing.assert_close(fixed(xs, ys), mmd2_linear(xs, ys, lengthscales=[1.0]))


def test_gradient_is_finite_even_with_duplicate_points():
    x = torch.zeros(4, 2, requires_grad=True)
    y = torch.ones(4, 2)
    mmd2_unbiased(x, y).backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize(("source", "target", "message"), [
    (torch.randn(5, 3), torch.randn(5, 4), "same feature size"),
    (torch.randn(5, 3), torch.randn(0, 3), "target"),
    (torch.randn(1, 3), torch.randn(5, 3), "source"),
    (torch.randn(5), torch.randn(5, 3), "source"),
    (torch.full((5, 3), float("nan")), torch.randn(5, 3), "NaN"),
])
def test_bad_input(source, target, message):
    for estimator in (mmd2_unbiased, mmd2_linear):
        with pytest.raises(ValueError, match=message):
            estimator(source, target)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"lengthscales": [1.0, -1.0]}, "lengthscales"), ({"lengthscales": []}, "lengthscales"),
    ({"lengthscales": [1.0], "weights": [0.5]}, "weights"),
    ({"lengthscales": [1.0, 2.0], "weights": [1.5, -0.5]}, "weights"),
])
def test_bad_kernels(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mmd2_unbiased(torch.randn(4, 2), torch.randn(4, 2), **kwargs)
    with pytest.raises(ValueError, match=message):
        MultiKernelMMD(**kwargs)


def test_bad_estimator_name():
    with pytest.raises(ValueError, match="estimator"):
        MultiKernelMMD(estimator="biased")
