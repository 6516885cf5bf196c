"""Mistake: a "meta-model" of two stacked linear layers, trained with a supervised loop.

The mistaken snippet::

    class MetaModel(nn.Module):                  # "meta-learner"
        def __init__(self):
            super().__init__()
            self.base = nn.Linear(d, h)          # "base learner"
            self.meta = nn.Linear(h, out)        # "meta learner"
        def forward(self, x):
            return self.meta(self.base(x))       # no nonlinearity
    ...
    for x, y in loader: loss = mse(model(x), y); loss.backward(); opt.step()

Symptoms a reader sees: the model is exactly one linear layer, ``W = W_meta W_base`` and
``b = W_meta b_base + b_meta`` (:func:`collapse`), so it fits no better than linear regression;
and the loop is ordinary supervised learning on one data set: there is no distribution of
tasks, no support/query split and no adaptation, so nothing is learned about *learning*. Two
names do not make two levels.

Corrected: a nonlinear network (:class:`companion.models.MLP`, ReLU between layers) and a
meta-learner around it that adapts to each task's support set and is trained on the query
losses over tasks (:class:`companion.meta.MAML` with :func:`companion.fit`), e.g.
``MAML(MLP(1, (40, 40), 1), task="regression")`` on :class:`companion.data.SinusoidSampler`.

Chapter: Applications, open problems and FAQ (the clinic).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from companion.models.mlp import MLP

__all__ = ["MistakenMetaModel", "collapse", "corrected_model", "is_affine"]


class MistakenMetaModel(nn.Module):
    """MISTAKEN: two linear layers without a nonlinearity between them."""

    def __init__(self, in_features: int, hidden: int, out_features: int) -> None:
        super().__init__()
        self.base = nn.Linear(in_features, hidden)
        self.meta = nn.Linear(hidden, out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.meta(self.base(x))


def collapse(model: MistakenMetaModel) -> nn.Linear:
    """The single linear layer the two-layer model equals: ``W2 W1`` and ``W2 b1 + b2``."""
    w1, b1 = model.base.weight, model.base.bias
    w2, b2 = model.meta.weight, model.meta.bias
    layer = nn.Linear(w1.shape[1], w2.shape[0]).to(w1.dtype)
    with torch.no_grad():
        layer.weight.copy_(w2 @ w1)  # [out, in]
        layer.bias.copy_(w2 @ b1 + b2)  # [out]
    return layer


def corrected_model(in_features: int, hidden: int, out_features: int) -> MLP:
    """CORRECTED network: ReLU between the layers (then meta-learn it with ``MAML``)."""
    return MLP(in_features, (hidden,), out_features)


def is_affine(f: nn.Module, x: Tensor, *, atol: float = 1e-5) -> bool:
    """Whether ``f`` behaves as an affine map on ``x``: ``f(x) + f(-x) = 2 f(0)``."""
    with torch.no_grad():
        zero = f(torch.zeros_like(x))
        return torch.allclose(f(x) + f(-x), 2 * zero, atol=atol)
