"""Architectures: hard sharing, cross-stitch (identity = independent towers), L2 coupling, MMoE."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.multitask import (
    CrossStitchNetwork,
    CrossStitchUnit,
    HardSharing,
    L2CoupledTowers,
    MMoE,
    task_gradients,
)
from tests.multitask._helpers import randn, reinit


def _stages(seed: int) -> list[nn.Module]:
    return [reinit(nn.Sequential(nn.Linear(6, 5), nn.ReLU()), seed),
            reinit(nn.Sequential(nn.Linear(5, 4), nn.Tanh()), seed + 100)]


def test_hard_sharing_outputs_and_shared_parameters():
    model = reinit(HardSharing(nn.Linear(6, 4), {"a": nn.Linear(4, 3), "b": nn.Linear(4, 1)}))
    x = randn(5, 6)
    out = model(x)
    z = model.trunk(x)
    torch.testing.assert_close(out["a"], model.heads["a"](z))
    torch.testing.assert_close(out["b"], model.heads["b"](z))
    assert list(model(x, ["b"])) == ["b"]
    assert set(model.shared_parameters()) == {"trunk.weight", "trunk.bias"}
    named = dict(model.named_parameters())
    assert all(named[n] is p for n, p in model.shared_parameters().items())


def test_cross_stitch_identity_equals_independent_towers():
    towers = {"a": _stages(1), "b": _stages(2), "c": _stages(3)}
    heads = {t: reinit(nn.Linear(4, 2), 10 + i) for i, t in enumerate(towers)}
    net = CrossStitchNetwork(towers, heads, self_weight=1.0)
    x = randn(7, 6)
    out = net(x)
    for t in towers:
        alone = heads[t](towers[t][1](towers[t][0](x)))
        torch.testing.assert_close(out[t], alone)
    # and no gradient flows from task a into the other towers
    grads = task_gradients({"a": out["a"].sum()}, dict(net.named_parameters()))
    for name, g in grads["a"].items():
        if name.startswith(("towers.b.", "towers.c.")):
            assert torch.count_nonzero(g) == 0, name


def test_cross_stitch_unit_mixes_linearly():
    unit = CrossStitchUnit(2, self_weight=0.9)
    torch.testing.assert_close(unit.alpha.detach(), torch.tensor([[0.9, 0.1], [0.1, 0.9]]))
    xa, xb = randn(3, 4, seed=1), randn(3, 4, seed=2)
    ya, yb = unit([xa, xb])
    torch.testing.assert_close(ya, 0.9 * xa + 0.1 * xb)
    torch.testing.assert_close(yb, 0.1 * xa + 0.9 * xb)
    with pytest.raises(ValueError, match="features"):
        unit([xa])
    with pytest.raises(ValueError, match="same shape"):
        unit([xa, randn(3, 5)])


def test_l2_coupling_penalty_against_a_hand_calculation():
    towers = {t: nn.Linear(2, 1, bias=False) for t in ("a", "b", "c")}
    with torch.no_grad():
        towers["a"].weight.copy_(torch.tensor([[1.0, 0.0]]))
        towers["b"].weight.copy_(torch.tensor([[0.0, 2.0]]))
        towers["c"].weight.copy_(torch.tensor([[1.0, 1.0]]))
    coupled = L2CoupledTowers(towers)
    # |a-b|^2 = 1 + 4, |a-c|^2 = 0 + 1, |b-c|^2 = 1 + 1
    penalty = coupled.coupling_penalty()
    assert float(penalty.detach()) == pytest.approx(8.0)
    penalty.backward()  # d/d a = 2(a - b) + 2(a - c) = (2, -4) + (0, -2)
    torch.testing.assert_close(towers["a"].weight.grad, torch.tensor([[2.0, -6.0]]))
    assert coupled.shared_parameters() == {}


def test_l2_coupling_selected_parameters_and_bad_towers():
    towers = {t: reinit(nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1)), i)
              for i, t in enumerate(("a", "b"))}
    coupled = L2CoupledTowers(towers, coupled=["0."])
    assert coupled.coupled == ("0.weight", "0.bias")
    expected = sum((dict(towers["a"].named_parameters())[n]
                    - dict(towers["b"].named_parameters())[n]).pow(2).sum() for n in
                   coupled.coupled)
    torch.testing.assert_close(coupled.coupling_penalty(), expected)
    with pytest.raises(ValueError, match="one architecture"):
        L2CoupledTowers({"a": nn.Linear(3, 2), "b": nn.Linear(3, 1)})
    with pytest.raises(ValueError, match="coupled"):
        L2CoupledTowers(towers, coupled=["9."])


def test_mmoe_gates_sum_to_one_and_output_is_the_gated_mixture():
    experts = [reinit(nn.Linear(6, 4), i) for i in range(3)]
    towers = {"a": reinit(nn.Linear(4, 2), 7), "b": reinit(nn.Linear(4, 1), 8)}
    model = reinit(MMoE(experts, towers, gate_in_features=6), 3)
    x = randn(5, 6)
    gates = model.gate_weights(x)
    for g in gates.values():
        assert g.shape == (5, 3) and bool((g >= 0).all())
        torch.testing.assert_close(g.sum(dim=1), torch.ones(5))
    out = model(x)
    for t in ("a", "b"):
        mix = sum(gates[t][:, e:e + 1] * experts[e](x) for e in range(3))
        torch.testing.assert_close(out[t], towers[t](mix))
    assert set(model.shared_parameters()) == {f"experts.{e}.{k}" for e in range(3)
                                              for k in ("weight", "bias")}
    with pytest.raises(ValueError, match="gate_in_features"):
        model(randn(5, 7))


def test_mismatched_heads_and_bad_task_names():
    with pytest.raises(ValueError, match="heads must have one head per tower"):
        CrossStitchNetwork({"a": _stages(1), "b": _stages(2)}, {"a": nn.Linear(4, 1)})
    with pytest.raises(ValueError, match="same number"):
        CrossStitchNetwork({"a": _stages(1), "b": _stages(2)[:1]},
                           {"a": nn.Linear(4, 1), "b": nn.Linear(4, 1)})
    with pytest.raises(ValueError, match="heads must name at least one task"):
        HardSharing(nn.Linear(2, 2), {})
    with pytest.raises(ValueError, match=r"without '\.'"):
        HardSharing(nn.Linear(2, 2), {"a.b": nn.Linear(2, 1)})
    with pytest.raises(ValueError, match="clashes"):
        HardSharing(nn.Linear(2, 2), {"train": nn.Linear(2, 1)})
    with pytest.raises(ValueError, match=r"nn\.Module"):
        HardSharing(nn.Linear(2, 2), {"a": lambda z: z})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="unknown task"):
        HardSharing(nn.Linear(2, 2), {"a": nn.Linear(2, 1)})(randn(1, 2), ["b"])
    with pytest.raises(ValueError, match="experts"):
        MMoE([], {"a": nn.Linear(2, 1)}, gate_in_features=2)
