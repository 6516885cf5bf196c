"""Instance-based transfer: weight source examples by the density ratio ``p_T(x) / p_S(x)``.

Under covariate shift (``p_S(y|x) = p_T(y|x)``, ``p_S(x) != p_T(x)``) the target risk is a
weighted source risk, ``E_T[loss] = E_S[w(x) loss]`` with ``w(x) = p_T(x) / p_S(x)``
(Shimodaira, 2000). The ratio is estimated with a *domain classifier* ``P(d = T | x)``
trained on ``n_S`` source and ``n_T`` target examples (Bickel et al., 2009). By Bayes' rule,

    w(x) = p_T(x) / p_S(x) = [P(T | x) / P(S | x)] * (n_S / n_T)
         = exp(logit(x)) * n_S / n_T,

the classifier's odds corrected for the sample-size ratio (its prior odds ``n_T / n_S``).

Practical safeguards (estimated ratios are heavy-tailed): clip the weights at ``clip`` and
normalise them to mean 1 over the source sample (self-normalised importance sampling).
:func:`companion.transfer.kernel_mean_matching` estimates such weights without a classifier.

Chapter: Transfer learning (instance-based transfer).
References: :cite:t:`shimodaira2000improving`, :cite:t:`bickel2009discriminative`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from companion._checks import check_positive_float, check_positive_int
from companion.transfer._checks import check_pair
from companion.transfer.logistic import fit_logistic_regression

__all__ = ["domain_log_odds", "fit_domain_classifier", "importance_weights"]


def fit_domain_classifier(source: Tensor, target: Tensor, *, l2: float = 1e-4,
                          max_iter: int = 100, balanced: bool = False) -> nn.Linear:
    """Logistic regression telling target (label 1) from source (label 0) examples.

    Args:
        source: ``[n_s, d]`` source features (e.g. ``[x, x^2]``, or a frozen encoder's output).
        target: ``[n_t, d]`` target features.
        l2, max_iter: see :func:`companion.transfer.fit_logistic_regression`.
        balanced: weight each domain's examples by ``1 / n_domain`` so both domains count
            equally; the log-odds then estimate ``log p_T/p_S`` directly (pass
            ``n_source = n_target`` to :func:`importance_weights`).

    Returns:
        ``nn.Linear(d, 2)``; :func:`domain_log_odds` turns it into ``log P(T|x) / P(S|x)``.
    """
    source, target = check_pair(source, target)
    x = torch.cat([source, target])  # [n_s + n_t, d]
    y = torch.cat([torch.zeros(len(source), dtype=torch.int64, device=x.device),
                   torch.ones(len(target), dtype=torch.int64, device=x.device)])  # [n_s + n_t]
    weight = None
    if balanced:
        weight = torch.cat([torch.full((len(source),), 1 / len(source)),
                            torch.full((len(target),), 1 / len(target))]).to(x)  # [n_s + n_t]
    return fit_logistic_regression(x, y, n_classes=2, l2=l2, max_iter=max_iter,
                                   sample_weight=weight)


def domain_log_odds(classifier: nn.Module, features: Tensor) -> Tensor:
    """``log P(T | x) - log P(S | x)`` from a two-logit domain classifier: ``[n, d] -> [n]``."""
    logits = classifier(features)  # [n, 2]
    if logits.ndim != 2 or logits.shape[1] != 2:
        raise ValueError(f"classifier must output [n, 2] logits (source, target), got "
                         f"{tuple(logits.shape)}")
    return logits[:, 1] - logits[:, 0]  # [n]


def importance_weights(log_odds: Tensor, *, n_source: int, n_target: int,
                       clip: float | None = None, normalize: bool = True) -> Tensor:
    """Density-ratio weights ``w = exp(log_odds) * n_source / n_target``.

    Args:
        log_odds: ``[n]`` domain-classifier log-odds ``log P(T|x)/P(S|x)`` of source examples.
        n_source: number of source examples the classifier was trained on (> 0).
        n_target: number of target examples it was trained on (> 0).
        clip: if given (> 0), weights are capped at ``clip`` (before normalising).
        normalize: rescale so that the weights average 1 over ``log_odds``.

    Returns:
        ``[n]`` non-negative weights (detached: a weight is data, not a parameter).
    """
    check_positive_int("n_source", n_source)
    check_positive_int("n_target", n_target)
    if log_odds.ndim != 1 or log_odds.numel() == 0 or not log_odds.dtype.is_floating_point:
        raise ValueError(f"log_odds must be a non-empty 1-D float tensor, got "
                         f"{log_odds.dtype} {tuple(log_odds.shape)}")
    if not torch.isfinite(log_odds).all():
        raise ValueError("log_odds contains NaN or infinite values")
    w = torch.exp(log_odds.detach()) * (n_source / n_target)  # [n]
    if clip is not None:
        w = w.clamp_max(check_positive_float("clip", clip))
    if not torch.isfinite(w).all():
        raise ValueError("weights overflow to infinity; pass clip= to cap them")
    if normalize:
        w = w / w.mean()
    return w
