"""MGDA min-norm: two-task closed form; Frank-Wolfe against a grid and the KKT conditions."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from companion.multitask import MGDA, min_norm_two, min_norm_weights


def test_two_tasks_closed_form():
    g1 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    g2 = torch.tensor([-0.5, 2.0], dtype=torch.float64)
    gram = torch.stack([g1, g2]) @ torch.stack([g1, g2]).T
    alpha = min_norm_weights(gram)
    # gamma = <g2 - g1, g2> / ||g1 - g2||^2 = (4.25 + 0.5) / (2.25 + 4)
    gamma = (4.25 + 0.5) / 6.25
    torch.testing.assert_close(alpha, torch.tensor([gamma, 1 - gamma], dtype=torch.float64))
    point = alpha[0] * g1 + alpha[1] * g2
    assert float(point @ (g1 - g2)) == pytest.approx(0.0, abs=1e-12)  # orthogonal to g1 - g2


def test_two_tasks_clipped_when_one_gradient_is_inside():
    # ||g1|| small and <g1, g2> > ||g1||^2: the min-norm point is g1 itself.
    assert float(min_norm_two(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(9.0))) == 1.0
    assert float(min_norm_two(torch.tensor(9.0), torch.tensor(2.0), torch.tensor(1.0))) == 0.0
    assert float(min_norm_two(torch.tensor(4.0), torch.tensor(4.0), torch.tensor(4.0))) == 0.5


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_frank_wolfe_three_tasks_against_a_grid_and_kkt(seed):
    g = torch.randn(3, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    gram = g @ g.T
    alpha = min_norm_weights(gram, max_iter=2000, tol=1e-12)
    assert float(alpha.min()) >= 0 and float(alpha.sum()) == pytest.approx(1.0)
    value = float(alpha @ gram @ alpha)
    steps = 300
    grid = min(
        float(a @ gram @ a)
        for i, j in itertools.product(range(steps + 1), repeat=2) if i + j <= steps
        for a in [torch.tensor([i, j, steps - i - j], dtype=torch.float64) / steps])
    assert value <= grid + 1e-9
    # KKT on the simplex: (M alpha)_k >= alpha^T M alpha, with equality where alpha_k > 0
    m_alpha = gram @ alpha
    assert float((m_alpha - value).min()) >= -1e-4 * max(value, 1e-3)
    support = alpha > 1e-3
    torch.testing.assert_close(m_alpha[support], torch.full_like(m_alpha[support], value),
                               atol=1e-4 * max(value, 1e-3) + 1e-8, rtol=0)


def test_frank_wolfe_finds_zero_when_the_hull_contains_it():
    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
    alpha = min_norm_weights(g @ g.T, max_iter=5000, tol=0)
    # the exact answer: alpha = (1/3)(1, 1, 1) + ... solve alpha1 = alpha2, alpha2 = alpha3
    torch.testing.assert_close(alpha, torch.full((3,), 1 / 3, dtype=torch.float64), atol=2e-3,
                               rtol=0)


def test_mgda_normalisation_and_combination():
    grads = {"a": {"w": torch.tensor([4.0, 0.0])}, "b": {"w": torch.tensor([0.0, 1.0])}}
    losses = {"a": torch.tensor(2.0), "b": torch.tensor(1.0)}
    plain = MGDA().combine(grads, losses)
    # min-norm of (4, 0) and (0, 1): gamma = 1 / 17 on g_a
    assert float(plain.loss_weights["a"]) == pytest.approx(1 / 17)
    torch.testing.assert_close(plain.shared["w"], torch.tensor([4 / 17, 16 / 17]))
    l2 = MGDA(normalization="l2").task_weights(grads, losses)
    # unit gradients (1, 0), (0, 1): alpha = (1/2, 1/2), raw weights alpha / ||g||
    assert float(l2["a"]) == pytest.approx(0.5 / 4) and float(l2["b"]) == pytest.approx(0.5)


def test_bad_input():
    with pytest.raises(ValueError, match="gram"):
        min_norm_weights(torch.ones(2, 3))
    with pytest.raises(ValueError, match="gram"):
        min_norm_weights(torch.tensor([[1.0, math.nan], [math.nan, 1.0]]))
    with pytest.raises(ValueError, match="normalization"):
        MGDA(normalization="max")  # type: ignore[arg-type]
    grads = {"a": {"w": torch.ones(2)}, "b": {"w": torch.ones(2)}}
    with pytest.raises(ValueError, match="grads"):
        MGDA().combine(grads, {"a": torch.tensor(1.0)})
    with pytest.raises(ValueError, match=r"losses\['b'\] is not finite"):
        MGDA().combine(grads, {"a": torch.tensor(1.0), "b": torch.tensor(math.inf)})
