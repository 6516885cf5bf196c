"""Reptile: its update rule, the paper's Taylor expansion checked numerically, and bad input."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from companion import EpisodeSampler, fit
from companion.data import Episode, EpisodeBatch, SinusoidTasks
from companion.meta import MAML, Reptile, ReptileConfig, inner_adapt
from companion.models import MLP, Conv4
from tests.conftest import marks_dataset

TIGHT = {"rtol": 1e-9, "atol": 1e-12}


def _regression_batch(n_tasks: int = 3, n: int = 6, seed: int = 0) -> EpisodeBatch:
    batch, _ = SinusoidTasks().sample(n_tasks, n_support=n, n_query=n,
                                      generator=torch.Generator().manual_seed(seed))
    return batch.to(dtype=torch.float64)


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return MLP(1, (8, 8), 1).double()


def _flat(params: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([v.flatten() for v in params.values()])


def _loss(model: nn.Module, params: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(functional_call(model, params, (x,)), y)


def _grad(model: nn.Module, params: dict, x: torch.Tensor, y: torch.Tensor,
          create_graph: bool = False) -> torch.Tensor:
    g = torch.autograd.grad(_loss(model, params, x, y), list(params.values()),
                            create_graph=create_graph)
    return torch.cat([gi.flatten() for gi in g])


def _outer_step(reptile: Reptile, batch: EpisodeBatch) -> None:
    optimizer, _ = reptile.outer_optimizer(total_iterations=100)
    loss, _ = reptile.meta_loss(batch)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def test_k1_reptile_is_a_joint_training_sgd_step():
    """With k = 1, full-batch SGD: phi <- phi - epsilon * alpha * grad of the mean task loss."""
    model, batch = _mlp(), _regression_batch()
    alpha, eps = 0.05, 0.7
    phi = {k: v.detach().clone().requires_grad_() for k, v in model.named_parameters()}
    joint = sum(_loss(model, phi, torch.cat([sx, qx]), torch.cat([sy, qy]))
                for sx, sy, qx, qy in zip(batch.support_x, batch.support_y, batch.query_x,
                                          batch.query_y, strict=True)) / len(batch)
    grads = torch.autograd.grad(joint, list(phi.values()))
    expected = {k: (v - eps * alpha * g).detach() for (k, v), g in zip(phi.items(), grads,
                                                                       strict=True)}
    reptile = Reptile(model, inner_optimizer="sgd", inner_steps=1, inner_batch_size=None,
                      inner_lr=alpha, outer_lr=eps, task="regression")
    _outer_step(reptile, batch)
    torch.testing.assert_close(_flat(dict(model.named_parameters())).detach(),
                               _flat(expected), **TIGHT)


def _two_minibatch_task(seed: int = 0):
    """A task whose data the inner loop visits as two minibatches B1, B2 (in a known order)."""
    model = _mlp(seed)
    x = torch.linspace(-4, 4, 8, dtype=torch.float64)[:, None]
    y = 2.0 * torch.sin(x - 0.5)
    order = torch.randperm(8, generator=torch.Generator().manual_seed(seed))
    b1, b2 = order[:4], order[4:]
    return model, x, y, b1, b2


def _reptile_gradient(model, x, y, alpha, seed):
    """(phi - phi_2) / alpha after two library inner SGD steps on minibatches of 4."""
    phi = {k: v.detach() for k, v in model.named_parameters()}
    fast = inner_adapt(model, phi, x, y, loss_fn=F.mse_loss, steps=2, lr=alpha,
                       first_order=True, batch_size=4,
                       generator=torch.Generator().manual_seed(seed))
    return (_flat(phi) - _flat(fast)) / alpha


def _taylor_terms(model, x, y, b1, b2):
    """g1, g2 (minibatch gradients at phi), H2 g1 and H1 g2 (Hessian-vector products)."""
    phi = {k: v.detach().clone().requires_grad_() for k, v in model.named_parameters()}
    g1 = _grad(model, phi, x[b1], y[b1], create_graph=True)
    g2 = _grad(model, phi, x[b2], y[b2], create_graph=True)
    h2g1 = torch.cat([h.flatten() for h in torch.autograd.grad(
        g2, list(phi.values()), grad_outputs=g1.detach(), retain_graph=True)])
    h1g2 = torch.cat([h.flatten() for h in torch.autograd.grad(
        g1, list(phi.values()), grad_outputs=g2.detach(), retain_graph=True)])
    return g1.detach(), g2.detach(), h2g1, h1g2


def test_reptile_gradient_taylor_expansion():
    """g_Reptile = g1 + g2 - alpha H2 g1 + O(alpha^2) (the paper's equation for k = 2)."""
    seed = 3
    model, x, y, b1, b2 = _two_minibatch_task(seed)
    g1, g2, h2g1, _ = _taylor_terms(model, x, y, b1, b2)
    residual, first_order_residual = {}, {}
    for alpha in (4e-3, 2e-3, 1e-3):
        g = _reptile_gradient(model, x, y, alpha, seed)
        residual[alpha] = (g - (g1 + g2 - alpha * h2g1)).norm().item()
        first_order_residual[alpha] = (g - (g1 + g2)).norm().item()
    # the expansion is right to second order: halving alpha quarters the residual ...
    assert 3.5 < residual[2e-3] / residual[1e-3] < 4.5
    assert 3.5 < residual[4e-3] / residual[2e-3] < 4.5
    # ... while leaving out the AvgGradInner term leaves an error that only halves
    assert 1.8 < first_order_residual[2e-3] / first_order_residual[1e-3] < 2.2
    assert residual[1e-3] < 1e-3 * first_order_residual[1e-3] * 2


def test_expected_reptile_gradient_is_2_avggrad_minus_alpha_avggradinner():
    """Averaged over the two minibatch orders, the Reptile gradient is
    2 AvgGrad - alpha AvgGradInner + O(alpha^2), with AvgGradInner = 1/2 grad(g1 . g2)."""
    seed = 5
    model, x, y, b1, b2 = _two_minibatch_task(seed)
    phi = {k: v.detach().clone().requires_grad_() for k, v in model.named_parameters()}
    g1 = _grad(model, phi, x[b1], y[b1], create_graph=True)
    g2 = _grad(model, phi, x[b2], y[b2], create_graph=True)
    avg_grad = ((g1 + g2) / 2).detach()
    avg_grad_inner = 0.5 * torch.cat([h.flatten() for h in torch.autograd.grad(
        (g1 * g2).sum(), list(phi.values()))])
    # both orders: seeds whose first permutation puts b1 first, and one that puts b2 first
    other = next(s for s in range(100) if set(torch.randperm(
        8, generator=torch.Generator().manual_seed(s))[:4].tolist()) == set(b2.tolist()))
    residuals = []
    for alpha in (2e-3, 1e-3):
        mean_g = (_reptile_gradient(model, x, y, alpha, seed)
                  + _reptile_gradient(model, x, y, alpha, other)) / 2
        residuals.append((mean_g - (2 * avg_grad - alpha * avg_grad_inner)).norm().item())
    assert 3.5 < residuals[0] / residuals[1] < 4.5


def test_maml_and_fomaml_share_the_leading_terms():
    """MAML (1 step on B1, loss on B2): g2 - a H2 g1 - a H1 g2; FOMAML: g2 - a H2 g1 (+O(a^2))."""
    seed = 3
    model, x, y, b1, b2 = _two_minibatch_task(seed)
    _, g2, h2g1, h1g2 = _taylor_terms(model, x, y, b1, b2)
    batch = EpisodeBatch(x[b1][None], y[b1][None], x[b2][None], y[b2][None])
    names = [k for k, _ in model.named_parameters()]
    for first_order, expected_fn in ((False, lambda a: g2 - a * h2g1 - a * h1g2),
                                     (True, lambda a: g2 - a * h2g1)):
        residuals = []
        for alpha in (2e-3, 1e-3):
            maml = MAML(model, task="regression", inner_lr=alpha, first_order=first_order)
            grads = torch.autograd.grad(maml.meta_loss(batch)[0],
                                        [dict(model.named_parameters())[k] for k in names])
            g = torch.cat([gi.flatten() for gi in grads])
            residuals.append((g - expected_fn(alpha)).norm().item())
        assert 3.5 < residuals[0] / residuals[1] < 4.5, (first_order, residuals)


def test_batched_update_is_the_mean_of_serial_updates():
    batch = _regression_batch(n_tasks=4)
    batched = Reptile(_mlp(), inner_lr=0.01, outer_lr=0.5, task="regression",
                      inner_batch_size=4, seed=7)
    serial = Reptile(_mlp(), inner_lr=0.01, outer_lr=0.5, task="regression",
                     inner_batch_size=4, seed=7)
    phi = {k: v.detach().clone() for k, v in serial.params().items()}
    updates = []
    for ep in batch:  # one task at a time, each from the same phi (same minibatch stream)
        delta = serial.task_delta(torch.cat([ep.support_x, ep.query_x]),
                                  torch.cat([ep.support_y, ep.query_y]))
        updates.append({k: phi[k] + 0.5 * delta[k] for k in phi})
    _outer_step(batched, batch)
    expected = {k: torch.stack([u[k] for u in updates]).mean(0) for k in phi}
    torch.testing.assert_close(_flat({k: v.detach() for k, v in batched.params().items()}),
                               _flat(expected), **TIGHT)


@pytest.mark.parametrize("betas", [(0.0, 0.999), (0.9, 0.99)])
def test_functional_adam_matches_torch_optim_adam(betas):
    model, batch = _mlp(), _regression_batch(n_tasks=1)
    x, y = batch.support_x[0], batch.support_y[0]
    params = {k: v.detach() for k, v in model.named_parameters()}
    ours = inner_adapt(model, params, x, y, loss_fn=F.mse_loss, steps=4, lr=0.01,
                       optimizer="adam", adam_betas=betas, first_order=True)
    twin = copy.deepcopy(model)
    opt = torch.optim.Adam(twin.parameters(), lr=0.01, betas=betas, eps=1e-8)
    for _ in range(4):
        opt.zero_grad()
        F.mse_loss(twin(x), y).backward()
        opt.step()
    torch.testing.assert_close(_flat(ours), _flat(dict(twin.named_parameters())).detach(),
                               **TIGHT)


def test_minibatches_cycle_through_permutations():
    from companion.meta.inner import minibatch_rows

    stream = minibatch_rows(10, 4, torch.Generator().manual_seed(0))
    twin = torch.Generator().manual_seed(0)
    first, second = torch.randperm(10, generator=twin), torch.randperm(10, generator=twin)
    assert torch.equal(next(stream), first[:4]) and torch.equal(next(stream), first[4:8])
    assert torch.equal(next(stream), second[:4])  # 2 rows left over: a new permutation
    assert next(minibatch_rows(10, None, None)) is None  # full batches


def test_outer_learning_rate_is_annealed_linearly():
    reptile = Reptile(_mlp(), outer_lr=0.8, final_outer_lr=0.2, task="regression")
    optimizer, scheduler = reptile.outer_optimizer(total_iterations=4)
    rates = []
    for _ in range(5):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([0.8, 0.65, 0.5, 0.35, 0.2])


def test_transductive_and_non_transductive_prediction():
    torch.manual_seed(0)
    reptile = Reptile(Conv4(n_classes=3, hidden_channels=8), eval_inner_steps=2)
    ep = Episode(torch.rand(3, 1, 28, 28), torch.arange(3), torch.rand(4, 1, 28, 28),
                 torch.tensor([0, 1, 2, 0]))
    together = reptile.predict(ep)
    alone = reptile.predict(ep, transductive=False)
    fast = reptile.adapt(ep.support_x, ep.support_y, steps=2)
    manual = torch.stack([functional_call(reptile.model, fast, (
        torch.cat([ep.support_x, q[None]]),))[3] for q in ep.query_x]).detach()
    torch.testing.assert_close(alone, manual)
    assert together.shape == alone.shape == (4, 3)
    assert not torch.allclose(together, alone)  # batch statistics differ


def test_resume_is_exact_with_the_minibatch_generator(tmp_path):
    ds = marks_dataset()

    def run(iterations: int, checkpoint=None) -> dict:
        torch.manual_seed(0)
        reptile = Reptile(Conv4(n_classes=3, hidden_channels=8), inner_batch_size=3, seed=1)
        optimizer, scheduler = reptile.outer_optimizer(total_iterations=6)
        fit(reptile, EpisodeSampler(ds, n_way=3, n_shot=2, n_query=2, seed=0), optimizer,
            scheduler=scheduler, iterations=iterations, meta_batch_size=2, progress=False,
            checkpoint=checkpoint, checkpoint_every=3)
        return {k: v.detach().clone() for k, v in reptile.state_dict().items()}

    full = run(6)
    run(3, tmp_path / "ckpt.pt")
    resumed = run(6, tmp_path / "ckpt.pt")
    for k in full:
        torch.testing.assert_close(resumed[k], full[k])


@pytest.mark.slow
def test_reptile_learns_a_few_shot_classification_problem():
    ds = marks_dataset()
    torch.manual_seed(0)
    reptile = Reptile(Conv4(n_classes=3, hidden_channels=16), inner_batch_size=6,
                      inner_steps=3, inner_lr=3e-3, eval_inner_steps=20)
    optimizer, scheduler = reptile.outer_optimizer(total_iterations=150)
    fit(reptile, EpisodeSampler(ds, n_way=3, n_shot=2, n_query=2, seed=0), optimizer,
        scheduler=scheduler, iterations=150, meta_batch_size=4, progress=False)
    test = EpisodeSampler(ds, n_way=3, n_shot=1, n_query=5, seed=1)
    accs = [(reptile.predict(e).argmax(1) == e.query_y).float().mean()
            for e in (test.sample() for _ in range(30))]
    assert torch.stack(accs).mean() > 0.9


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"inner_steps": 0}, "k >= 1"), ({"inner_steps": -2}, "inner_steps"),
    ({"outer_lr": 0.0}, r"\(0, 1\]"), ({"outer_lr": 1.5}, r"\(0, 1\]"),
    ({"outer_lr": -0.1}, r"\(0, 1\]"), ({"final_outer_lr": 2.0}, "final_outer_lr"),
    ({"inner_lr": 0.0}, "inner_lr"), ({"inner_optimizer": "rmsprop"}, "inner_optimizer"),
    ({"inner_batch_size": 0}, "inner_batch_size"), ({"eval_inner_steps": 0}, "eval_inner"),
    ({"task": "ranking"}, "task"),
])
def test_bad_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ReptileConfig(**kwargs)
    with pytest.raises(ValueError, match=message):
        Reptile(_mlp(), **kwargs)


