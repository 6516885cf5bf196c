"""MAML's execution levers leave the meta-gradient unchanged (float64, against meta_loss).

backward_chunk (training_step back-propagates a few tasks at a time), batched_first_step
(the first inner step of all tasks in one vmap call), the documented ``auto`` rule, the
shared-label one-liner and the positional Conv-4 loader.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.data import EpisodeBatch
from companion.meta.maml import (
    MAML,
    VMAP_MAX_QUERIES_ON_CPU,
    VMAP_MAX_QUERIES_PER_TASK_ON_CPU,
    MAMLConfig,
)
from companion.models import Conv4
from companion.models.conv4 import load_state_dict_by_position

TOL = 1e-10


def _net(seed: int = 0) -> Conv4:
    return Conv4(n_classes=3, hidden_channels=4, image_size=16, seed=seed).double()


def _batch(n_tasks: int = 5, shots: int = 1, queries: int = 2, seed: int = 0) -> EpisodeBatch:
    g = torch.Generator().manual_seed(seed)
    sy = torch.arange(3).repeat_interleave(shots)  # [n_support], shared by every task
    qy = torch.arange(3).repeat_interleave(queries)  # [n_query]
    return EpisodeBatch(
        torch.randn(n_tasks, len(sy), 1, 16, 16, generator=g, dtype=torch.float64),
        sy.expand(n_tasks, -1),
        torch.randn(n_tasks, len(qy), 1, 16, 16, generator=g, dtype=torch.float64),
        qy.expand(n_tasks, -1),
    )


def _meta_grad(maml: MAML, batch: EpisodeBatch) -> list[torch.Tensor]:
    loss, _ = maml.meta_loss(batch)
    return list(torch.autograd.grad(loss, list(maml.parameters())))


def _assert_close(got: list[torch.Tensor], want: list[torch.Tensor]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == torch.float64
        torch.testing.assert_close(g, w, rtol=0, atol=TOL)


@pytest.mark.parametrize(("chunk", "options"), [
    (None, {}), (1, {}), (2, {}), (9, {}), (2, {"first_order": True}),
    (2, {"learn_inner_lr": True}),
])
def test_training_step_chunks_give_the_full_meta_gradient(chunk, options):
    batch = _batch(n_tasks=5)
    reference = MAML(_net(), batching="loop", inner_steps=2, **options)
    want = _meta_grad(reference, batch)
    want_loss, want_metrics = reference.meta_loss(batch)
    maml = MAML(_net(), batching="loop", inner_steps=2, backward_chunk=chunk, **options)
    opt = torch.optim.SGD(maml.parameters(), lr=0.0)  # keeps the weights, leaves .grad
    loss, metrics = maml.training_step(batch, opt)
    _assert_close([p.grad for p in maml.parameters()], want)
    torch.testing.assert_close(loss, want_loss.detach(), rtol=0, atol=TOL)
    torch.testing.assert_close(metrics["accuracy"], want_metrics["accuracy"], rtol=0,
                               atol=TOL)
    assert not loss.requires_grad


def test_training_step_steps_every_optimiser_once():
    batch = _batch(n_tasks=4)
    maml = MAML(_net(), batching="loop", backward_chunk=3)
    grads = _meta_grad(MAML(_net(), batching="loop"), batch)
    before = [p.detach().clone() for p in maml.parameters()]
    params = list(maml.parameters())
    opts = (torch.optim.SGD(params[:2], lr=0.1), torch.optim.SGD(params[2:], lr=0.1))
    for p in params:  # stale gradients must be cleared, not accumulated
        p.grad = torch.ones_like(p)
    maml.training_step(batch, opts)
    for p, b, g in zip(params, before, grads, strict=True):
        torch.testing.assert_close(p.detach(), b - 0.1 * g, rtol=0, atol=TOL)


def test_training_step_refuses_non_finite_loss_before_stepping():
    maml = MAML(_net(), batching="loop", backward_chunk=2)
    with torch.no_grad():
        maml.model.head.weight.fill_(float("nan"))
    opt = torch.optim.SGD(maml.parameters(), lr=0.1)
    bias = maml.model.head.bias.detach().clone()
    with pytest.raises(RuntimeError, match="loss became"):
        maml.training_step(_batch(), opt)
    torch.testing.assert_close(maml.model.head.bias.detach(), bias)


def test_training_step_rejects_a_non_optimiser():
    with pytest.raises(ValueError, match="optimizer"):
        MAML(_net()).training_step(_batch(), "adam")


@pytest.mark.parametrize("options", [
    {"inner_steps": 1}, {"inner_steps": 2}, {"inner_steps": 2, "first_order": True},
    {"adapt": "head"}, {"learn_inner_lr": True, "inner_steps": 2},
])
def test_batched_first_step_gives_the_loop_meta_gradient(options):
    batch = _batch(n_tasks=4, shots=2)
    want = _meta_grad(MAML(_net(), batching="loop", **options), batch)
    maml = MAML(_net(), batching="loop", batched_first_step=True, **options)
    _assert_close(_meta_grad(maml, batch), want)
    loop_loss, loop_m = MAML(_net(), batching="loop", **options).meta_loss(batch)
    loss, m = maml.meta_loss(batch)
    torch.testing.assert_close(loss, loop_loss, rtol=0, atol=TOL)
    torch.testing.assert_close(m["accuracy"], loop_m["accuracy"], rtol=0, atol=TOL)


def test_batched_first_step_keeps_per_task_batch_statistics():
    # Two tasks whose inputs differ by a per-task affine shift: with per-task statistics the
    # first BatchStatNorm2d normalises each task on its own, so pooled statistics would
    # give another meta-gradient. The loop path computes per-task statistics by construction.
    batch = _batch(n_tasks=2, shots=2)
    shifted = EpisodeBatch(batch.support_x * torch.tensor([1.0, 5.0], dtype=torch.float64)
                           .view(2, 1, 1, 1, 1) + torch.tensor([0.0, 3.0], dtype=torch.float64)
                           .view(2, 1, 1, 1, 1), batch.support_y, batch.query_x, batch.query_y)
    want = _meta_grad(MAML(_net(), batching="loop"), shifted)
    got = _meta_grad(MAML(_net(), batching="loop", batched_first_step=True), shifted)
    _assert_close(got, want)


def test_batched_first_step_refuses_native_batchnorm():
    net = Conv4(n_classes=3, hidden_channels=4, image_size=16, norm="none")
    net.features[0][1] = nn.BatchNorm2d(4, track_running_stats=False)
    with pytest.raises(ValueError, match="batched_first_step"):
        MAML(net, batched_first_step=True)


@pytest.mark.parametrize(("name", "value"), [("backward_chunk", 0), ("backward_chunk", 1.5),
                                             ("batched_first_step", 1)])
def test_lever_options_are_checked(name, value):
    with pytest.raises(ValueError, match=name):
        MAMLConfig(**{name: value})


def test_auto_rule_counts_queries_per_task_over_all_classes():
    assert VMAP_MAX_QUERIES_ON_CPU == VMAP_MAX_QUERIES_PER_TASK_ON_CPU == 10
    maml = MAML(_net())
    # 3-way with 3 queries per class: 9 per task, vmap; 4 per class: 12 per task, loop
    assert maml.batching_for(_batch(queries=3)) == "vmap"
    assert maml.batching_for(_batch(queries=4)) == "loop"


def test_shared_labels_expand_without_copying():
    batch = _batch(n_tasks=3)
    assert batch.support_y.stride(0) == 0  # the documented one-liner is a view
    per_task = EpisodeBatch(batch.support_x, batch.support_y.clone(), batch.query_x,
                            batch.query_y.clone())
    maml = MAML(_net(), batching="loop")
    _assert_close(_meta_grad(maml, batch), _meta_grad(maml, per_task))


def _sequential_conv4(n_classes: int, channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c_in in (1, channels, channels, channels):
        layers += [nn.Conv2d(c_in, channels, 3, padding=1), nn.BatchNorm2d(channels),
                   nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels, n_classes))


def test_load_state_dict_by_position_from_a_flat_sequential():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        theirs = _sequential_conv4(3, 4).double()
        for m in theirs.modules():  # non-trivial norm weights, so a mix-up would show
            if isinstance(m, nn.BatchNorm2d):
                nn.init.uniform_(m.weight, 0.5, 1.5)
                nn.init.uniform_(m.bias, -0.5, 0.5)
    ours = _net(seed=1)
    load_state_dict_by_position(ours, theirs.state_dict())
    x = torch.randn(6, 1, 16, 16, generator=torch.Generator().manual_seed(0),
                    dtype=torch.float64)
    theirs.train()  # BatchNorm2d in training mode uses batch statistics, as BatchStatNorm2d
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-12)


def test_load_state_dict_by_position_names_mismatches():
    with pytest.raises(ValueError, match="tensors to copy"):
        load_state_dict_by_position(_net(), {"0.weight": torch.zeros(4, 1, 3, 3)})
    wrong = Conv4(n_classes=2, hidden_channels=4, image_size=16).state_dict()
    with pytest.raises(ValueError, match=r"head\.weight"):
        load_state_dict_by_position(_net(), wrong)


class _Tasks:
    """A data source for fit: fresh random tasks from its own generator."""

    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def sample_batch(self, n: int) -> EpisodeBatch:
        return _batch(n_tasks=n, seed=int(torch.randint(0, 2**31, (1,),
                                                        generator=self.generator)))


def test_fit_uses_training_step_and_chunks_change_nothing():
    from companion import fit

    trained = []
    for chunk in (None, 2):
        maml = MAML(_net(), batching="loop", backward_chunk=chunk)
        opt = torch.optim.SGD(maml.parameters(), lr=0.1)
        history = fit(maml, _Tasks(seed=3), opt, iterations=2, meta_batch_size=3,
                      progress=False)
        assert len(history.loss) == 2 and "accuracy" in history.metrics
        trained.append([p.detach().clone() for p in maml.parameters()])
    _assert_close(trained[1], trained[0])
