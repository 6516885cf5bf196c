"""The learned optimiser: gradient preprocessing (closed forms), the problem families
(independent references), the unroll and its meta-gradient (finite differences), truncated
training, and the SGD/Adam baselines (hand-written gradient descent)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from companion.meta import (
    LSTMOptimizer,
    LSTMOptimizerConfig,
    MLPFamily,
    ProblemSampler,
    QuadraticFamily,
    QuadraticProblems,
    baseline_curve,
    optimizer_curves,
    preprocess_gradients,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _optimizer(**kw: object) -> LSTMOptimizer:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return LSTMOptimizer(LSTMOptimizerConfig(**kw)).double()  # type: ignore[arg-type]


# ---------------------------------------------------------------- preprocessing


def test_preprocessing_closed_forms():
    e = math.exp
    grad = torch.tensor([1.0, -e(-5), 1e-6, 0.0, -2e-5, e(10)], dtype=torch.float64)
    expected = torch.tensor([[0.0, 1.0],  # log(1) / 10, sign
                             [-0.5, -1.0],  # log(e^-5) / 10
                             [-1.0, e(10) * 1e-6],  # below e^-10: (-1, e^p g)
                             [-1.0, 0.0],
                             [-1.0, -2e-5 * e(10)],
                             [1.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(preprocess_gradients(grad), expected, rtol=1e-12, atol=1e-12)
    assert preprocess_gradients(torch.zeros(2, 3)).shape == (2, 3, 2)


def test_preprocessing_is_continuous_at_the_threshold():
    threshold = math.exp(-10)
    below = preprocess_gradients(torch.tensor([threshold * (1 - 1e-9)], dtype=torch.float64))
    above = preprocess_gradients(torch.tensor([threshold * (1 + 1e-9)], dtype=torch.float64))
    torch.testing.assert_close(below, above, rtol=0, atol=1e-8)


# ---------------------------------------------------------------- problems


def test_quadratic_loss_matches_numpy():
    problems = QuadraticFamily(dim=4, n_rows=3).sample(2, generator=_gen(), dtype=torch.float64)
    theta = torch.randn(2, 4, generator=_gen(1), dtype=torch.float64)
    for b in range(2):
        W, y, t = (v[b].numpy() for v in (problems.W, problems.y, theta))
        expected = np.sum((W @ t - y) ** 2)
        assert problems.loss(theta)[b].item() == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="theta"):
        problems.loss(torch.zeros(2, 5, dtype=torch.float64))


def test_mlp_problem_loss_matches_an_nn_module_with_the_same_weights():
    family = MLPFamily(in_dim=3, hidden=5, n_classes=4, n_examples=7)
    problems = family.sample(2, generator=_gen(), dtype=torch.float64)
    assert problems.theta0.shape == (2, family.n_params) and family.n_params == 5 * 4 + 4 * 6
    for b in range(2):
        net = nn.Sequential(nn.Linear(3, 5), nn.Sigmoid(), nn.Linear(5, 4)).double()
        nn.utils.vector_to_parameters(problems.theta0[b], net.parameters())  # W1, b1, W2, b2
        expected = nn.functional.cross_entropy(net(problems.x[b]), problems.labels[b])
        torch.testing.assert_close(problems.loss(problems.theta0)[b], expected,
                                   rtol=1e-12, atol=0)
    assert problems.labels.min() >= 0 and problems.labels.max() < 4


def test_problem_sampler_is_seeded():
    a = ProblemSampler.of(QuadraticFamily(), seed=3).sample_batch(2)
    b = ProblemSampler.of(QuadraticFamily(), generator=_gen(3)).sample_batch(2)
    assert isinstance(a, QuadraticProblems) and isinstance(b, QuadraticProblems)
    assert torch.equal(a.W, b.W) and torch.equal(a.theta0, b.theta0)


# ---------------------------------------------------------------- unroll and meta-gradient


def test_unroll_records_every_loss_and_the_update_rule():
    opt = _optimizer()
    problems = QuadraticFamily(dim=3, n_rows=4).sample(2, generator=_gen(), dtype=torch.float64)
    result = opt.unroll(problems, 3)
    assert result.losses.shape == (4, 2)
    torch.testing.assert_close(result.losses[0], problems.loss(problems.theta0), rtol=0, atol=0)
    torch.testing.assert_close(result.meta_loss(), result.losses[1:].sum(0).mean())
    # one step by hand: theta_1 = theta_0 + m(grad f(theta_0))
    theta = problems.theta0.clone().requires_grad_()
    (grad,) = torch.autograd.grad(problems.loss(theta).sum(), theta)
    update, _ = opt(grad, opt.initial_state(grad))
    first = opt.unroll(problems, 1)
    torch.testing.assert_close(first.theta, problems.theta0 + update, rtol=1e-12, atol=1e-12)


def _meta_loss_at(opt: LSTMOptimizer, problems: QuadraticProblems, direction: list[torch.Tensor],
                  eps: float) -> float:
    params = list(opt.parameters())
    with torch.no_grad():
        for p, d in zip(params, direction, strict=True):
            p.add_(eps * d)
        value = opt.unroll(problems, 3).meta_loss().item()
        for p, d in zip(params, direction, strict=True):
            p.sub_(eps * d)
    return value


def test_second_order_meta_gradient_of_a_3_step_unroll_matches_finite_differences():
    opt = _optimizer(second_order=True)
    problems = QuadraticFamily(dim=3, n_rows=3).sample(2, generator=_gen(), dtype=torch.float64)
    opt.zero_grad()
    opt.unroll(problems, 3).meta_loss().backward()
    g = torch.Generator().manual_seed(5)
    for _ in range(3):  # three random directions through every parameter
        direction = [torch.randn(p.shape, generator=g, dtype=torch.float64)
                     for p in opt.parameters()]
        analytic = sum((p.grad * d).sum() for p, d in zip(opt.parameters(), direction,
                                                          strict=True))
        eps = 1e-6
        numeric = (_meta_loss_at(opt, problems, direction, eps)
                   - _meta_loss_at(opt, problems, direction, -eps)) / (2 * eps)
        assert float(analytic) == pytest.approx(numeric, rel=1e-6, abs=1e-8)


def test_first_order_meta_gradient_drops_the_second_derivatives():
    """The paper's default differs from the exact gradient (so the flag does something)."""
    problems = QuadraticFamily(dim=3, n_rows=3).sample(2, generator=_gen(), dtype=torch.float64)
    grads = []
    for second_order in (False, True):
        opt = _optimizer(second_order=second_order)
        opt.unroll(problems, 3).meta_loss().backward()
        grads.append(torch.cat([p.grad.flatten() for p in opt.parameters()]))
    assert not torch.allclose(grads[0], grads[1])
    assert torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0) > 0


