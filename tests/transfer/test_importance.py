"""Importance weights from a domain classifier, logistic regression, proxy A-distance."""

from __future__ import annotations

import math

import pytest
import torch

from companion.transfer import (
    domain_classifier_error,
    domain_log_odds,
    fit_domain_classifier,
    fit_logistic_regression,
    importance_weights,
    proxy_a_distance,
    proxy_a_distance_from_error,
)


def _log_normal(x: torch.Tensor, mu: float, sigma: float) -> torch.Tensor:
    return -0.5 * ((x - mu) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)


def _features(x: torch.Tensor) -> torch.Tensor:
    return torch.stack([x, x ** 2], dim=1)  # [n, 2]: the true log-odds is quadratic in x


@pytest.mark.parametrize("balanced", [False, True])
def test_weights_recover_the_density_ratio_of_two_gaussians(balanced):
    """Source N(0, 1) (4000 points), target N(0.5, 0.8^2) (2000 points). The log-odds of a
    logistic regression on [x, x^2] can represent log p_T/p_S + log(n_T/n_S) exactly, so
    the corrected odds must match p_T/p_S where both densities have mass."""
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(4000, generator=g, dtype=torch.float64)
    xt = 0.5 + 0.8 * torch.randn(2000, generator=g, dtype=torch.float64)
    clf = fit_domain_classifier(_features(xs), _features(xt), l2=0.0, max_iter=200,
                                balanced=balanced)
    grid = torch.linspace(-1.5, 2.0, 15, dtype=torch.float64)
    n_s, n_t = (1, 1) if balanced else (4000, 2000)
    w = importance_weights(domain_log_odds(clf, _features(grid)), n_source=n_s, n_target=n_t,
                           normalize=False)
    true_log_ratio = _log_normal(grid, 0.5, 0.8) - _log_normal(grid, 0.0, 1.0)
    torch.testing.assert_close(w.log(), true_log_ratio, atol=0.15, rtol=0)


def test_the_sample_size_correction_is_the_prior_odds():
    log_odds = torch.tensor([0.0, math.log(3.0)])
    w = importance_weights(log_odds, n_source=200, n_target=100, normalize=False)
    torch.testing.assert_close(w, torch.tensor([2.0, 6.0]))


def test_clipping_then_normalisation():
    w = importance_weights(torch.tensor([0.0, 1.0, 10.0]), n_source=1, n_target=1, clip=2.0)
    raw = torch.tensor([1.0, math.e, 2.0]).clamp_max(2.0)
    torch.testing.assert_close(w, raw / raw.mean())
    assert w.mean().item() == pytest.approx(1.0)


def test_weights_are_detached():
    log_odds = torch.zeros(3, requires_grad=True)
    assert not importance_weights(log_odds, n_source=1, n_target=1).requires_grad


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_source": 0}, "n_source"), ({"n_target": -1}, "n_target"), ({"clip": 0.0}, "clip"),
    ({"log_odds": torch.tensor([])}, "log_odds"),
    ({"log_odds": torch.tensor([float("nan")])}, "NaN"),
    ({"log_odds": torch.tensor([float("inf")])}, "infinite"),
    ({"log_odds": torch.tensor([1000.0])}, "clip"),
])
def test_bad_weight_arguments(kwargs, message):
    args = {"log_odds": torch.zeros(2), "n_source": 1, "n_target": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        importance_weights(**args)


def test_logistic_regression_matches_the_closed_form_of_a_two_point_problem():
    """One feature, x = +-1 with labels 1/0, with a fraction p of each class flipped: the
    unregularised optimum has P(y = 1 | x = 1) = 1 - p, so w = log((1 - p) / p), b = 0."""
    x = torch.tensor([[1.0]] * 10 + [[-1.0]] * 10, dtype=torch.float64)
    y = torch.tensor([1] * 8 + [0] * 2 + [0] * 8 + [1] * 2)
    layer = fit_logistic_regression(x, y, n_classes=2, l2=0.0, max_iter=200)
    logit = layer.weight[1, 0] - layer.weight[0, 0]
    assert logit.item() == pytest.approx(math.log(4.0), abs=1e-5)
    assert (layer.bias[1] - layer.bias[0]).item() == pytest.approx(0.0, abs=1e-5)
    assert not layer.weight.requires_grad


def test_logistic_regression_sample_weights_equal_duplication():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(12, 2, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2] * 4)
    weighted = fit_logistic_regression(x, y, n_classes=3, sample_weight=torch.tensor(
        [2.0] * 6 + [1.0] * 6, dtype=torch.float64))
    duplicated = fit_logistic_regression(torch.cat([x[:6], x]), torch.cat([y[:6], y]),
                                         n_classes=3)
    torch.testing.assert_close(weighted.weight, duplicated.weight, atol=1e-4, rtol=0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_classes": 1}, "n_classes"), ({"l2": -1.0}, "l2"), ({"max_iter": 0}, "max_iter"),
    ({"labels": torch.tensor([0, 5])}, "labels"), ({"labels": torch.tensor([0.0, 1.0])}, "labels"),
    ({"sample_weight": torch.tensor([-1.0, 1.0])}, "sample_weight"),
    ({"features": torch.zeros(0, 2)}, "features"),
])
def test_logistic_regression_bad_arguments(kwargs, message):
    args = {"features": torch.zeros(2, 2), "labels": torch.tensor([0, 1]), "n_classes": 2,
            **kwargs}
    with pytest.raises(ValueError, match=message):
        fit_logistic_regression(**args)


def test_proxy_a_distance_from_error():
    assert proxy_a_distance_from_error(0.0) == 2.0
    assert proxy_a_distance_from_error(0.5) == 0.0
    assert proxy_a_distance_from_error(0.25) == 1.0
    with pytest.raises(ValueError, match="error"):
        proxy_a_distance_from_error(1.5)


def test_proxy_a_distance_is_large_for_separated_and_small_for_equal_domains():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(400, 2, generator=g)
    far = torch.randn(300, 2, generator=g) + torch.tensor([6.0, 0.0])
    same = torch.randn(300, 2, generator=g)
    assert proxy_a_distance(a, far, generator=torch.Generator().manual_seed(0)) > 1.9
    err = domain_classifier_error(a, same, generator=torch.Generator().manual_seed(0))
    assert 0.4 < err < 0.6  # chance: a balanced error of about 1/2
    with pytest.raises(ValueError, match="test_fraction"):
        proxy_a_distance(a, same, generator=g, test_fraction=1.0)
    with pytest.raises(ValueError, match="same feature size"):
        proxy_a_distance(a, same[:, :1], generator=g)
