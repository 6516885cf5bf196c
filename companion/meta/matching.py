"""Matching Networks (Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, 2016).

A query is labelled by attention over the support set: ``p(y | x, S) = sum_i a(x, x_i) y_i``
with ``a(x, x_i) = softmax_i(scale * cos(f(x), g(x_i)))`` and one-hot support labels ``y_i``.
With *full context embeddings* (FCE), ``g`` reads the whole support set with a bidirectional
LSTM and ``f`` attends to it with an LSTM for a few processing steps, so each embedding depends
on the episode it appears in.

Chapter: metric methods. Reference: :cite:t:`vinyals2016matching`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from companion._checks import check_bool, check_positive_float, check_positive_int
from companion.meta.metric import MetricLearner

__all__ = ["MatchingNetwork"]


class MatchingNetwork(MetricLearner):
    """Cosine attention over the support set, optionally with full context embeddings.

    Args:
        encoder: maps ``[n, *input_shape]`` to ``[n, d]``.
        embedding_dim: ``d``; needed only for ``fce=True`` (to size the LSTMs).
        fce: use full context embeddings.
        fce_steps: processing steps of the attention LSTM (FCE only).
        scale: multiplies the cosine similarities inside the softmax (1 in the paper). With
            an encoder that ends in a ReLU (like Conv-4) all cosines lie in [0, 1] and an
            unscaled softmax is nearly uniform, which slows learning; a scale such as 10
            sharpens it (the book's experiments use 10).

    The scores are log-probabilities ``log p(y = k | x, S)``, so cross-entropy on them is the
    paper's training loss.
    """

    def __init__(self, encoder: nn.Module, *, embedding_dim: int | None = None,
                 fce: bool = False, fce_steps: int = 5, scale: float = 1.0) -> None:
        super().__init__()
        if not isinstance(encoder, nn.Module):
            raise ValueError(f"encoder must be an nn.Module (e.g. Conv4()), got "
                             f"{type(encoder).__name__}")
        check_bool("fce", fce)
        if fce and embedding_dim is None:
            raise ValueError("fce=True needs embedding_dim, the size of the encoder's output")
        if embedding_dim is not None:
            check_positive_int("embedding_dim", embedding_dim)
        check_positive_int("fce_steps", fce_steps)
        check_positive_float("scale", scale)
        self.encoder = encoder
        self.fce = fce
        self.fce_steps = fce_steps
        self.scale = scale
        if fce:
            d = int(embedding_dim)  # type: ignore[arg-type]
            self.support_lstm = nn.LSTM(d, d, batch_first=True, bidirectional=True)
            self.query_lstm = nn.LSTMCell(d, d)

    def embed(self, support_x: Tensor, query_x: Tensor) -> tuple[Tensor, Tensor]:
        """``g(x_i, S)`` ``[n_s, d]`` and ``f(x, S)`` ``[n_q, d]``."""
        n_support = support_x.shape[0]
        z = self.encoder(torch.cat([support_x, query_x])).flatten(1)  # [n_s + n_q, d]
        g, f = z[:n_support], z[n_support:]
        if self.fce and z.shape[1] != self.query_lstm.input_size:
            raise ValueError(f"the encoder's embeddings have {z.shape[1]} dimensions, but "
                             f"embedding_dim={self.query_lstm.input_size}; build the network "
                             f"with embedding_dim={z.shape[1]}")
        if self.fce:
            g = self._support_context(g)
            f = self._query_context(f, g)
        return g, f

    def _support_context(self, g: Tensor) -> Tensor:
        """g(x_i, S) = forward state + backward state + g'(x_i), over the support sequence."""
        out, _ = self.support_lstm(g[None])  # [1, n_s, 2d]
        d = g.shape[1]
        return g + out[0, :, :d] + out[0, :, d:]  # [n_s, d]

    def _query_context(self, f: Tensor, g: Tensor) -> Tensor:
        """The attention LSTM: h_k = LSTM(f', h_{k-1} + r_{k-1}) + f', r_k = attention read."""
        h = torch.zeros_like(f)  # [n_q, d]
        c = torch.zeros_like(f)
        r = torch.zeros_like(f)
        for _ in range(self.fce_steps):
            h_hat, c = self.query_lstm(f, (h + r, c))
            h = h_hat + f
            r = torch.softmax(h @ g.T, dim=1) @ g  # [n_q, d]
        return h

    def attention(self, support_x: Tensor, query_x: Tensor) -> Tensor:
        """``a(x, x_i)``: ``[n_q, n_s]``, each row a distribution over the support set."""
        g, f = self.embed(support_x, query_x)
        cos = F.normalize(f, dim=1) @ F.normalize(g, dim=1).T  # [n_q, n_s]
        return torch.softmax(self.scale * cos, dim=1)

    def _scores(self, support_x: Tensor, support_labels: Tensor, n_way: int,
                query_x: Tensor) -> Tensor:
        a = self.attention(support_x, query_x)  # [n_q, n_s]
        probs = a @ F.one_hot(support_labels, n_way).to(a.dtype)  # [n_q, n_way]
        return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()
