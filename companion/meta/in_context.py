"""An attention-based in-context learner: a small Transformer reads the whole episode.

Each support item becomes a token ``embed(x) + label_embedding(y)``; each query a token
``embed(x) + no_label``, where ``no_label`` is one learned vector. An attention mask lets
every token attend to the support tokens and to itself only (:func:`episode_attention_mask`),
so a query never sees another query, nor its own label (it has none), and the support tokens
never see the queries. There are no positional encodings: the support set is read as a set,
so the prediction does not depend on the support order.

The same network does in-context linear regression (Garg et al., 2022) with
``task="regression"``: the label embedding is then a linear map of the target ``y``, and the
output a ``y_dim`` prediction, to compare with least squares
(:func:`companion.data.least_squares_predict`). Garg et al. use a causal GPT-2 over
interleaved ``x`` and ``y`` tokens; with one token per pair and this mask, every query is
predicted from all ``n`` support pairs, the least-squares setting.

Chapter: Model-based meta-learning. References: :cite:t:`vaswani2017attention`,
:cite:t:`garg2022what`, :cite:t:`mishra2018simple` (SNAIL, attention over the episode).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from companion._checks import check_positive_int
from companion.meta.sequence import SequenceLearner

__all__ = ["InContextLearner", "MaskedSelfAttention", "episode_attention_mask"]


def episode_attention_mask(n_support: int, n_query: int,
                           device: torch.device | str | None = None) -> Tensor:
    """Which token may attend to which: ``mask[i, j]`` is True if token ``i`` may read ``j``.

    Tokens ``0 .. n_support-1`` are the support set, the rest the queries. Everyone reads the
    support set; a query also reads itself, and nothing else.

    Returns:
        ``[n_support + n_query, n_support + n_query]`` bool.
    """
    n = n_support + n_query
    j = torch.arange(n, device=device)
    return (j[None, :] < n_support) | (j[:, None] == j[None, :])  # [n, n]


class MaskedSelfAttention(nn.Module):
    """Multi-head self-attention with a boolean ``[L, L]`` mask (True = may attend).

    Masked scores are set to ``-inf`` before the softmax, so their weights are exactly zero
    and the masked tokens' values cannot change the output at all.
    """

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """``x`` ``[T, L, d_model]``, ``mask`` ``[L, L]`` -> ``[T, L, d_model]``."""
        t, length, d = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)  # [T, L, d] each
        q, k, v = (z.unflatten(-1, (self.n_heads, -1)).transpose(1, 2) for z in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.n_heads)  # [T, h, L, L]
        weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)  # [T, h, L, L]
        out = (weights @ v).transpose(1, 2).reshape(t, length, d)  # [T, L, d]
        return self.proj(out)


class _Block(nn.Module):
    """Pre-norm Transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attention = MaskedSelfAttention(d_model, n_heads)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(),
                                 nn.Linear(4 * d_model, d_model))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + self.attention(self.ln1(x), mask)  # [T, L, d]
        return x + self.mlp(self.ln2(x))  # [T, L, d]


class InContextLearner(SequenceLearner):
    """A masked Transformer over (support + label, query + no-label) tokens.

    Args:
        encoder: maps ``[N, *input_shape]`` to ``[N, embedding_dim]`` (``Conv4(norm="none")``
            for images, ``nn.Identity()`` for vectors). As in :class:`RecurrentLearner`, a
            batch-statistics norm in the encoder couples the queries' embeddings.
        embedding_dim: size of the encoder's output.
        max_ways: classes of the output layer (classification).
        max_support: the largest support set accepted.
        task: ``"classification"`` or ``"regression"``.
        y_dim: target size for regression.
        d_model: token width.
        n_heads: attention heads.
        n_layers: Transformer blocks.

    Shapes:
        ``forward``: support ``[n_s, *input_shape]`` with ``[n_s]`` labels (or ``[n_s, y_dim]``
        targets), query ``[n_q, *input_shape]`` -> ``[n_q, n_way]`` (or ``[n_q, y_dim]``).

    Example:
        >>> net = InContextLearner(nn.Identity(), embedding_dim=3, task="regression",
        ...                        max_support=40, d_model=64)
        >>> loss, metrics = net.meta_loss(LinearRegressionTasks(3).sampler(
        ...     n_support=10, n_query=5, seed=0).sample_batch(32))
    """

    def __init__(self, encoder: nn.Module, *, embedding_dim: int, max_support: int,
                 max_ways: int = 1, task: str = "classification", y_dim: int = 1,
                 d_model: int = 64, n_heads: int = 4, n_layers: int = 2) -> None:
        super().__init__(max_ways=max_ways, max_support=max_support, task=task)
        for name, value in (("embedding_dim", embedding_dim), ("y_dim", y_dim),
                            ("d_model", d_model), ("n_heads", n_heads),
                            ("n_layers", n_layers)):
            check_positive_int(name, value)
        self.encoder = encoder
        self.input = nn.Linear(embedding_dim, d_model)
        self.label: nn.Module = (nn.Embedding(max_ways, d_model) if task == "classification"
                                 else nn.Linear(y_dim, d_model))
        self.no_label = nn.Parameter(0.02 * torch.randn(d_model))
        self.blocks = nn.ModuleList(_Block(d_model, n_heads) for _ in range(n_layers))
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, max_ways if task == "classification" else y_dim)

    def _outputs(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        t, n_s, n_q = support_x.shape[0], support_x.shape[1], query_x.shape[1]
        z = self.encoder(torch.cat([support_x.flatten(0, 1), query_x.flatten(0, 1)]))
        z = self.input(z.flatten(1))  # [T * (n_s + n_q), d]
        support = z[: t * n_s].unflatten(0, (t, n_s)) + self.label(support_y)  # [T, n_s, d]
        query = z[t * n_s :].unflatten(0, (t, n_q)) + self.no_label  # [T, n_q, d]
        h = torch.cat([support, query], dim=1)  # [T, n_s + n_q, d]
        mask = episode_attention_mask(n_s, n_q, device=h.device)  # [L, L]
        for block in self.blocks:
            h = block(h, mask)
        return self.head(self.ln(h[:, n_s:]))  # [T, n_q, max_ways or y_dim]
