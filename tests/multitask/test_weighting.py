"""Loss weighting: equal weights, uncertainty optimum, DWA formula, GradNorm step."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from companion.multitask import (
    DynamicWeightAverage,
    EqualWeighting,
    GradNorm,
    UncertaintyWeighting,
)


def _losses(**values):
    return {t: torch.tensor(v, dtype=torch.float32) for t, v in values.items()}


def test_equal_weighting_is_the_sum():
    assert float(EqualWeighting(["a", "b", "c"]).combine(_losses(a=1.0, b=2.5, c=0.5))) == 4.0


@pytest.mark.parametrize(("kind", "factor"), [("regression", 1.0), ("classification", 2.0)])
def test_uncertainty_optimum_is_sigma2_equal_to_the_loss(kind, factor):
    """Regression: minimising L/(2 s2) + log(s2)/2 gives s2 = L; classification: s2 = 2 L."""
    losses = _losses(a=0.3, b=4.0)
    weighting = UncertaintyWeighting({"a": kind, "b": kind})
    opt = torch.optim.Adam(weighting.parameters(), lr=0.05)
    for _ in range(1500):
        opt.zero_grad()
        weighting.combine(losses).backward()
        opt.step()
    var = weighting.variances()
    assert float(var["a"]) == pytest.approx(factor * 0.3, rel=1e-3)
    assert float(var["b"]) == pytest.approx(factor * 4.0, rel=1e-3)
    # and the gradient vanishes exactly there
    with torch.no_grad():
        weighting.log_variance.copy_(torch.log(factor * torch.tensor([0.3, 4.0])))
    weighting.zero_grad()
    weighting.combine(losses).backward()
    torch.testing.assert_close(weighting.log_variance.grad, torch.zeros(2), atol=1e-6, rtol=0)


def test_uncertainty_formula_mixed_kinds():
    weighting = UncertaintyWeighting({"r": "regression", "c": "classification"})
    with torch.no_grad():
        weighting.log_variance.copy_(torch.tensor([math.log(2.0), math.log(0.5)]))
    total = weighting.combine(_losses(r=3.0, c=1.0))
    # r: 3 / (2 * 2) + log(sqrt 2);  c: 1 / 0.5 + log(sqrt 0.5)
    expected = 3 / 4 + 0.5 * math.log(2.0) + 1 / 0.5 + 0.5 * math.log(0.5)
    assert float(total.detach()) == pytest.approx(expected)
    assert {t: float(w) for t, w in weighting.weights().items()} == pytest.approx(
        {"r": 0.25, "c": 2.0})


def test_dwa_weights_against_the_formula():
    dwa = DynamicWeightAverage(["a", "b", "c"], temperature=2.0)
    history = [(3.0, 2.0, 1.0), (2.4, 1.9, 1.1), (1.2, 1.8, 1.0)]
    for i, step in enumerate(history):
        if i < 2:  # the first two epochs weight every task 1
            assert dwa.weights() == {"a": 1.0, "b": 1.0, "c": 1.0}
        dwa.observe(_losses(a=step[0], b=step[1], c=step[2]))
    # now r_k = L_k(t-1) / L_k(t-2) with the last two epochs
    r = [h1 / h0 for h0, h1 in zip(history[1], history[2], strict=True)]
    e = [math.exp(v / 2.0) for v in r]
    expected = [3 * v / sum(e) for v in e]
    got = dwa.weights()
    assert [got["a"], got["b"], got["c"]] == pytest.approx(expected)
    total = dwa.combine(_losses(a=1.0, b=2.0, c=3.0))
    assert float(total) == pytest.approx(expected[0] + 2 * expected[1] + 3 * expected[2], rel=1e-6)


def test_dwa_period_averages_the_steps():
    dwa = DynamicWeightAverage(["a", "b"], temperature=1.0, period=2)
    for a, b in [(4.0, 1.0), (2.0, 1.0), (1.0, 1.0), (2.0, 1.0), (9.0, 9.0)]:
        dwa.observe(_losses(a=a, b=b))
    # epochs: (3, 1) and (1.5, 1); the fifth step is an unfinished epoch
    r = [1.5 / 3.0, 1.0]
    e = [math.exp(v) for v in r]
    got = dwa.weights()
    assert [got["a"], got["b"]] == pytest.approx([2 * e[0] / sum(e), 2 * e[1] / sum(e)])
    state = dwa.state_dict()  # the history travels in checkpoints
    fresh = DynamicWeightAverage(["a", "b"], temperature=1.0, period=2)
    fresh.load_state_dict(state)
    assert fresh.weights() == got


class _TwoLosses(nn.Module):
    """A shared "layer" W (2 numbers) and two losses with gradient norms 3 and |W[1]|."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, 1.0]))

    def losses(self, offset_a: float, offset_b: float) -> dict[str, torch.Tensor]:
        return {"a": 3 * self.w[0] + offset_a, "b": self.w[1] ** 2 / 2 + offset_b}