def test_bad_calls():
    reptile = Reptile(_mlp(), task="regression")
    with pytest.raises(ValueError, match="EpisodeBatch"):
        reptile.meta_loss(_regression_batch()[0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="total_iterations"):
        reptile.outer_optimizer(0)
    with pytest.raises(ValueError, match="steps"):
        reptile.adapt(torch.rand(3, 1), torch.rand(3, 1), steps=-1)
    with pytest.raises(ValueError, match="generator"):
        inner_adapt(reptile.model, reptile.params(), torch.rand(4, 1, dtype=torch.float64),
                    torch.rand(4, 1, dtype=torch.float64), loss_fn=F.mse_loss, steps=1,
                    lr=0.1, batch_size=2)
    with pytest.raises(ValueError, match="optimizer"):
        inner_adapt(reptile.model, reptile.params(), torch.rand(4, 1), torch.rand(4, 1),
                    loss_fn=F.mse_loss, steps=1, lr=0.1, optimizer="lbfgs")
    with pytest.raises(ValueError, match="no parameters"):
        Reptile(nn.ReLU())


def test_evaluation_does_not_touch_the_training_generator():
    torch.manual_seed(0)
    reptile = Reptile(Conv4(n_classes=3, hidden_channels=8), eval_inner_steps=3,
                      eval_inner_batch_size=2)
    ep = Episode(torch.rand(6, 1, 28, 28), torch.arange(3).repeat(2), torch.rand(3, 1, 28, 28),
                 torch.arange(3))
    state = reptile.generator.get_state()
    first = reptile.predict(ep)
    assert torch.equal(reptile.generator.get_state(), state)
    torch.testing.assert_close(reptile.predict(ep), first)  # same weights, same prediction


def test_running_statistics_are_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="running statistics"):
        Reptile(Conv4(n_classes=3, norm="batch"))
    with pytest.raises(ValueError, match="running statistics"):
        MAML(Conv4(n_classes=3, norm="batch"))


