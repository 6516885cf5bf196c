"""MAML's meta-gradients against independent references, closed forms and finite differences.

Float64 throughout where gradients are compared, so that tolerances can be tight enough to
catch small systematic errors (like the 0.4-4% error of nn.BatchNorm under vmap).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from companion import Conv4, EpisodeSampler
from companion.data import Episode, EpisodeBatch, SinusoidTasks
from companion.meta.maml import MAML, MAMLConfig, adaptation_curve
from companion.meta.reference import naive_maml_loss
from companion.models import MLP
from tests.conftest import marks_dataset

TIGHT = {"rtol": 1e-9, "atol": 1e-12}


def _image_batch(n_tasks: int = 3, n_way: int = 5, shots: int = 1, queries: int = 3,
                 seed: int = 0) -> EpisodeBatch:
    g = torch.Generator().manual_seed(seed)
    return EpisodeBatch(
        torch.rand(n_tasks, n_way * shots, 1, 28, 28, generator=g, dtype=torch.float64),
        torch.arange(n_way).repeat_interleave(shots).repeat(n_tasks, 1),
        torch.rand(n_tasks, n_way * queries, 1, 28, 28, generator=g, dtype=torch.float64),
        torch.arange(n_way).repeat_interleave(queries).repeat(n_tasks, 1),
    )


def _conv4(seed: int = 1, norm: str = "batch_stats") -> nn.Module:
    torch.manual_seed(seed)
    return Conv4(n_classes=5, norm=norm, hidden_channels=16).double()


def _grads(model: nn.Module, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    names, params = zip(*model.named_parameters(), strict=True)
    return dict(zip(names, torch.autograd.grad(loss, params, allow_unused=True), strict=True))


def _assert_grads_close(a: dict, b: dict, **tol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], **tol, msg=lambda m, k=k: f"{k}: {m}")


@pytest.mark.parametrize("first_order", [False, True])
def test_meta_gradient_equals_the_naive_implementation(first_order):
    net, batch = _conv4(), _image_batch()
    maml = MAML(net, inner_lr=0.4, inner_steps=2, first_order=first_order, batching="loop")
    ours = _grads(net, maml.meta_loss(batch)[0])
    naive = _grads(net, naive_maml_loss(net, batch, inner_lr=0.4, inner_steps=2,
                                        loss_fn=F.cross_entropy, first_order=first_order))
    _assert_grads_close(ours, naive, rtol=1e-5, atol=1e-8)  # the bar: 1e-5
    _assert_grads_close(ours, naive, **TIGHT)  # and in fact far tighter


@pytest.mark.parametrize("first_order", [False, True])
def test_vmap_equals_loop(first_order):
    net, batch = _conv4(), _image_batch(n_tasks=4)
    loop = MAML(net, inner_steps=2, first_order=first_order, batching="loop")
    batched = MAML(net, inner_steps=2, first_order=first_order, batching="vmap")
    loss_l, metrics_l = loop.meta_loss(batch)
    loss_v, metrics_v = batched.meta_loss(batch)
    torch.testing.assert_close(loss_v, loss_l, **TIGHT)
    torch.testing.assert_close(metrics_v["accuracy"], metrics_l["accuracy"])
    _assert_grads_close(_grads(net, loss_v), _grads(net, loss_l), **TIGHT)


def test_the_batchnorm_trap_is_real_and_caught():
    """F.batch_norm with batch statistics under vmap: wrong 2nd-order, right 1st-order grads.

    This documents the torch 2.13 behaviour that makes MAML refuse batching='vmap' for models
    with nn.BatchNorm layers (and why Conv4 uses BatchStatNorm2d). If a PyTorch upgrade fixes
    it, this test fails and the guard can go.
    """
    net = _conv4(norm="batch")
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.track_running_stats, m.running_mean, m.running_var = False, None, None
    batch = _image_batch(n_tasks=4)
    errors = {}
    for first_order in (False, True):
        maml = MAML(net, inner_steps=2, first_order=first_order, batching="loop")
        loop = _grads(net, maml.meta_loss(batch)[0])
        losses, _ = vmap(maml._task_loss, in_dims=(None, 0, 0, 0, 0))(
            maml.params(), batch.support_x, batch.support_y, batch.query_x, batch.query_y)
        forced = _grads(net, losses.mean())
        flat = [torch.cat([g[k].flatten() for k in loop]) for g in (loop, forced)]
        errors[first_order] = ((flat[1] - flat[0]).norm() / flat[0].norm()).item()
    assert errors[False] > 1e-4, "second-order error under vmap (the trap)"
    assert errors[True] < 1e-12, "first-order is unaffected"
    with pytest.raises(ValueError, match="BatchNorm"):
        MAML(net, batching="vmap")
    assert MAML(net).batching_for(batch) == "loop"  # auto never picks vmap here


def test_first_order_is_second_order_without_the_hessian_term():
    net, batch = _conv4(), _image_batch()
    fo = MAML(net, inner_lr=0.4, inner_steps=2, first_order=True)
    ours = _grads(net, fo.meta_loss(batch)[0])
    # independent: adapt with detached gradients, then the gradient at the adapted weights
    expected = {k: torch.zeros_like(p) for k, p in net.named_parameters()}
    for sx, sy, qx, qy in zip(batch.support_x, batch.support_y, batch.query_x, batch.query_y,
                              strict=True):
        fast = {k: p.detach().clone() for k, p in net.named_parameters()}
        for _ in range(2):
            fast = {k: v.requires_grad_() for k, v in fast.items()}
            g = torch.autograd.grad(F.cross_entropy(functional_call(net, fast, (sx,)), sy),
                                    list(fast.values()))
            fast = {k: (v - 0.4 * gk).detach() for (k, v), gk in zip(fast.items(), g,
                                                                      strict=True)}
        fast = {k: v.requires_grad_() for k, v in fast.items()}
        g = torch.autograd.grad(F.cross_entropy(functional_call(net, fast, (qx,)), qy),
                                list(fast.values()))
        for k, gk in zip(fast, g, strict=True):
            expected[k] += gk / len(batch)
    _assert_grads_close(ours, expected, **TIGHT)
    second = _grads(net, MAML(net, inner_lr=0.4, inner_steps=2).meta_loss(batch)[0])
    assert any((second[k] - ours[k]).abs().max() > 1e-6 for k in ours), "the term is not zero"


def test_linear_regression_closed_form():
    """One inner step on squared loss: the meta-gradient is (I - 2a/n X'X) 2/m Xq'(Xq w' - yq)."""
    torch.manual_seed(0)
    d, n, m, alpha = 4, 6, 5, 0.05
    model = nn.Linear(d, 1, bias=False).double()
    X, y = torch.randn(n, d, dtype=torch.float64), torch.randn(n, 1, dtype=torch.float64)
    Xq, yq = torch.randn(m, d, dtype=torch.float64), torch.randn(m, 1, dtype=torch.float64)
    batch = EpisodeBatch(X[None], y[None], Xq[None], yq[None])
    maml = MAML(model, task="regression", inner_lr=alpha, inner_steps=1)
    ours = _grads(model, maml.meta_loss(batch)[0])["weight"].T  # [d, 1]
    w = model.weight.detach().T  # [d, 1]
    A = torch.eye(d, dtype=torch.float64) - 2 * alpha / n * X.T @ X
    w_adapted = A @ w + 2 * alpha / n * X.T @ y
    expected = A.T @ (2 / m * Xq.T @ (Xq @ w_adapted - yq))
    torch.testing.assert_close(ours, expected, **TIGHT)


def test_finite_differences_on_a_tiny_network():
    torch.manual_seed(0)
    model = MLP(1, (4,), 1).double()
    batch, _ = SinusoidTasks().sample(2, n_support=5, n_query=4,
                                      generator=torch.Generator().manual_seed(0))
    batch = batch.to(dtype=torch.float64)
    maml = MAML(model, task="regression", inner_lr=0.05, inner_steps=2)
    names = [k for k, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().flatten() for p in model.parameters()]).requires_grad_()

    def meta_loss(vector: torch.Tensor) -> torch.Tensor:
        chunks = vector.split([s.numel() for s in shapes])
        params = {k: c.view(s) for k, c, s in zip(names, chunks, shapes, strict=True)}
        return maml.meta_loss(batch, params=params)[0]

    assert torch.autograd.gradcheck(meta_loss, (flat,), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("variant", [{}, {"first_order": True}, {"adapt": "head"},
                                     {"learn_inner_lr": True}])
def test_gradients_reach_every_meta_parameter(variant):
    net = _conv4()
    maml = MAML(net, inner_steps=1, **variant)
    maml.meta_loss(_image_batch())[0].backward()
    for name, p in maml.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient for {name}"
    if variant.get("learn_inner_lr"):
        assert len(list(maml.inner_lrs.parameters())) == len(list(net.parameters()))


def test_anil_adapts_only_the_head():
    net = _conv4()
    maml = MAML(net, adapt="head")
    assert maml.adapt_names == ("head.weight", "head.bias")
    batch = _image_batch()
    fast = maml.adapt(batch.support_x[0], batch.support_y[0], steps=2)
    params = maml.params()
    assert all(fast[k] is params[k] for k in params if not k.startswith("head."))
    assert not torch.equal(fast["head.weight"], params["head.weight"])


def test_meta_sgd_with_fixed_rates_equals_maml():
    """Meta-SGD's learned rates, at their initial value, reproduce MAML exactly."""
    net, batch = _conv4(), _image_batch()
    plain = _grads(net, MAML(net, inner_lr=0.3, inner_steps=2).meta_loss(batch)[0])
    metasgd = MAML(net, inner_lr=0.3, inner_steps=2, learn_inner_lr=True)
    loss = metasgd.meta_loss(batch)[0]
    _assert_grads_close({k: v for k, v in _grads(net, loss).items()}, plain, **TIGHT)


def test_predict_adapts_with_eval_steps_and_keeps_no_graph():
    net = _conv4()
    maml = MAML(net, eval_inner_steps=3)
    ep = _image_batch()[0]
    logits = maml.predict(ep)
    assert logits.shape == (15, 5) and not logits.requires_grad
    fast = maml.adapt(ep.support_x, ep.support_y, steps=3)
    torch.testing.assert_close(logits, maml(ep.query_x, fast).detach())
    assert not torch.equal(maml.predict(ep, steps=0), logits)


def test_auto_batching_rule():
    maml = MAML(_conv4())
    assert maml.batching_for(_image_batch(queries=1)) == "vmap"  # 5 queries per task on CPU
    assert maml.batching_for(_image_batch(queries=15)) == "loop"  # 75 queries per task on CPU


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"inner_steps": 0}, "inner_steps"), ({"inner_steps": -1}, "inner_steps"),
    ({"inner_lr": 0.0}, "inner_lr"), ({"inner_lr": -0.1}, "inner_lr"),
    ({"inner_lr": float("nan")}, "inner_lr"), ({"eval_inner_steps": 0}, "eval_inner_steps"),
    ({"adapt": "body"}, "adapt"), ({"batching": "gpu"}, "batching"), ({"task": "rank"}, "task"),
])
def test_bad_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MAMLConfig(**kwargs)
    with pytest.raises(ValueError, match=message):
        MAML(_conv4(), **kwargs)


