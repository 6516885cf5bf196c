"""Linear probing, and LP-FT: probe first, then fine-tune everything from the probe's head.

Fine-tuning a pre-trained encoder with a *random* head distorts the features early on: the
head's large, random gradients flow into the encoder before the head is any good. Kumar et
al. (2022) show this can make full fine-tuning worse than a linear probe, especially out of
distribution, and fix it in two stages:

1. **LP**: fit a linear head on frozen features (here: logistic regression to convergence);
2. **FT**: fine-tune encoder and head together, starting from the LP head.

:func:`linear_probe` does stage 1; :func:`lp_ft_head` returns a trainable copy of the probe
to hand to :class:`FineTuneClassifier` (``strategy="full"``) for stage 2.

Chapter: Transfer learning (parameter-based transfer, fine-tuning).
Reference: :cite:t:`kumar2022fine`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from companion._checks import check_positive_int
from companion.transfer.logistic import fit_logistic_regression

__all__ = ["embed", "linear_probe", "lp_ft_head"]


@torch.no_grad()
def embed(encoder: nn.Module, x: Tensor, *, batch_size: int = 512) -> Tensor:
    """Features ``[n, d]`` of ``x`` ``[n, ...]``, in evaluation mode, without gradient, in
    chunks of ``batch_size`` (the encoder's mode is restored afterwards)."""
    check_positive_int("batch_size", batch_size)
    if x.shape[0] == 0:
        raise ValueError("x is empty (n = 0)")
    was_training = encoder.training
    encoder.eval()
    try:
        return torch.cat([encoder(chunk) for chunk in x.split(batch_size)]).flatten(1)
    finally:
        encoder.train(was_training)


def linear_probe(encoder: nn.Module, x: Tensor, y: Tensor, *, n_classes: int,
                 l2: float = 1e-4, max_iter: int = 100) -> nn.Linear:
    """Logistic regression on the frozen features of ``encoder`` (the LP stage).

    Args:
        encoder: the pre-trained body, ``[n, ...] -> [n, d]``.
        x: ``[n, ...]`` inputs of the labelled target examples.
        y: ``[n]`` int64 labels.
        n_classes: number of classes.
        l2, max_iter: of :func:`companion.transfer.fit_logistic_regression`.

    Returns:
        The probe, ``nn.Linear(d, n_classes)``, frozen (``requires_grad=False``).
    """
    return fit_logistic_regression(embed(encoder, x), y, n_classes=n_classes, l2=l2,
                                   max_iter=max_iter)


def lp_ft_head(encoder: nn.Module, x: Tensor, y: Tensor, *, n_classes: int,
               l2: float = 1e-4, max_iter: int = 100) -> nn.Linear:
    """The start of LP-FT's fine-tuning stage: a *trainable* copy of the linear probe.

    Same arguments as :func:`linear_probe`. Build ``FineTuneClassifier(encoder, head,
    strategy="full")`` with it and train as usual.
    """
    probe = linear_probe(encoder, x, y, n_classes=n_classes, l2=l2, max_iter=max_iter)
    head = nn.Linear(probe.in_features, probe.out_features, device=probe.weight.device,
                     dtype=probe.weight.dtype)
    with torch.no_grad():
        head.weight.copy_(probe.weight)
        head.bias.copy_(probe.bias)
    return head