# ---------------------------------------------------------------- training and baselines


def test_training_step_makes_one_meta_update_per_truncation():
    opt = _optimizer(unroll=7, truncation=3)
    meta = torch.optim.SGD(opt.parameters(), lr=1e-3)
    steps = []
    meta.register_step_post_hook(lambda *_: steps.append(1))
    before = [p.detach().clone() for p in opt.parameters()]
    problems = QuadraticFamily(dim=3).sample(2, generator=_gen(), dtype=torch.float64)
    loss, metrics = opt.training_step(problems, meta)
    assert len(steps) == 3  # 3 + 3 + 1 steps
    assert loss.ndim == 0 and torch.isfinite(loss) and set(metrics) == {"final_loss"}
    assert any(not torch.equal(a, b) for a, b in zip(before, opt.parameters(), strict=True))
    opt.training_step(problems, (meta,))  # the engine passes a tuple of optimisers
    assert len(steps) == 6
    with pytest.raises(ValueError, match="optimizer"):
        opt.training_step(problems, (meta, meta))


def test_sgd_baseline_is_gradient_descent_by_hand():
    problems = QuadraticFamily(dim=3, n_rows=4).sample(2, generator=_gen(), dtype=torch.float64)
    curve = baseline_curve(problems, "sgd", 0.01, 5)
    theta = problems.theta0.clone()
    for t in range(6):
        torch.testing.assert_close(curve[t], problems.loss(theta), rtol=1e-12, atol=1e-12)
        residual = torch.einsum("bmn,bn->bm", problems.W, theta) - problems.y
        theta = theta - 0.01 * 2 * torch.einsum("bmn,bm->bn", problems.W, residual)


def test_optimizer_curves_run_everyone_on_the_same_problems():
    problems = MLPFamily().sample(3, generator=_gen(), dtype=torch.float64)
    curves = optimizer_curves(problems, _optimizer(), steps=4, sgd_lrs=(0.1, 1.0),
                              adam_lrs=(0.01,))
    assert list(curves) == ["learned", "sgd lr=0.1", "sgd lr=1", "adam lr=0.01"]
    start = problems.loss(problems.theta0)
    for curve in curves.values():
        assert curve.shape == (5, 3)
        torch.testing.assert_close(curve[0], start)
    assert (curves["sgd lr=1"][-1] < start).all()  # the baselines really optimise


