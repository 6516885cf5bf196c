"""The gradient reversal layer of domain-adversarial training.

Forward it is the identity; backward it multiplies the incoming gradient by ``-lambda``:

    R_lambda(x) = x,        dR_lambda / dx = -lambda I.

Placed between a feature extractor and a domain discriminator, one optimiser step then
*minimises* the discriminator's loss in the discriminator and *maximises* it in the features,
which is the min-max game of DANN without a second optimiser.

Chapter: Transfer learning (feature-based transfer, DANN).
Reference: :cite:t:`ganin2016domain`.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, autograd, nn

from companion.transfer._checks import check_non_negative_float

__all__ = ["GradientReversal", "GradientReversalFunction", "grad_reverse"]


class GradientReversalFunction(autograd.Function):
    """``apply(x, coefficient)``: identity forward, gradient times ``-coefficient`` backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, coefficient: float) -> Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)  # a view, so autograd sees a new node with the same values

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        return -ctx.coefficient * grad_output, None  # no gradient for the coefficient


def grad_reverse(x: Tensor, coefficient: float = 1.0) -> Tensor:
    """Reverse (and scale) the gradient flowing back through ``x``.

    Args:
        x: any tensor, e.g. features ``[n, d]``.
        coefficient: ``lambda >= 0``; 0 blocks the gradient, 1 flips its sign.

    Returns:
        ``x`` itself (same values and shape); its gradient is multiplied by ``-coefficient``.
    """
    return GradientReversalFunction.apply(x, check_non_negative_float("coefficient", coefficient))


class GradientReversal(nn.Module):
    """:func:`grad_reverse` as a layer whose ``coefficient`` can be changed during training
    (e.g. by the warm-start schedule :func:`companion.transfer.dann_coefficient`).

    Shapes:
        x: any shape -> the same shape.
    """

    def __init__(self, coefficient: float = 1.0) -> None:
        super().__init__()
        self._coefficient = check_non_negative_float("coefficient", coefficient)

    @property
    def coefficient(self) -> float:
        """``lambda >= 0``, checked when set."""
        return self._coefficient

    @coefficient.setter
    def coefficient(self, value: float) -> None:
        self._coefficient = check_non_negative_float("coefficient", value)

    def forward(self, x: Tensor) -> Tensor:
        return grad_reverse(x, self.coefficient)

    def extra_repr(self) -> str:
        return f"coefficient={self.coefficient}"
