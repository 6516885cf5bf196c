"""The proxy A-distance: how well a classifier tells the two domains apart.

Ben-David et al. bound the target error by the source error plus a divergence between the
domains' feature distributions. Its practical proxy trains a domain classifier on part of the
source and target features and measures its error ``err`` on the rest:

    d_A = 2 (1 - 2 err).

``d_A`` is about 2 for perfectly separable domains and about 0 when the classifier is at
chance (``err = 1/2``): features that make ``d_A`` small are domain-invariant. Here the
classifier is a logistic regression (the papers often use a linear SVM).

Chapter: Transfer learning (domain adaptation: measuring the shift).
References: :cite:t:`ben2010theory`, :cite:t:`ganin2016domain`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from companion._checks import check_positive_int
from companion.transfer._checks import check_pair
from companion.transfer.importance import domain_log_odds, fit_domain_classifier

__all__ = ["domain_classifier_error", "proxy_a_distance", "proxy_a_distance_from_error"]


def proxy_a_distance_from_error(error: float) -> float:
    """``2 (1 - 2 error)`` for a domain-classification error in ``[0, 1]``."""
    if not isinstance(error, (int, float)) or not 0 <= error <= 1 or math.isnan(error):
        raise ValueError(f"error must be a number in [0, 1], got {error!r}")
    return 2.0 * (1.0 - 2.0 * float(error))


def _halves(n: int, fraction: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    perm = torch.randperm(n, generator=generator)
    n_test = min(max(1, round(fraction * n)), n - 1)
    return perm[n_test:], perm[:n_test]  # train rows, test rows


def domain_classifier_error(source: Tensor, target: Tensor, *, generator: torch.Generator,
                            test_fraction: float = 0.5, l2: float = 1e-3,
                            max_iter: int = 100) -> float:
    """Held-out error of a logistic-regression domain classifier.

    Args:
        source: ``[n_s, d]`` source features (``n_s >= 2``).
        target: ``[n_t, d]`` target features (``n_t >= 2``).
        generator: draws the train/test split of each domain.
        test_fraction: share of each domain held out for measuring the error, in (0, 1).
        l2, max_iter: of the logistic regression.

    Returns:
        The balanced error ``(err_source + err_target) / 2`` on the held-out rows, so that a
        classifier at chance scores 1/2 whatever the two sample sizes.
    """
    source, target = check_pair(source, target, min_rows=2)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    check_positive_int("max_iter", max_iter)
    s_train, s_test = _halves(len(source), test_fraction, generator)
    t_train, t_test = _halves(len(target), test_fraction, generator)
    dev = source.device
    classifier = fit_domain_classifier(source[s_train.to(dev)], target[t_train.to(dev)],
                                       l2=l2, max_iter=max_iter, balanced=True)
    with torch.no_grad():
        err_s = (domain_log_odds(classifier, source[s_test.to(dev)]) > 0).double().mean()
        err_t = (domain_log_odds(classifier, target[t_test.to(dev)]) <= 0).double().mean()
    return 0.5 * (err_s.item() + err_t.item())


def proxy_a_distance(source: Tensor, target: Tensor, *, generator: torch.Generator,
                     test_fraction: float = 0.5, l2: float = 1e-3,
                     max_iter: int = 100) -> float:
    """``2 (1 - 2 err)`` with ``err`` from :func:`domain_classifier_error` (same arguments).

    Shapes:
        source ``[n_s, d]``, target ``[n_t, d]`` -> a float in ``[-2, 2]``.
    """
    return proxy_a_distance_from_error(domain_classifier_error(
        source, target, generator=generator, test_fraction=test_fraction, l2=l2,
        max_iter=max_iter))
