"""Domain-adversarial training (DANN): a domain discriminator behind a gradient reversal layer.

A discriminator ``D`` learns to tell source features (domain label 0) from target features
(label 1) by binary cross-entropy; the gradient reversal layer makes the feature extractor
``F`` *maximise* that same loss, pushing it towards domain-invariant features:

    min_{F, C} max_D   L_cls(C(F(x_S)), y_S) - lambda L_dom(D, F),
    L_dom = mean_S BCE(D(F(x)), 0) + mean_T BCE(D(F(x)), 1)   (here averaged over the two).

Warm start (Ganin et al.): the adversarial weight grows from 0 to ``lambda_max`` with the
training progress ``p in [0, 1]``,

    lambda(p) = lambda_max * (2 / (1 + exp(-gamma p)) - 1),     gamma = 10,

so that the discriminator's noisy early signal does not disturb the classifier.

Chapter: Transfer learning (feature-based transfer, domain adaptation).
Reference: :cite:t:`ganin2016domain`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from companion.transfer._checks import check_non_negative_float, check_pair
from companion.transfer.grl import GradientReversal

__all__ = ["DomainAdversarialLoss", "DomainDiscriminator", "dann_coefficient"]


def dann_coefficient(progress: float, *, gamma: float = 10.0, max_value: float = 1.0) -> float:
    """The warm-start schedule ``max_value * (2 / (1 + exp(-gamma * progress)) - 1)``.

    Args:
        progress: ``p in [0, 1]``, the fraction of training done.
        gamma: steepness (> 0 ; 10 in the paper).
        max_value: ``lambda_max >= 0``, approached as ``p -> 1`` (``0.9993 * max`` at p = 1).

    Returns:
        ``lambda(p)``: 0 at ``p = 0``, increasing in ``p``.
    """
    if not isinstance(progress, (int, float)) or not 0 <= progress <= 1:
        raise ValueError(f"progress must be a number in [0, 1], got {progress!r}")
    if not isinstance(gamma, (int, float)) or not 0 < gamma < math.inf:
        raise ValueError(f"gamma must be a positive finite number, got {gamma!r}")
    max_value = check_non_negative_float("max_value", max_value)
    return max_value * (2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0)


class DomainDiscriminator(nn.Sequential):
    """An MLP from features to one domain logit (``> 0``: target).

    Args:
        in_features: feature size ``d``.
        hidden: hidden layer sizes (ReLU after each; the paper uses ``(1024, 1024)`` on deep
            features, a smaller one is enough for digits).

    Shapes:
        ``[n, d] -> [n]``.
    """

    def __init__(self, in_features: int, hidden: Sequence[int] = (256, 256)) -> None:
        sizes = [in_features, *hidden]
        if any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in sizes):
            raise ValueError(f"in_features and hidden must be positive ints, got {sizes}")
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers += [nn.Linear(sizes[-1], 1), nn.Flatten(0)]
        super().__init__(*layers)


class DomainAdversarialLoss(nn.Module):
    """The domain-adversarial loss of DANN, with its discriminator and reversal layer.

    Args:
        discriminator: ``[n, d] -> [n]`` domain logits (e.g. :class:`DomainDiscriminator`).
        coefficient: the reversal strength ``lambda >= 0``; change it during training with
            :func:`dann_coefficient` (attribute ``coefficient``).

    Shapes:
        source ``[n_s, d]``, target ``[n_t, d]`` -> scalar
        ``(mean_S BCE(D, 0) + mean_T BCE(D, 1)) / 2``.

    Minimising this scalar with one optimiser over the feature extractor *and* the
    discriminator trains the discriminator to separate the domains and, through the reversed
    gradient, the features to confuse it.
    """

    def __init__(self, discriminator: nn.Module, *, coefficient: float = 1.0) -> None:
        super().__init__()
        self.discriminator = discriminator
        self.reversal = GradientReversal(coefficient)

    @property
    def coefficient(self) -> float:
        return self.reversal.coefficient

    @coefficient.setter
    def coefficient(self, value: float) -> None:
        self.reversal.coefficient = value

    def domain_logits(self, source: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """``[n_s]`` and ``[n_t]`` discriminator logits, behind the reversal layer."""
        source, target = check_pair(source, target)
        logits = self.discriminator(self.reversal(torch.cat([source, target])))  # [n_s + n_t]
        if logits.shape != (len(source) + len(target),):
            raise ValueError(f"discriminator must map [n, d] to [n] logits, got "
                             f"{tuple(logits.shape)}")
        return logits[:len(source)], logits[len(source):]

    def forward(self, source: Tensor, target: Tensor) -> Tensor:
        return self.loss_from_logits(*self.domain_logits(source, target))

    @staticmethod
    def loss_from_logits(source_logits: Tensor, target_logits: Tensor) -> Tensor:
        """``(mean BCE(source_logits, 0) + mean BCE(target_logits, 1)) / 2``."""
        s, t = source_logits, target_logits
        return 0.5 * (F.binary_cross_entropy_with_logits(s, torch.zeros_like(s))
                      + F.binary_cross_entropy_with_logits(t, torch.ones_like(t)))

    @staticmethod
    def domain_accuracy(source_logits: Tensor, target_logits: Tensor) -> Tensor:
        """Balanced accuracy of the discriminator (0.5 = the domains are confused)."""
        return 0.5 * ((source_logits <= 0).float().mean() + (target_logits > 0).float().mean())
