"""Few-shot learning by transfer: Baseline and Baseline++ (Chen et al., ICLR 2019).

No meta-learning at all:

1. **Pre-train** an encoder with an ordinary classifier over *all* meta-training classes
   (:func:`baseline_classifier`: a linear head for Baseline, a cosine head for Baseline++),
   e.g. with :func:`companion.transfer.train_classifier`.
2. **Fine-tune** a *new* head of the same kind on each test episode's support set, the
   encoder frozen, and classify the queries (:func:`baseline`, a
   :class:`SupportSetFineTuner` with a ``predict(episode)`` method, so it is scored by
   :func:`companion.evaluate` on the same episodes as the meta-learners).

Chen et al. found this competitive with meta-learning on mini-ImageNet and CUB, especially
with deeper backbones and under domain shift.

Chapter: Transfer learning (few-shot by transfer).
Reference: :cite:t:`chen2019closer`.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from companion._checks import check_positive_int
from companion.transfer.cosine import CosineClassifier
from companion.transfer.finetune import SupportSetFineTuner

__all__ = ["Variant", "baseline", "baseline_classifier"]

Variant = Literal["baseline", "baseline++"]


def _head_kind(variant: str) -> Literal["linear", "cosine"]:
    if variant not in ("baseline", "baseline++"):
        raise ValueError(f"variant must be 'baseline' or 'baseline++', got {variant!r}")
    return "linear" if variant == "baseline" else "cosine"


def baseline_classifier(encoder: nn.Module, embedding_dim: int, n_classes: int, *,
                        variant: Variant = "baseline", scale: float | None = None
                        ) -> nn.Sequential:
    """The pre-training network: ``encoder`` then a head over all ``n_classes`` classes.

    Args:
        encoder: ``[n, *input_shape] -> [n, embedding_dim]`` (e.g. ``Conv4()``).
        embedding_dim: its output size.
        n_classes: number of meta-training classes.
        variant: ``"baseline"`` (``nn.Linear`` head) or ``"baseline++"``
            (:class:`CosineClassifier`, ``scale`` None -> Chen et al.'s rule).

    Returns:
        ``nn.Sequential(encoder, head)``; ``[0]`` is the encoder to reuse.
    """
    check_positive_int("embedding_dim", embedding_dim)
    check_positive_int("n_classes", n_classes)
    head: nn.Module = (nn.Linear(embedding_dim, n_classes) if _head_kind(variant) == "linear"
                       else CosineClassifier(embedding_dim, n_classes, scale=scale))
    return nn.Sequential(encoder, head)


def baseline(encoder: nn.Module, embedding_dim: int, *, variant: Variant = "baseline",
             steps: int = 100, lr: float = 1e-2, scale: float | None = None
             ) -> SupportSetFineTuner:
    """The test-time learner: a new head per episode on the frozen, pre-trained ``encoder``.

    Args:
        encoder: the pre-trained body (e.g. ``baseline_classifier(...)[0]`` after training).
        embedding_dim: its output size.
        variant: ``"baseline"`` (linear head) or ``"baseline++"`` (cosine head).
        steps, lr: full-batch Adam steps and learning rate on the support set.
        scale: the cosine head's scale (None -> 2, Chen et al.'s value for few classes).

    Returns:
        A :class:`SupportSetFineTuner`; ``evaluate(learner, sampler)`` scores it.
    """
    return SupportSetFineTuner(encoder, embedding_dim, steps=steps, lr=lr,
                               head=_head_kind(variant), scale=scale)