def test_gradnorm_weight_update_against_a_hand_computed_step():
    model = _TwoLosses()
    gradnorm = GradNorm(["a", "b"], alpha=1.5)
    opt = torch.optim.SGD(gradnorm.parameters(), lr=0.1)
    # step 1: L(0) = (8, 1.5) is recorded; all ratios 1; G = (3, 1); target = (2, 2)
    total = gradnorm.backward(model.losses(5.0, 1.0), [model.w])
    assert float(total) == pytest.approx(8 + 1.5)
    torch.testing.assert_close(gradnorm.weights.grad, torch.tensor([3.0, -1.0]))
    torch.testing.assert_close(model.w.grad, torch.tensor([3.0, 1.0]))  # sum_i w_i grad L_i
    opt.step()
    gradnorm.renormalise()
    w = [0.7 * 2 / 1.8, 1.1 * 2 / 1.8]
    torch.testing.assert_close(gradnorm.weights.detach(), torch.tensor(w))
    # step 2: L = (4, 0.875): Ltilde = (0.5, 0.5833), r = Ltilde / mean, target = mean(G) r^1.5
    opt.zero_grad()
    model.zero_grad()
    gradnorm.backward(model.losses(1.0, 0.375), [model.w])
    ltilde = [4 / 8, 0.875 / 1.5]
    r = [v / (sum(ltilde) / 2) for v in ltilde]
    g = [w[0] * 3.0, w[1] * 1.0]
    target = [(sum(g) / 2) * v**1.5 for v in r]
    grad = [math.copysign(1.0, g[i] - target[i]) * [3.0, 1.0][i] for i in range(2)]
    torch.testing.assert_close(gradnorm.weights.grad, torch.tensor(grad))
    torch.testing.assert_close(model.w.grad, torch.tensor([3.0 * w[0], 1.0 * w[1]]))
    opt.step()
    gradnorm.renormalise()
    new = [w[i] - 0.1 * grad[i] for i in range(2)]
    new = [2 * v / sum(new) for v in new]
    torch.testing.assert_close(gradnorm.weights.detach(), torch.tensor(new))
    assert float(gradnorm.weights.detach().sum()) == pytest.approx(2.0)


def test_gradnorm_balance_loss_is_zero_when_balanced():
    model = _TwoLosses()
    gradnorm = GradNorm(["a", "b"], alpha=0.0)
    losses = {"a": 3 * model.w[0], "b": 3 * model.w[1]}  # equal gradient norms
    assert float(gradnorm.balance_loss(losses, [model.w]).detach()) == pytest.approx(0.0)


@pytest.mark.parametrize("make", [
    lambda: EqualWeighting(["a", "b"]),
    lambda: UncertaintyWeighting({"a": "regression", "b": "classification"}),
    lambda: DynamicWeightAverage(["a", "b"]),
])
def test_bad_losses_name_the_argument(make):
    weighting = make()
    with pytest.raises(ValueError, match="losses must have exactly one entry per task"):
        weighting.combine(_losses(a=1.0))
    with pytest.raises(ValueError, match="losses must have exactly one entry per task"):
        weighting.combine(_losses(a=1.0, b=1.0, c=1.0))
    with pytest.raises(ValueError, match="losses must name at least one task"):
        weighting.combine({})
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match=r"losses\['b'\] is not finite"):
            weighting.combine(_losses(a=1.0, b=bad))
    with pytest.raises(ValueError, match="scalar"):
        weighting.combine({"a": torch.ones(2), "b": torch.tensor(1.0)})


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="tasks must name at least one task"):
        EqualWeighting([])
    with pytest.raises(ValueError, match="distinct"):
        DynamicWeightAverage(["a", "a"])
    with pytest.raises(ValueError, match="temperature"):
        DynamicWeightAverage(["a"], temperature=0.0)
    with pytest.raises(ValueError, match=r"kinds\['a'\]"):
        UncertaintyWeighting({"a": "ranking"})
    with pytest.raises(ValueError, match="alpha"):
        GradNorm(["a"], alpha=-1.0)
    gradnorm = GradNorm(["a", "b"])
    w = nn.Parameter(torch.ones(1))
    with pytest.raises(ValueError, match="losses must have exactly one entry per task"):
        gradnorm.backward({"a": w.sum()}, [w])
    with pytest.raises(ValueError, match="layer"):
        gradnorm.backward({"a": w.sum(), "b": w.sum()}, [])


def test_gradnorm_refuses_a_zero_first_loss():
    model = _TwoLosses()
    with pytest.raises(ValueError, match="L_i\\(0\\)"):
        GradNorm(["a", "b"]).backward({"a": 0 * model.w[0], "b": model.w[1]}, [model.w])
