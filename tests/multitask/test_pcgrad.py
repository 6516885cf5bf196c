"""PCGrad against hand calculations and its two defining identities."""

from __future__ import annotations

import pytest
import torch

from companion.multitask import PCGrad, gradient_dot, project_conflicting


def _g(**vectors):
    return {t: {"w": torch.tensor(v, dtype=torch.float64)} for t, v in vectors.items()}


def test_no_conflict_leaves_gradients_unchanged():
    grads = _g(a=[1.0, 2.0, 0.0], b=[0.5, 0.0, 1.0], c=[0.0, 1.0, 3.0])  # pairwise dots >= 0
    projected = project_conflicting(grads, generator=torch.Generator().manual_seed(0))
    for t in grads:
        torch.testing.assert_close(projected[t]["w"], grads[t]["w"])
    combined = PCGrad(seed=0).combine(grads, {})
    torch.testing.assert_close(combined.shared["w"], torch.tensor([1.5, 3.0, 4.0],
                                                                  dtype=torch.float64))


def test_conflicting_gradient_is_projected_orthogonal_to_the_other():
    grads = _g(a=[3.0, -1.0, 2.0], b=[-2.0, 1.0, 0.5])
    assert gradient_dot(grads["a"], grads["b"]) < 0
    projected = project_conflicting(grads, generator=torch.Generator().manual_seed(0))
    assert gradient_dot(projected["a"], grads["b"]).item() == pytest.approx(0.0, abs=1e-12)
    assert gradient_dot(projected["b"], grads["a"]).item() == pytest.approx(0.0, abs=1e-12)


def test_two_tasks_against_a_hand_calculation():
    # g1 = (1, 0), g2 = (-1, 1): <g1, g2> = -1 < 0.
    # g1' = g1 - (-1 / 2) g2 = (0.5, 0.5);  g2' = g2 - (-1 / 1) g1 = (0, 1);  sum = (0.5, 1.5)
    grads = _g(a=[1.0, 0.0], b=[-1.0, 1.0])
    combined = PCGrad(seed=3).combine(grads, {})
    torch.testing.assert_close(combined.shared["w"], torch.tensor([0.5, 1.5], dtype=torch.float64))
    assert {t: float(w) for t, w in combined.loss_weights.items()} == {"a": 1.0, "b": 1.0}


def test_order_comes_from_the_generator():
    grads = _g(a=[1.0, 0.0], b=[-1.0, 2.0], c=[-1.0, -0.1])
    runs = [project_conflicting(grads, generator=torch.Generator().manual_seed(s))["a"]["w"]
            for s in range(8)]
    again = project_conflicting(grads, generator=torch.Generator().manual_seed(5))["a"]["w"]
    torch.testing.assert_close(again, runs[5])  # same seed, same result
    assert any(not torch.allclose(runs[0], r) for r in runs)  # the order matters here
    rng_state = torch.random.get_rng_state()
    project_conflicting(grads, generator=torch.Generator().manual_seed(0))
    assert torch.equal(rng_state, torch.random.get_rng_state())  # global RNG untouched


def test_pcgrad_needs_explicit_randomness():
    with pytest.raises(ValueError, match="generator"):
        PCGrad()