def test_bad_models_params_and_batches():
    with pytest.raises(ValueError, match="no parameters under 'head'"):
        MAML(MLP(1, (4,), 1), adapt="head")
    maml = MAML(_conv4())
    params = maml.params()
    with pytest.raises(ValueError, match="missing"):
        maml.adapt(torch.rand(5, 1, 28, 28), torch.arange(5),
                   params={k: v for k, v in params.items() if k != "head.bias"})
    wrong = {**params, "head.bias": torch.zeros(7, dtype=torch.float64)}
    with pytest.raises(ValueError, match="wrong shapes"):
        maml.adapt(torch.rand(5, 1, 28, 28), torch.arange(5), params=wrong)
    with pytest.raises(ValueError, match="steps"):
        maml.adapt(torch.rand(5, 1, 28, 28), torch.arange(5), steps=-1)
    batch = _image_batch()
    with pytest.raises(ValueError, match="EpisodeBatch"):
        maml.meta_loss(batch[0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="float targets"):
        maml.meta_loss(EpisodeBatch(torch.rand(1, 2, 1), torch.rand(1, 2, 1),
                                    torch.rand(1, 2, 1), torch.rand(1, 2, 1)))
    small = EpisodeBatch(torch.rand(2, 5, 1, 20, 20, dtype=torch.float64), batch.support_y[:2],
                         torch.rand(2, 15, 1, 20, 20, dtype=torch.float64), batch.query_y[:2])
    with pytest.raises(ValueError, match="expected"):
        maml.meta_loss(small)  # episodes of 20x20 images for a 28x28 model
    with pytest.raises(ValueError, match="max_steps"):
        adaptation_curve(maml, batch, -1)


@pytest.mark.slow
def test_maml_learns_sinusoids():
    torch.manual_seed(0)
    maml = MAML(MLP(1, (40, 40), 1), task="regression", inner_lr=0.01, inner_steps=1)
    opt = torch.optim.Adam(maml.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    tasks = SinusoidTasks()
    test, _ = tasks.sample(100, n_support=10, n_query=10, generator=torch.Generator()
                           .manual_seed(99))
    before = adaptation_curve(maml, test, 1).mean(0)
    for _ in range(600):
        batch, _ = tasks.sample(25, n_support=10, n_query=10, generator=g)
        loss, _ = maml.meta_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = adaptation_curve(maml, test, 1).mean(0)
    assert after[1] < 0.5 * before[1], (before, after)
    assert after[1] < after[0], "one adaptation step must help after meta-training"


@pytest.mark.slow
def test_maml_learns_a_few_shot_classification_problem():
    """Classes marked by a bright pixel at a class-specific spot: meta-learnable in seconds."""
    ds = marks_dataset()
    torch.manual_seed(0)
    maml = MAML(Conv4(n_classes=3, hidden_channels=16), inner_lr=0.4)
    sampler = EpisodeSampler(ds, n_way=3, n_shot=1, n_query=2, seed=0)
    opt = torch.optim.Adam(maml.parameters(), lr=3e-3)
    for _ in range(150):
        loss, _ = maml.meta_loss(sampler.sample_batch(4))
        opt.zero_grad()
        loss.backward()
        opt.step()
    test = EpisodeSampler(ds, n_way=3, n_shot=1, n_query=5, seed=1)
    accs = [(maml.predict(test.sample()).argmax(1) == torch.arange(3).repeat_interleave(5))
            .float().mean() for _ in range(30)]
    assert torch.stack(accs).mean() > 0.9


def test_episode_predict_on_regression():
    maml = MAML(MLP(1, (8,), 1), task="regression", inner_lr=0.01)
    ep = Episode(torch.rand(5, 1), torch.rand(5, 1), torch.rand(3, 1), torch.rand(3, 1))
    assert maml.predict(ep).shape == (3, 1)


def test_adaptation_curve_matches_step_by_step_adaptation():
    torch.manual_seed(0)
    maml = MAML(MLP(1, (8,), 1).double(), task="regression", inner_lr=0.05)
    batch, _ = SinusoidTasks().sample(3, n_support=5, n_query=4,
                                      generator=torch.Generator().manual_seed(0))
    batch = batch.to(dtype=torch.float64)
    curve = adaptation_curve(maml, batch, 3)
    assert curve.shape == (3, 4)
    for t, ep in enumerate(batch):
        for k in range(4):
            fast = maml.adapt(ep.support_x, ep.support_y, steps=k)
            expected = F.mse_loss(maml(ep.query_x, fast), ep.query_y)
            torch.testing.assert_close(curve[t, k], expected.detach(), **TIGHT)
    accuracy = adaptation_curve(MAML(_conv4()), _image_batch(), 2)
    assert accuracy.shape == (3, 3) and ((0 <= accuracy) & (accuracy <= 1)).all()
