"""CORAL: ||C_S - C_T||_F^2 / (4 d^2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from companion.transfer import coral_loss, covariance


def test_covariance_matches_numpy():
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    np.testing.assert_allclose(covariance(x).numpy(), np.cov(x.numpy(), rowvar=False))


def test_zero_for_equal_covariances_even_with_shifted_means():
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert coral_loss(x, x + 5.0).item() == pytest.approx(0.0, abs=1e-12)
    # same covariance, different points: a sign flip of every row
    assert coral_loss(x, -x).item() == pytest.approx(0.0, abs=1e-12)


def test_matches_the_formula_by_hand():
    """Source rows (0,0),(2,0): C_S = [[2,0],[0,0]]. Target rows (0,0),(0,1),(0,2):
    C_T = [[0,0],[0,1]]. ||C_S - C_T||_F^2 = 4 + 1 = 5, d = 2 -> 5 / 16."""
    s = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    t = torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.0, 2.0]])
    assert coral_loss(s, t).item() == pytest.approx(5 / 16)


def test_matches_numpy_on_random_features_and_has_a_gradient():
    g = torch.Generator().manual_seed(2)
    s = torch.randn(40, 5, generator=g, dtype=torch.float64, requires_grad=True)
    t = 2 * torch.randn(25, 5, generator=g, dtype=torch.float64)
    diff = np.cov(s.detach().numpy(), rowvar=False) - np.cov(t.numpy(), rowvar=False)
    loss = coral_loss(s, t)
    assert loss.item() == pytest.approx((diff ** 2).sum() / (4 * 25))
    small = s.detach()[:6, :3].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: coral_loss(a, t[:, :3]), (small,))


@pytest.mark.parametrize(("source", "target", "message"), [
    (torch.randn(5, 3), torch.randn(5, 2), "same feature size"),
    (torch.randn(5, 3), torch.randn(0, 3), "target"),
    (torch.randn(1, 3), torch.randn(5, 3), "source"),
    (torch.randn(5, 3), torch.full((5, 3), float("inf")), "infinite"),
    (torch.randn(5, 3), torch.randn(5, 3, dtype=torch.float64), "dtype"),
])
def test_bad_input(source, target, message):
    with pytest.raises(ValueError, match=message):
        coral_loss(source, target)
