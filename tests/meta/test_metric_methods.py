"""Prototypical, Matching and Relation networks: the papers' identities, label handling, and
that each method learns."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from companion import EpisodeSampler, evaluate, fit
from companion.data import Episode
from companion.meta import (
    MatchingNetwork,
    PrototypicalNetwork,
    RelationNetwork,
    class_prototypes,
    relation_module,
    remap_labels,
)
from companion.models import Conv4
from tests.conftest import marks_dataset

TIGHT = {"rtol": 1e-9, "atol": 1e-12}


def _vectors(n_way: int = 4, shots: int = 3, queries: int = 5, d: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    sx = torch.randn(n_way * shots, d, generator=g, dtype=torch.float64)
    sy = torch.arange(n_way).repeat_interleave(shots)
    qx = torch.randn(queries, d, generator=g, dtype=torch.float64)
    return sx, sy, qx


# ------------------------------------------------------------------ Prototypical networks


def test_protonet_is_a_linear_classifier_with_weights_2c_and_bias_minus_c_squared():
    sx, sy, qx = _vectors()
    scores = PrototypicalNetwork(nn.Identity())(sx, sy, qx)  # -||x - c_k||^2
    c = class_prototypes(sx, sy, 4)
    linear = qx @ (2 * c).T - (c * c).sum(1)  # w_k = 2 c_k, b_k = -||c_k||^2
    # the two differ by -||x||^2, the same for every class: identical softmax and arg-max
    torch.testing.assert_close(scores - linear, -(qx * qx).sum(1, keepdim=True).expand(-1, 4),
                               **TIGHT)
    torch.testing.assert_close(scores.softmax(1), linear.softmax(1), **TIGHT)


def test_protonet_is_invariant_to_the_order_of_the_support_set():
    sx, sy, qx = _vectors()
    perm = torch.randperm(len(sy), generator=torch.Generator().manual_seed(1))
    net = PrototypicalNetwork(nn.Identity())
    torch.testing.assert_close(net(sx, sy, qx), net(sx[perm], sy[perm], qx), **TIGHT)


def test_with_one_shot_the_prototypes_are_the_embeddings():
    sx, sy, qx = _vectors(shots=1)
    scores = PrototypicalNetwork(nn.Identity())(sx, sy, qx)
    torch.testing.assert_close(scores, -torch.cdist(qx, sx) ** 2, **TIGHT)


def test_protonet_cosine_option():
    sx, sy, qx = _vectors(shots=1)
    scores = PrototypicalNetwork(nn.Identity(), distance="cosine")(sx, sy, qx)
    cos = F.cosine_similarity(qx[:, None], sx[None], dim=-1)
    torch.testing.assert_close(scores, cos - 1, **TIGHT)


# ------------------------------------------------------------------ Matching networks


@pytest.mark.parametrize("fce", [False, True])
def test_matching_attention_rows_sum_to_one(fce):
    sx, sy, qx = (t.float() if t.is_floating_point() else t for t in _vectors())
    net = MatchingNetwork(nn.Identity(), embedding_dim=6, fce=fce)
    a = net.attention(sx, qx)
    assert a.shape == (5, 12) and (a >= 0).all()
    torch.testing.assert_close(a.sum(1), torch.ones(5))
    scores = net(sx, sy, qx)
    torch.testing.assert_close(scores.exp().sum(1), torch.ones(5))  # log-probabilities


def test_matching_with_one_shot_is_a_cosine_nearest_neighbour_rule():
    """One example per class: the class with the largest attention is the most cosine-similar
    support example, whatever the vector lengths (a Euclidean rule would disagree here)."""
    support = torch.tensor([[1.0, 0.0], [0.0, 1.0], [10.0, 10.0]])
    query = torch.tensor([[0.9, 0.1], [0.1, 0.3], [3.0, 2.5]])
    net = MatchingNetwork(nn.Identity(), scale=1.0)
    scores = net(support, torch.tensor([0, 1, 2]), query)
    cos = F.normalize(query, dim=1) @ F.normalize(support, dim=1).T
    assert scores.argmax(1).tolist() == cos.argmax(1).tolist() == [0, 1, 2]
    assert torch.cdist(query, support).argmin(1).tolist() == [0, 1, 0]  # Euclid disagrees
    torch.testing.assert_close(scores.exp(), cos.softmax(1))  # a one-hot support: p = a


def test_fce_makes_embeddings_depend_on_the_support_set_and_trains():
    sx, sy, qx = (t.float() if t.is_floating_point() else t for t in _vectors())
    torch.manual_seed(0)
    net = MatchingNetwork(nn.Identity(), embedding_dim=6, fce=True)
    g1, _ = net.embed(sx, qx)
    g2, _ = net.embed(sx[:6], qx)
    assert not torch.allclose(g1[:6], g2)  # same examples, different context
    loss, _ = net.episode_loss(Episode(sx, sy, qx, torch.tensor([0, 1, 2, 3, 0])))
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


# ------------------------------------------------------------------ Relation networks


def test_relation_scores_lie_in_0_1_with_the_right_shape():
    torch.manual_seed(0)
    net = RelationNetwork()
    scores = net(torch.rand(10, 1, 28, 28), torch.arange(5).repeat_interleave(2),
                 torch.rand(7, 1, 28, 28))
    assert scores.shape == (7, 5) and ((0 <= scores) & (scores <= 1)).all()
    assert net.encoder(torch.rand(2, 1, 28, 28)).shape == (2, 64, 7, 7)


def test_relation_network_on_a_hand_computed_case():
    """1-d features, a linear relation module: r = sigmoid(w1 * sum_of_shots + w2 * q + b)."""
    linear = nn.Linear(2, 1).double()
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[0.5, -1.0]]))
        linear.bias.fill_(0.25)
    net = RelationNetwork(encoder=nn.Identity(),
                          relation=nn.Sequential(nn.Flatten(), linear, nn.Sigmoid()))
    support = torch.tensor([1.0, 3.0, -2.0], dtype=torch.float64).view(3, 1, 1, 1)
    labels = torch.tensor([0, 0, 1])  # class 0 has two shots: its feature is 1 + 3 = 4
    query = torch.tensor([2.0], dtype=torch.float64).view(1, 1, 1, 1)
    scores = net(support, labels, query)
    expected = torch.sigmoid(torch.tensor([[0.5 * 4 - 2 + 0.25, 0.5 * -2 - 2 + 0.25]],
                                          dtype=torch.float64))
    torch.testing.assert_close(scores, expected, **TIGHT)
    loss = net.loss(scores, torch.tensor([0]))
    torch.testing.assert_close(loss, ((expected - torch.tensor([[1.0, 0.0]],
                                                               dtype=torch.float64)) ** 2).mean())


# ------------------------------------------------------------------ the shared interface


@pytest.mark.parametrize("make", [
    lambda: PrototypicalNetwork(nn.Identity()),
    lambda: MatchingNetwork(nn.Identity()),
    lambda: RelationNetwork(nn.Identity(), nn.Sequential(nn.Flatten(), nn.Linear(12, 1),
                                                         nn.Sigmoid())),
])
def test_labels_of_any_values_are_remapped_never_assumed(make):
    torch.manual_seed(0)
    net = make()
    sx, sy, qx = (t.float() if t.is_floating_point() else t for t in _vectors(shots=2))
    sx4 = sx.view(-1, 6, 1, 1)
    qx4 = qx.view(-1, 6, 1, 1)
    original = torch.tensor([40, 7, 13, 2]).repeat_interleave(2)  # not 0..3, not sorted
    scores = net(sx4, original, qx4)
    order = torch.argsort(torch.tensor([40, 7, 13, 2]))  # columns follow sorted labels
    torch.testing.assert_close(scores, net(sx4, sy, qx4)[:, order])
    assert net.classes_of(original).tolist() == [2, 7, 13, 40]
    torch.testing.assert_close(net.fit_support(sx4, original).score(qx4), scores)


def test_a_query_label_absent_from_the_support_raises():
    with pytest.raises(ValueError, match=r"query labels \[5\] do not occur"):
        remap_labels(torch.tensor([1, 1, 3]), torch.tensor([3, 5, 1]))
    classes, support, query = remap_labels(torch.tensor([9, 4, 9]), torch.tensor([4, 9]))
    assert classes.tolist() == [4, 9] and support.tolist() == [1, 0, 1]
    assert query.tolist() == [0, 1]


def test_interface_errors():
    net = PrototypicalNetwork(nn.Identity())
    with pytest.raises(ValueError, match="fit_support"):
        net.score(torch.rand(2, 3))
    with pytest.raises(ValueError, match="labels"):
        net(torch.rand(3, 2), torch.tensor([0, 1]), torch.rand(2, 2))
    with pytest.raises(ValueError, match="differ in shape"):
        net(torch.rand(2, 2), torch.tensor([0, 1]), torch.rand(2, 3))
    with pytest.raises(ValueError, match="integer"):
        net(torch.rand(2, 2), torch.tensor([0.0, 1.0]), torch.rand(2, 2))
    with pytest.raises(ValueError, match="embedding_dim"):
        MatchingNetwork(nn.Identity(), fce=True)
    with pytest.raises(ValueError, match="fce_steps"):
        MatchingNetwork(nn.Identity(), fce_steps=0)
    with pytest.raises(ValueError, match="scale"):
        MatchingNetwork(nn.Identity(), scale=0.0)
    with pytest.raises(ValueError, match="feature_size"):
        relation_module(feature_size=3)
    with pytest.raises(ValueError, match="pool"):
        Conv4(pool=(True, False))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="head"):
        Conv4(n_classes=5, flatten=False)


# ------------------------------------------------------------------ each method learns


@pytest.mark.slow
@pytest.mark.parametrize("name", ["protonet", "matching", "matching-fce", "relation"])
def test_each_method_learns_a_separable_few_shot_problem(name):
    torch.manual_seed(0)
    encoder = Conv4(norm="batch", hidden_channels=16)
    net = {
        "protonet": lambda: PrototypicalNetwork(encoder),
        "matching": lambda: MatchingNetwork(encoder),
        "matching-fce": lambda: MatchingNetwork(encoder, embedding_dim=16, fce=True),
        "relation": lambda: RelationNetwork(
            Conv4(norm="batch", hidden_channels=16, pool=(True, True, False, False),
                  flatten=False), relation_module(in_channels=32, hidden_channels=16)),
    }[name]()
    ds = marks_dataset()
    fit(net, EpisodeSampler(ds, n_way=3, n_shot=1, n_query=3, seed=0),
        torch.optim.Adam(net.parameters(), lr=3e-3), iterations=120, progress=False)
    result = evaluate(net, EpisodeSampler(ds, n_way=3, n_shot=1, n_query=5, seed=1),
                      n_episodes=40, progress=False)
    assert result.mean > 0.9, result


def test_euclidean_distance_has_a_finite_gradient_at_zero():
    from companion.meta.distances import pairwise_distance

    a = torch.zeros(2, 3, requires_grad=True)
    pairwise_distance(a, torch.zeros(1, 3), "euclidean").sum().backward()
    assert torch.isfinite(a.grad).all()
