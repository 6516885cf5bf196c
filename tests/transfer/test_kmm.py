"""Kernel mean matching: the projection, the QP solution against SciPy, the density ratio."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from companion.transfer import gaussian_kernel, kernel_mean_matching, project_box_slab

optimize = pytest.importorskip("scipy.optimize")


def test_projection_inside_is_the_identity_and_outside_hits_the_bound():
    v = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(project_box_slab(v, upper=3, low=1, high=4), v)
    p = project_box_slab(v, upper=3, low=1, high=2)
    assert p.sum().item() == pytest.approx(2.0) and (p >= 0).all()
    # equal shifts of the coordinates that stay positive: clip(v - tau) with tau = 0.5
    torch.testing.assert_close(p, torch.tensor([0.0, 0.5, 1.5], dtype=torch.float64))


def test_projection_matches_a_generic_solver():
    rng = np.random.default_rng(0)
    v = rng.normal(size=6) * 2
    constraints = [{"type": "ineq", "fun": lambda b: b.sum() - 5.0},
                   {"type": "ineq", "fun": lambda b: 6.0 - b.sum()}]
    ref = optimize.minimize(lambda b: 0.5 * ((b - v) ** 2).sum(), np.clip(v, 0, 1.5),
                            jac=lambda b: b - v, bounds=[(0, 1.5)] * 6,
                            constraints=constraints, method="SLSQP", options={"ftol": 1e-12})
    ours = project_box_slab(torch.from_numpy(v), upper=1.5, low=5.0, high=6.0).numpy()
    np.testing.assert_allclose(ours, ref.x, atol=1e-6)


def test_kmm_solves_the_quadratic_programme_like_scipy():
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(8, 2, generator=g, dtype=torch.float64)
    xt = torch.randn(6, 2, generator=g, dtype=torch.float64) + 0.7
    n, m, eps, bound = 8, 6, 0.2, 5.0
    k = gaussian_kernel(xs, xs, [1.0]).numpy()
    kappa = (n / m) * gaussian_kernel(xs, xt, [1.0]).sum(1).numpy()
    constraints = [{"type": "ineq", "fun": lambda b: b.sum() - n * (1 - eps)},
                   {"type": "ineq", "fun": lambda b: n * (1 + eps) - b.sum()}]
    ref = optimize.minimize(lambda b: 0.5 * b @ k @ b - kappa @ b, np.ones(n),
                            jac=lambda b: k @ b - kappa, bounds=[(0, bound)] * n,
                            constraints=constraints, method="SLSQP",
                            options={"ftol": 1e-14, "maxiter": 500})
    ours = kernel_mean_matching(xs, xt, lengthscale=1.0, bound=bound, epsilon=eps,
                                max_iter=20000, tol=1e-12).numpy()
    objective = lambda b: 0.5 * b @ k @ b - kappa @ b  # noqa: E731
    assert objective(ours) <= objective(ref.x) + 1e-7
    np.testing.assert_allclose(ours, ref.x, atol=1e-3)


def _log_normal(x: torch.Tensor, mu: float, sigma: float) -> torch.Tensor:
    return -0.5 * ((x - mu) / sigma) ** 2 - math.log(sigma)


def test_kmm_weights_follow_the_density_ratio_and_match_the_target_mean():
    """Source N(0, 1) (200 points), target N(0.5, 0.7^2) (150 points). KMM matches the
    target *sample*, so its weights are a noisy estimate of the density ratio (correlation
    0.78-0.96 over seeds 1-4), while the weighted source mean matches the target's sample
    mean almost exactly (to 1e-4; the unweighted means differ by about 0.5)."""
    g = torch.Generator().manual_seed(1)
    xs = torch.randn(200, 1, generator=g, dtype=torch.float64)
    xt = 0.5 + 0.7 * torch.randn(150, 1, generator=g, dtype=torch.float64)
    beta = kernel_mean_matching(xs, xt, lengthscale=1.0)
    n = 200
    eps = (math.sqrt(n) - 1) / math.sqrt(n)
    assert (beta >= 0).all() and (beta <= 1000).all()
    assert n * (1 - eps) - 1e-6 <= beta.sum().item() <= n * (1 + eps) + 1e-6
    ratio = (_log_normal(xs[:, 0], 0.5, 0.7) - _log_normal(xs[:, 0], 0.0, 1.0)).exp()
    assert torch.corrcoef(torch.stack([beta, ratio]))[0, 1] > 0.7
    weighted_mean = (beta * xs[:, 0]).sum() / beta.sum()
    assert abs(xs.mean().item() - xt.mean().item()) > 0.4
    assert weighted_mean.item() == pytest.approx(xt.mean().item(), abs=0.01)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"lengthscale": 0.0}, "lengthscale"), ({"bound": -1.0}, "bound"),
    ({"epsilon": -0.1}, "epsilon"), ({"max_iter": 0}, "max_iter"),
    ({"target": torch.randn(3, 3)}, "same feature size"),
    ({"target": torch.randn(0, 2)}, "target"),
    ({"bound": 0.1, "epsilon": 0.0}, "bound"),
])
def test_bad_arguments(kwargs, message):
    args = {"source": torch.randn(5, 2), "target": torch.randn(4, 2), "lengthscale": 1.0,
            **kwargs}
    with pytest.raises(ValueError, match=message):
        kernel_mean_matching(**args)