def test_second_order_through_adam_is_refused():
    model = _mlp()
    with pytest.raises(ValueError, match="first_order=True"):
        inner_adapt(model, dict(model.named_parameters()), torch.rand(4, 1, dtype=torch.float64),
                    torch.rand(4, 1, dtype=torch.float64), loss_fn=F.mse_loss, steps=1, lr=0.1,
                    optimizer="adam")


def test_persistent_adam_state_matches_torch_adam_continued_across_tasks():
    """Two tasks in a row, weights reset to phi between them, Adam statistics kept: the
    functional Adam with one AdamMoments equals one torch.optim.Adam used throughout."""
    from companion.meta.functional import AdamMoments

    model, batch = _mlp(), _regression_batch(n_tasks=2)
    phi = {k: v.detach().clone() for k, v in model.named_parameters()}
    state = AdamMoments.zeros_like(phi)
    ours = [inner_adapt(model, phi, batch.support_x[i], batch.support_y[i], loss_fn=F.mse_loss,
                        steps=3, lr=0.01, optimizer="adam", first_order=True, adam_state=state)
            for i in range(2)]
    assert state.t == 6
    twin = copy.deepcopy(model)
    opt = torch.optim.Adam(twin.parameters(), lr=0.01, betas=(0.0, 0.999), eps=1e-8)
    for i in range(2):
        with torch.no_grad():
            for name, p in twin.named_parameters():
                p.copy_(phi[name])  # reset the weights, keep the optimiser's statistics
        for _ in range(3):
            opt.zero_grad()
            F.mse_loss(twin(batch.support_x[i]), batch.support_y[i]).backward()
            opt.step()
        torch.testing.assert_close(_flat(ours[i]), _flat(dict(twin.named_parameters()))
                                   .detach(), **TIGHT)


def test_reptile_training_advances_the_inner_statistics_and_evaluation_does_not():
    torch.manual_seed(0)
    reptile = Reptile(Conv4(n_classes=3, hidden_channels=8), inner_steps=2,
                      inner_batch_size=None, eval_inner_steps=4)
    assert any(k.startswith("inner_adam_v__") for k in reptile.state_dict())  # checkpointed
    batch = EpisodeBatch.stack([Episode(torch.rand(3, 1, 28, 28), torch.arange(3),
                                        torch.rand(3, 1, 28, 28), torch.arange(3))] * 2)
    reptile.meta_loss(batch)
    assert int(reptile.inner_adam_t) == 4  # 2 tasks x 2 steps
    before = {k: v.clone() for k, v in reptile.state_dict().items()}
    reptile.predict(batch[0])
    for k, v in reptile.state_dict().items():
        torch.testing.assert_close(v, before[k])
