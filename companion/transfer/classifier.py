"""Supervised fine-tuning of a pre-trained encoder with a head: one learner for every strategy.

:class:`FineTuneClassifier` combines the parameter-based tools: a strategy decides which
parameters train (:func:`apply_strategy`), an optional :class:`L2SP` penalty keeps them near
the pre-trained start, and :meth:`FineTuneClassifier.param_groups` gives per-layer learning
rates. Its ``training_loss(batch)`` and ``evaluation_metrics(sample)`` fit the shared
training loop; any batch with ``x`` ``[n, ...]`` and ``y`` ``[n]`` works (e.g.
:class:`DomainBatch`).

    L = CE(head(encoder(x)), y) + Omega_L2SP(encoder, head)

Chapter: Transfer learning (parameter-based transfer, fine-tuning).
References: :cite:t:`kumar2022fine`, :cite:t:`li2018explicit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from companion.metrics import accuracy
from companion.transfer.l2sp import L2SP
from companion.transfer.layers import Strategy, apply_strategy, layers_of, layerwise_param_groups

__all__ = ["FineTuneClassifier"]


def _xy(batch: Any, name: str) -> tuple[Tensor, Tensor]:
    x, y = getattr(batch, "x", None), getattr(batch, "y", None)
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise ValueError(f"{name} must have tensors x [n, ...] and y [n]")
    if x.shape[0] == 0 or y.shape != x.shape[:1]:
        raise ValueError(f"{name} must hold n >= 1 examples with labels y [n], got x "
                         f"{tuple(x.shape)} and y {tuple(y.shape)}")
    return x, y


class FineTuneClassifier(nn.Module):
    """A pre-trained encoder and a head, fine-tuned with a strategy and optional L2-SP.

    Args:
        encoder: the pre-trained body, ``[n, *input_shape] -> [n, d]``.
        head: ``[n, d] -> [n, n_classes]`` (new, or the probe's head for LP-FT).
        strategy: ``"linear_probe"``, ``"last_layer"`` or ``"full"`` (see
            :func:`apply_strategy`); parameters outside it get ``requires_grad=False``.
        l2sp: optional :class:`L2SP` built from the encoder *before* fine-tuning.
        layers: the encoder's layers in depth order (default :func:`layers_of`).

    Frozen encoder layers stay in evaluation mode under ``.train()``, so their batch-norm
    statistics do not drift either.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, *, strategy: Strategy = "full",
                 l2sp: L2SP | None = None, layers: Sequence[nn.Module] | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.strategy = strategy
        self.l2sp = l2sp
        self.layers = list(layers) if layers is not None else layers_of(encoder)
        apply_strategy(encoder, head, strategy, self.layers)

    def forward(self, x: Tensor) -> Tensor:
        """``[n, *input_shape] -> [n, n_classes]``."""
        return self.head(self.encoder(x))

    def train(self, mode: bool = True) -> FineTuneClassifier:
        super().train(mode)
        for layer in self.layers:
            if not any(p.requires_grad for p in layer.parameters()):
                layer.eval()
        return self

    def param_groups(self, *, lr: float, layer_decay: float = 1.0) -> list[dict[str, Any]]:
        """Trainable parameters grouped by depth: the head gets ``lr``, the encoder's top
        layer ``lr * layer_decay``, the next ``lr * layer_decay^2``, ..."""
        return layerwise_param_groups([*self.layers, self.head], lr=lr, decay=layer_decay)

    def training_loss(self, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """Cross-entropy on ``batch`` (+ the L2-SP penalty), and metrics to log."""
        x, y = _xy(batch, "batch")
        logits = self(x)  # [n, n_classes]
        ce = F.cross_entropy(logits, y)
        metrics = {"cross_entropy": ce.detach(),
                   "accuracy": accuracy(logits.detach(), y)}
        if self.l2sp is None:
            return ce, metrics
        penalty = self.l2sp(self.encoder, self.head)
        metrics["l2sp"] = penalty.detach()
        return ce + penalty, metrics

    @torch.no_grad()
    def evaluation_metrics(self, sample: Any) -> dict[str, Tensor]:
        """``accuracy`` and ``loss`` on a labelled batch."""
        x, y = _xy(sample, "sample")
        logits = self(x)  # [n, n_classes]
        return {"accuracy": accuracy(logits, y),
                "loss": F.cross_entropy(logits, y)}
