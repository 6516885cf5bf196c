"""DANN: the warm-start schedule, the discriminator and the domain-adversarial loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from companion.transfer import DomainAdversarialLoss, DomainDiscriminator, dann_coefficient


def test_schedule_formula_and_shape():
    assert dann_coefficient(0.0) == 0.0
    assert dann_coefficient(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert dann_coefficient(1.0, max_value=0.3) == pytest.approx(0.3 * (2 / (1 + math.exp(-10))
                                                                         - 1))
    values = [dann_coefficient(p / 10) for p in range(11)]
    assert values == sorted(values) and values[-1] < 1.0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"progress": -0.1}, "progress"), ({"progress": 1.5}, "progress"),
    ({"gamma": 0.0}, "gamma"), ({"max_value": -1.0}, "max_value"),
])
def test_schedule_bad_arguments(kwargs, message):
    args = {"progress": 0.5, **kwargs}
    with pytest.raises(ValueError, match=message):
        dann_coefficient(**args)


def test_discriminator_shapes_and_bad_sizes():
    d = DomainDiscriminator(6, (8, 4))
    assert d(torch.randn(5, 6)).shape == (5,)
    with pytest.raises(ValueError, match="hidden"):
        DomainDiscriminator(6, (0,))


def _linear_loss(coefficient: float = 1.0) -> DomainAdversarialLoss:
    disc = nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))
    with torch.no_grad():
        disc[0].weight.copy_(torch.tensor([[1.0, -2.0]]))
        disc[0].bias.fill_(0.5)
    return DomainAdversarialLoss(disc, coefficient=coefficient)


def test_loss_value_by_hand():
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[2.0, 2.0]])
    loss = _linear_loss()(s, t)
    logit_s = torch.tensor([1.5, -1.5])
    logit_t = torch.tensor([-1.5])
    expected = 0.5 * (F.softplus(logit_s).mean() + F.softplus(-logit_t).mean())
    torch.testing.assert_close(loss, expected)


def test_features_get_the_reversed_scaled_gradient_and_the_discriminator_the_plain_one():
    s = torch.randn(4, 2, generator=torch.Generator().manual_seed(0), requires_grad=True)
    t = torch.randn(3, 2, generator=torch.Generator().manual_seed(1), requires_grad=True)
    adv = _linear_loss(coefficient=0.3)
    adv(s, t).backward()
    reference = _linear_loss()
    s2, t2 = s.detach().requires_grad_(True), t.detach().requires_grad_(True)
    reference.loss_from_logits(reference.discriminator(s2), reference.discriminator(t2)
                               ).backward()
    torch.testing.assert_close(s.grad, -0.3 * s2.grad)
    torch.testing.assert_close(t.grad, -0.3 * t2.grad)
    torch.testing.assert_close(adv.discriminator[0].weight.grad,
                               reference.discriminator[0].weight.grad)


def test_domain_accuracy_is_balanced():
    acc = DomainAdversarialLoss.domain_accuracy(torch.tensor([-1.0, 1.0]), torch.tensor([1.0]))
    assert acc.item() == pytest.approx(0.75)


def test_bad_input_and_coefficient():
    adv = DomainAdversarialLoss(DomainDiscriminator(3, (4,)))
    with pytest.raises(ValueError, match="same feature size"):
        adv(torch.randn(2, 3), torch.randn(2, 4))
    with pytest.raises(ValueError, match="target"):
        adv(torch.randn(2, 3), torch.randn(0, 3))
    with pytest.raises(ValueError, match="coefficient"):
        adv.coefficient = -1.0
    with pytest.raises(ValueError, match="coefficient"):
        DomainAdversarialLoss(DomainDiscriminator(3), coefficient=-0.5)
    bad = DomainAdversarialLoss(nn.Linear(3, 2))  # [n, 2] instead of [n] logits
    with pytest.raises(ValueError, match="logits"):
        bad(torch.randn(2, 3), torch.randn(2, 3))