def test_bad_input_raises():
    problems = QuadraticFamily(dim=3).sample(2, generator=_gen())
    opt = LSTMOptimizer()
    with pytest.raises(ValueError, match="theta"):
        opt.unroll(problems, 2, theta=torch.full((2, 3), float("nan")))
    with pytest.raises(ValueError, match="steps"):
        opt.unroll(problems, 0)
    with pytest.raises(ValueError, match="truncation"):
        LSTMOptimizerConfig(truncation=0)
    with pytest.raises(ValueError, match="output_scale"):
        LSTMOptimizerConfig(output_scale=-1.0)
    with pytest.raises(ValueError, match="name"):
        baseline_curve(problems, "rmsprop", 0.1, 3)
    with pytest.raises(ValueError, match="lr"):
        baseline_curve(problems, "sgd", float("nan"), 3)
    with pytest.raises(ValueError, match="n_classes"):
        MLPFamily(n_classes=1)
    diverging = LSTMOptimizer(LSTMOptimizerConfig(output_scale=1e30))
    with pytest.raises(ValueError, match="NaN or inf"):
        diverging.unroll(problems, 5, meta=False)


@pytest.mark.slow
def test_a_few_meta_updates_make_the_optimiser_useful_on_held_out_quadratics():
    """15 training batches (20-step unrolls) take the loss after 20 steps on 64 unseen
    quadratics from 105 (untrained: the updates are noise) to 10 (SGD lr=0.01: 3.7; it passes
    SGD after about 60 batches)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        opt = LSTMOptimizer(LSTMOptimizerConfig(unroll=20, truncation=20))
    meta = torch.optim.Adam(opt.parameters(), lr=1e-2)
    held_out = QuadraticFamily().sample(64, generator=_gen(123))
    before = opt.unroll(held_out, 20, meta=False).losses[-1].mean()
    sampler = ProblemSampler.of(QuadraticFamily(), seed=0)
    for _ in range(15):
        opt.training_step(sampler.sample_batch(16), meta)
    after = opt.unroll(held_out, 20, meta=False).losses[-1].mean()
    assert after < 0.2 * before, (before, after)


# ---------------------------------------------------------------- several processes


def test_training_step_all_reduces_before_every_meta_update(monkeypatch):
    """training_step averages the meta-gradients over processes (a no-op with one process)
    right before each step: the update is SGD on exactly the gradient it all-reduced, and
    that gradient is the meta-gradient of the truncation computed independently."""
    import companion.meta.learned_optimizer as module

    opt = _optimizer(hidden_size=6, unroll=4, truncation=2)
    reference = _optimizer(hidden_size=6, unroll=4, truncation=2)
    seen: list[list[torch.Tensor]] = []

    def recording(parameters):
        params = list(parameters)
        assert {id(p) for p in params} == {id(p) for p in opt.parameters()}
        module_all_reduce(params)
        seen.append([p.grad.detach().clone() for p in params])

    module_all_reduce = module.all_reduce_gradients
    monkeypatch.setattr(module, "all_reduce_gradients", recording)
    problems = QuadraticFamily(dim=3).sample(2, generator=_gen(), dtype=torch.float64)
    before = [p.detach().clone() for p in opt.parameters()]
    opt.training_step(problems, torch.optim.SGD(opt.parameters(), lr=0.1))
    assert len(seen) == 2  # one all-reduce per truncation
    first, _ = reference.meta_loss(problems, steps=2)  # the first truncation, by hand
    expected = torch.autograd.grad(first, list(reference.parameters()))
    for got, want in zip(seen[0], expected, strict=True):
        torch.testing.assert_close(got, want)
    second = [p.detach().clone() for p in opt.parameters()]
    # SGD after two truncations: theta - lr * (g1 + g2), each g what was all-reduced
    for b, a, g1, g2 in zip(before, second, seen[0], seen[1], strict=True):
        torch.testing.assert_close(a, b - 0.1 * (g1 + g2))


@pytest.mark.slow
def test_two_processes_train_the_optimiser_as_one_on_all_problems(tmp_path):
    """Two gloo processes, each with two of four quadratics, end one training_step with the
    parameters of one process that saw all four (float64, up to summation order)."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    from tests.meta.dist_lstm_worker import LR, optimiser, problems

    worker = Path(__file__).with_name("dist_lstm_worker.py")
    root = Path(__file__).resolve().parents[2]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    procs = []
    for r in (0, 1):
        env = {**os.environ, "WORLD_SIZE": "2", "RANK": str(r), "LOCAL_RANK": str(r),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": str(root)}
        procs.append(subprocess.Popen([sys.executable, str(worker), str(tmp_path / "p.pt")],
                                      env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT))
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out.decode()[-3000:]
    two = torch.load(tmp_path / "p.pt", weights_only=True)
    one = optimiser()
    one.training_step(problems(), torch.optim.SGD(one.parameters(), lr=LR))
    start = optimiser().state_dict()
    assert any(not torch.equal(v, start[k]) for k, v in one.state_dict().items())  # it trained
    for name, value in one.state_dict().items():
        torch.testing.assert_close(two[name], value, rtol=1e-10, atol=1e-12)
