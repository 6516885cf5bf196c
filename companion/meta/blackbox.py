"""A recurrent black-box meta-learner: an LSTM reads the labelled support set, then answers.

Memory-augmented networks (Santoro et al., 2016) and the label-as-input protocol of Stanford
CS330's first homework: the episode is a sequence of ``(embedding of x_t, label input)``
pairs (see :func:`companion.meta.label_inputs.label_inputs`); the LSTM state after the
support sequence is all the network "knows" about the task. Each query is then fed as the
*next* step from that state, with a zero label input (or, with ``shift=True``, the last
support label, which Santoro et al.'s protocol shows one step late). The queries are run as
a batch of independent one-step continuations, so no query sees another query, and none
sees its own label.

Nothing here is an optimiser: "learning" a new task is the forward pass over the support
set. Read the support set in a random order (``EpisodeSampler(..., shuffle=True)``); with
the class-by-class order a model can learn a counting shortcut that fails on shuffled data.

Chapter: Model-based meta-learning. Reference: :cite:t:`santoro2016meta`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from companion._checks import check_positive_int
from companion.meta.label_inputs import HIDDEN, label_inputs
from companion.meta.sequence import SequenceLearner

__all__ = ["RecurrentLearner"]


class RecurrentLearner(SequenceLearner):
    """An LSTM over (embedding, label input) pairs with a linear classifier on its output.

    Args:
        encoder: maps ``[N, *input_shape]`` to ``[N, embedding_dim]`` (e.g.
            ``Conv4(norm="none")``). Support and query are embedded in one call: with a
            batch-statistics norm (``Conv4(norm="batch_stats")``, or ``"batch"`` in training
            mode) the queries share normalisation statistics, so one query can shift
            another's embedding slightly; use ``norm="none"`` (or ``"batch"`` in eval mode)
            for strictly independent queries.
        embedding_dim: size of the encoder's output.
        max_ways: size of the label inputs and of the output layer (the largest ``n_way``).
        max_support: the longest support sequence accepted.
        hidden_size: LSTM units per layer.
        num_layers: stacked LSTM layers.
        shift: Santoro et al.'s one-step-late labels instead of CS330's concurrent ones.

    Shapes:
        ``forward``: support ``[n_s, *input_shape]``, ``[n_s]`` and query ``[n_q, *input_shape]``
        -> ``[n_q, n_way]`` logits.

    Example:
        >>> learner = RecurrentLearner(Conv4(norm="none"), embedding_dim=64, max_ways=5,
        ...                            max_support=25)
        >>> loss, metrics = learner.meta_loss(sampler.sample_batch(16))
    """

    def __init__(self, encoder: nn.Module, *, embedding_dim: int, max_ways: int,
                 max_support: int, hidden_size: int = 128, num_layers: int = 1,
                 shift: bool = False) -> None:
        super().__init__(max_ways=max_ways, max_support=max_support)
        check_positive_int("embedding_dim", embedding_dim)
        check_positive_int("hidden_size", hidden_size)
        check_positive_int("num_layers", num_layers)
        self.encoder = encoder
        self.shift = shift
        self.lstm = nn.LSTM(embedding_dim + max_ways, hidden_size, num_layers=num_layers,
                            batch_first=True)
        self.head = nn.Linear(hidden_size, max_ways)

    def _embed(self, support_x: Tensor, query_x: Tensor) -> tuple[Tensor, Tensor]:
        """``[T, n_s, e]`` and ``[T, n_q, e]`` embeddings, from one encoder call."""
        t, n_s, n_q = support_x.shape[0], support_x.shape[1], query_x.shape[1]
        z = self.encoder(torch.cat([support_x.flatten(0, 1), query_x.flatten(0, 1)]))
        z = z.flatten(1)  # [T * (n_s + n_q), e]
        return z[: t * n_s].unflatten(0, (t, n_s)), z[t * n_s :].unflatten(0, (t, n_q))

    def _outputs(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        t, n_s, n_q = support_x.shape[0], support_x.shape[1], query_x.shape[1]
        zs, zq = self._embed(support_x, query_x)  # [T, n_s, e], [T, n_q, e]
        hidden = torch.full((t, 1), HIDDEN, dtype=support_y.dtype, device=support_y.device)
        labels = label_inputs(torch.cat([support_y, hidden], dim=1), self.max_ways,
                              shift=self.shift, dtype=zs.dtype)  # [T, n_s + 1, W]
        _, (h, c) = self.lstm(torch.cat([zs, labels[:, :n_s]], dim=-1))  # [L, T, H] each
        query_labels = labels[:, n_s:].expand(t, n_q, self.max_ways)  # [T, n_q, W]
        query_in = torch.cat([zq, query_labels], dim=-1).flatten(0, 1)[:, None]  # [T*n_q, 1, .]
        state = (h.repeat_interleave(n_q, dim=1), c.repeat_interleave(n_q, dim=1))  # [L, T*n_q, H]
        out, _ = self.lstm(query_in, state)  # [T * n_q, 1, H]: one step per query, in parallel
        return self.head(out[:, 0]).unflatten(0, (t, n_q))  # [T, n_q, W]
