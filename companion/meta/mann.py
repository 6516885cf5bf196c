"""A memory-augmented neural network (MANN) with least-recently-used access (Santoro et al.).

An LSTM *controller* reads ``(embedding of x_t, label input, last read vector)`` and emits a
key ``k_t`` and a key strength ``beta_t >= 1``; an external memory ``M`` (``n_slots`` rows of
``word_size``) is read and then written with it (section 3 of the paper):

* **read**, from the memory as written up to the previous step:
  ``w^r_t = softmax(beta_t cosine(k_t, M_{t-1}))``, ``r_t = sum_i w^r_t(i) M_{t-1}(i)``;
* **write** (LRUA): ``w^w_t = sigmoid(a) w^r_{t-1} + (1 - sigmoid(a)) w^lu_{t-1}``, a learned
  mix of "the slot I last read" and "the least-used slot" (which is first erased);
  ``M_t = M_{t-1} + w^w_t k_t^T``;
* **usage**: ``w^u_t = gamma w^u_{t-1} + w^r_t + w^w_t``; ``w^lu_t`` is 1 on the slot of
  least usage.

Two details decide whether the memory can be used at all (``tests/meta/test_mann.py``). Reading
*before* writing: a key read back from a memory that already holds it has cosine 1 with its
own entry, so every read would retrieve the step's own, label-less write instead of the
support entry that binds an input to its label. And the key strength (the sharpening of the
Neural Turing Machine's content addressing): a softmax of cosines, which lie in ``[-1, 1]``,
over 32 slots is nearly uniform (no weight above ``e^2 / (e^2 + 31) = 0.19``), so without it
the read is close to the mean of the memory whatever the key.

The class prediction is a linear map of ``[h_t, r_t]``. As in :class:`RecurrentLearner`, each
query is one further step from the state after the support sequence, run in parallel, with a
zero label input (or the last support label with ``shift=True``).

Chapter: Model-based meta-learning. References: :cite:t:`santoro2016meta`; the key strength
as in the Neural Turing Machine (Graves et al., 2014, "Neural Turing Machines",
arXiv:1410.5401).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from companion._checks import check_positive_int
from companion.meta.label_inputs import HIDDEN, label_inputs
from companion.meta.sequence import SequenceLearner

__all__ = ["MemoryAugmentedLearner", "MemoryState"]


@dataclass
class MemoryState:
    """Controller and memory state of a batch of ``B`` sequences.

    Attributes:
        h, c: ``[B, hidden]`` controller state.
        memory: ``[B, n_slots, word_size]``.
        read: ``[B, word_size]`` last read vector.
        read_weights, usage: ``[B, n_slots]``.
    """

    h: Tensor
    c: Tensor
    memory: Tensor
    read: Tensor
    read_weights: Tensor
    usage: Tensor

    def repeat_interleave(self, n: int) -> MemoryState:
        """Each sequence's state ``n`` times (one copy per query)."""
        return MemoryState(*(t.repeat_interleave(n, dim=0) for t in (
            self.h, self.c, self.memory, self.read, self.read_weights, self.usage)))


