"""Parameter-based transfer: strategies, per-layer learning rates, L2-SP, LP-FT."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from companion.models import MLP, Conv4
from companion.transfer import (
    L2SP,
    DomainBatch,
    FineTuneClassifier,
    apply_strategy,
    embed,
    fit_logistic_regression,
    layers_of,
    layerwise_param_groups,
    linear_probe,
    lp_ft_head,
)

pytestmark = pytest.mark.usefixtures("torch_seed_0")  # module initialisation


def _trainable(module: nn.Module) -> set[str]:
    return {n for n, p in module.named_parameters() if p.requires_grad}


def test_layers_of_common_networks():
    assert len(layers_of(Conv4())) == 4  # the four conv blocks, through `features`
    mlp = MLP(3, (5, 4), 2)
    assert layers_of(mlp) == [mlp[0], mlp[2], mlp[4]]
    lin = nn.Linear(2, 2)
    assert layers_of(lin) == [lin]


@pytest.mark.parametrize(("strategy", "expected"), [
    ("linear_probe", {"head.weight", "head.bias"}),
    ("last_layer", {"head.weight", "head.bias", "encoder.2.weight", "encoder.2.bias"}),
    ("full", {"head.weight", "head.bias", "encoder.0.weight", "encoder.0.bias",
              "encoder.2.weight", "encoder.2.bias"}),
])
def test_strategies_freeze_the_right_parameters(strategy, expected):
    model = FineTuneClassifier(MLP(3, (4,), 5), nn.Linear(5, 2), strategy=strategy)
    assert _trainable(model) == expected


def test_unknown_strategy():
    with pytest.raises(ValueError, match="strategy"):
        apply_strategy(nn.Linear(2, 2), nn.Linear(2, 2), "half")


def test_frozen_layers_stay_in_eval_mode():
    enc = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 4))
    model = FineTuneClassifier(enc, nn.Linear(4, 2), strategy="last_layer").train()
    assert not enc[0].training and not enc[1].training and enc[2].training
    model(torch.randn(8, 3))
    torch.testing.assert_close(enc[1].running_mean, torch.zeros(4))  # statistics untouched


def test_layerwise_learning_rates_decay_with_depth():
    layers = [nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2)]
    layers[1].requires_grad_(False)
    groups = layerwise_param_groups(layers, lr=0.1, decay=0.5)
    assert [(g["depth"], g["lr"]) for g in groups] == [(0, pytest.approx(0.025)), (2, 0.1)]
    assert groups[0]["params"] == list(layers[0].parameters())
    torch.optim.SGD(groups)  # accepted by an optimiser
    model = FineTuneClassifier(MLP(3, (4,), 5), nn.Linear(5, 2))
    lrs = [g["lr"] for g in model.param_groups(lr=1.0, layer_decay=0.1)]
    assert lrs == pytest.approx([0.01, 0.1, 1.0])  # encoder layers 0, 1, then the head


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"lr": 0.0}, "lr"), ({"decay": 0.0}, "decay"), ({"decay": 1.5}, "decay")])
def test_layerwise_bad_arguments(kwargs, message):
    args = {"lr": 0.1, "decay": 0.9, **kwargs}
    with pytest.raises(ValueError, match=message):
        layerwise_param_groups([nn.Linear(2, 2)], **args)
    with pytest.raises(ValueError, match="trainable"):
        layerwise_param_groups([nn.Linear(2, 2).requires_grad_(False)], lr=0.1)


def test_l2sp_penalty_by_hand_and_its_gradient_against_autograd():
    shared = nn.Linear(2, 1)
    with torch.no_grad():
        shared.weight.copy_(torch.tensor([[1.0, -1.0]]))
        shared.bias.fill_(0.5)
    reg = L2SP(shared, alpha=0.2, beta=0.04)
    head = nn.Linear(1, 1)
    with torch.no_grad():
        head.weight.fill_(3.0)
        head.bias.fill_(-1.0)
        shared.weight.add_(torch.tensor([[0.5, 1.0]]))  # move away from the start
    assert reg(shared).item() == pytest.approx(0.5 * 0.2 * (0.25 + 1.0))
    assert reg(shared, head).item() == pytest.approx(0.5 * 0.2 * 1.25 + 0.5 * 0.04 * 10.0)
    params = list(shared.parameters()) + list(head.parameters())
    autograd = torch.autograd.grad(reg(shared, head), params)
    g_shared, g_head = reg.gradient(shared, head)
    for got, ours in zip(autograd, [*g_shared.values(), *g_head.values()], strict=True):
        torch.testing.assert_close(got, ours)
    torch.testing.assert_close(g_shared["weight"], 0.2 * torch.tensor([[0.5, 1.0]]))
    torch.testing.assert_close(g_shared["bias"], torch.zeros(1))


def test_l2sp_snapshot_is_a_copy_and_is_saved():
    net = nn.Linear(3, 2)
    reg = L2SP(net)
    with torch.no_grad():
        net.weight.zero_()
    assert not torch.equal(reg.start()["weight"], net.weight)
    clone = L2SP(nn.Linear(3, 2))
    clone.load_state_dict(reg.state_dict())
    torch.testing.assert_close(clone.start()["weight"], reg.start()["weight"])


def test_l2sp_bad_arguments():
    with pytest.raises(ValueError, match="alpha"):
        L2SP(nn.Linear(2, 2), alpha=-1.0)
    with pytest.raises(ValueError, match="beta"):
        L2SP(nn.Linear(2, 2), beta=float("nan"))
    with pytest.raises(ValueError, match="same parameter names"):
        L2SP(nn.Linear(2, 2))(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="shape"):
        L2SP(nn.Linear(2, 2))(nn.Linear(3, 2))


def _blobs(n: int = 60, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0]])
    return centres[y] + 0.5 * torch.randn(n, 2, generator=g), y


def test_linear_probe_is_logistic_regression_on_frozen_features():
    encoder = nn.Sequential(nn.Linear(2, 4), nn.Tanh())
    x, y = _blobs()
    probe = linear_probe(encoder, x, y, n_classes=3)
    reference = fit_logistic_regression(embed(encoder, x), y, n_classes=3)
    torch.testing.assert_close(probe.weight, reference.weight)
    assert (probe(embed(encoder, x)).argmax(1) == y).float().mean() > 0.9


def test_lp_ft_starts_fine_tuning_from_the_probe_head():
    encoder = nn.Sequential(nn.Linear(2, 4), nn.Tanh())
    x, y = _blobs()
    probe = linear_probe(encoder, x, y, n_classes=3)
    head = lp_ft_head(encoder, x, y, n_classes=3)
    torch.testing.assert_close(head.weight, probe.weight, rtol=0, atol=0)
    torch.testing.assert_close(head.bias, probe.bias, rtol=0, atol=0)
    model = FineTuneClassifier(encoder, head, strategy="full")
    assert all(p.requires_grad for p in model.parameters())
    before = model.training_loss(DomainBatch(x, y))[0].item()
    expected = F.cross_entropy(probe(embed(encoder, x)), y).item()
    assert before == pytest.approx(expected, rel=1e-5)  # FT's first loss is the probe's
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(5):
        loss, _ = model.training_loss(DomainBatch(x, y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.training_loss(DomainBatch(x, y))[0].item() < before
    assert not torch.equal(head.weight, probe.weight)  # the copy moved, the probe did not


def test_fine_tune_classifier_loss_includes_l2sp():
    encoder = nn.Sequential(nn.Linear(2, 4), nn.Tanh())
    reg = L2SP(encoder, alpha=1.0, beta=0.5)
    head = nn.Linear(4, 3)
    model = FineTuneClassifier(encoder, head, l2sp=reg)
    x, y = _blobs(n=9)
    loss, metrics = model.training_loss(DomainBatch(x, y))
    ce = F.cross_entropy(model(x), y)
    decay = 0.25 * (head.weight.pow(2).sum() + head.bias.pow(2).sum())
    torch.testing.assert_close(loss, ce + decay)  # the encoder has not moved yet
    torch.testing.assert_close(metrics["l2sp"], decay.detach())
    evaluation = model.evaluation_metrics(DomainBatch(x, y))
    torch.testing.assert_close(evaluation["loss"], ce.detach())
    with pytest.raises(ValueError, match="batch"):
        model.training_loss(DomainBatch(x))
