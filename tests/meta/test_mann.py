"""The LRUA memory of the memory-augmented learner, one step checked by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from companion.meta import MemoryAugmentedLearner, MemoryState


def _mann(gate_bias: float) -> MemoryAugmentedLearner:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = MemoryAugmentedLearner(nn.Identity(), embedding_dim=3, max_ways=2, max_support=4,
                                     hidden_size=5, n_slots=3, word_size=4, gamma=0.5).double()
    with torch.no_grad():
        net.gate.weight.zero_()
        net.gate.bias.fill_(gate_bias)  # sigmoid(-50) = 2e-22: write to the least-used slot
    return net


def _state() -> MemoryState:
    g = torch.Generator().manual_seed(1)
    memory = torch.randn(1, 3, 4, generator=g, dtype=torch.float64)
    read_weights = torch.tensor([[0.2, 0.3, 0.5]], dtype=torch.float64)
    return MemoryState(torch.zeros(1, 5, dtype=torch.float64),
                       torch.zeros(1, 5, dtype=torch.float64), memory,
                       torch.randn(1, 4, generator=g, dtype=torch.float64), read_weights,
                       torch.tensor([[0.5, 0.1, 0.9]], dtype=torch.float64))


@pytest.mark.parametrize("gate_bias", [-50.0, 50.0])
def test_one_lrua_step_by_hand(gate_bias):
    net, state = _mann(gate_bias), _state()
    x = torch.tensor([[0.3, -1.0, 2.0, 1.0, 0.0]], dtype=torch.float64)
    logits, new = net.step(x, state)
    h, _ = net.controller(torch.cat([x, state.read], dim=-1), (state.h, state.c))
    key = torch.tanh(net.key(h))[0]
    # slot 1 has the least usage (0.1): it is erased; the write weights are the read weights
    # (gate open) or the least-used slot (gate closed)
    write = state.read_weights[0] if gate_bias > 0 else torch.tensor([0.0, 1.0, 0.0],
                                                                     dtype=torch.float64)
    memory = state.memory[0].clone()
    memory[1] = 0.0
    memory = memory + write[:, None] * key[None, :]
    torch.testing.assert_close(new.memory[0], memory, rtol=1e-12, atol=1e-12)
    weights = torch.stack([F.cosine_similarity(key, row, dim=0) for row in memory]).softmax(0)
    torch.testing.assert_close(new.read_weights[0], weights, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(new.read[0], weights @ memory, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(new.usage[0], 0.5 * state.usage[0] + weights + write,
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(logits, net.head(torch.cat([h, new.read], dim=-1)))


def test_gamma_must_be_a_decay():
    with pytest.raises(ValueError, match="gamma"):
        MemoryAugmentedLearner(nn.Identity(), embedding_dim=3, max_ways=2, max_support=4,
                               gamma=1.5)