class MemoryAugmentedLearner(SequenceLearner):
    """An LSTM controller with an LRUA external memory (see the module docstring).

    Args:
        encoder: maps ``[N, *input_shape]`` to ``[N, embedding_dim]`` (see
            :class:`RecurrentLearner` on batch-statistics norms).
        embedding_dim: size of the encoder's output.
        max_ways: size of the label inputs and of the output layer.
        max_support: the longest support sequence accepted.
        hidden_size: controller units.
        n_slots: memory rows (the paper: 128).
        word_size: memory row size (the paper: 40).
        gamma: usage decay.
        shift: Santoro et al.'s one-step-late labels.
    """

    def __init__(self, encoder: nn.Module, *, embedding_dim: int, max_ways: int,
                 max_support: int, hidden_size: int = 128, n_slots: int = 32,
                 word_size: int = 32, gamma: float = 0.95, shift: bool = False) -> None:
        super().__init__(max_ways=max_ways, max_support=max_support)
        for name, value in (("embedding_dim", embedding_dim), ("hidden_size", hidden_size),
                            ("n_slots", n_slots), ("word_size", word_size)):
            check_positive_int(name, value)
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")
        self.encoder, self.shift, self.gamma = encoder, shift, gamma
        self.n_slots, self.word_size = n_slots, word_size
        self.controller = nn.LSTMCell(embedding_dim + max_ways + word_size, hidden_size)
        self.key = nn.Linear(hidden_size, word_size)
        self.strength = nn.Linear(hidden_size, 1)  # beta_t = 1 + softplus(.)
        self.gate = nn.Linear(hidden_size, 1)
        self.head = nn.Linear(hidden_size + word_size, max_ways)

    def initial_state(self, batch: int, like: Tensor) -> MemoryState:
        """Empty memory (a tiny constant, so cosine similarities are defined)."""
        zeros = like.new_zeros
        hidden = self.controller.hidden_size
        return MemoryState(zeros(batch, hidden), zeros(batch, hidden),
                           zeros(batch, self.n_slots, self.word_size) + 1e-6,
                           zeros(batch, self.word_size), zeros(batch, self.n_slots),
                           zeros(batch, self.n_slots))

    def step(self, x: Tensor, state: MemoryState) -> tuple[Tensor, MemoryState]:
        """One time step: ``x`` ``[B, embedding_dim + max_ways]`` -> ``[B, max_ways]`` logits."""
        h, c = self.controller(torch.cat([x, state.read], dim=-1), (state.h, state.c))
        key = torch.tanh(self.key(h))  # [B, word]
        beta = 1 + F.softplus(self.strength(h))  # [B, 1]
        # read first: the memory as the earlier steps left it (never the step's own entry)
        similarity = F.cosine_similarity(key[:, None, :], state.memory, dim=-1, eps=1e-8)
        read_weights = (beta * similarity).softmax(-1)  # [B, slots]
        read = (read_weights[..., None] * state.memory).sum(1)  # [B, word]
        least_used = F.one_hot(state.usage.argmin(-1), self.n_slots).to(x.dtype)  # [B, slots]
        mix = torch.sigmoid(self.gate(h))  # [B, 1]
        write = mix * state.read_weights + (1 - mix) * least_used  # [B, slots]
        memory = state.memory * (1 - least_used[..., None])  # erase the least-used slot
        memory = memory + write[..., None] * key[:, None, :]  # [B, slots, word]
        usage = self.gamma * state.usage + read_weights + write  # [B, slots]
        logits = self.head(torch.cat([h, read], dim=-1))  # [B, max_ways]
        return logits, MemoryState(h, c, memory, read, read_weights, usage)

    def _outputs(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        t, n_s, n_q = support_x.shape[0], support_x.shape[1], query_x.shape[1]
        z = self.encoder(torch.cat([support_x.flatten(0, 1), query_x.flatten(0, 1)])).flatten(1)
        zs, zq = z[: t * n_s].unflatten(0, (t, n_s)), z[t * n_s :].unflatten(0, (t, n_q))
        hidden = torch.full((t, 1), HIDDEN, dtype=support_y.dtype, device=support_y.device)
        labels = label_inputs(torch.cat([support_y, hidden], dim=1), self.max_ways,
                              shift=self.shift, dtype=z.dtype)  # [T, n_s + 1, W]
        state = self.initial_state(t, z)
        for i in range(n_s):
            _, state = self.step(torch.cat([zs[:, i], labels[:, i]], dim=-1), state)
        query_in = torch.cat([zq, labels[:, n_s:].expand(t, n_q, self.max_ways)], dim=-1)
        logits, _ = self.step(query_in.flatten(0, 1), state.repeat_interleave(n_q))
        return logits.unflatten(0, (t, n_q))  # [T, n_q, W]
