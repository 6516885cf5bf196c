"""Distances, prototypes and nearest-neighbour scoring on hand-made cases."""

from __future__ import annotations

import pytest
import torch

from companion.data import Episode
from companion.meta import NearestNeighbour, PrototypicalNetwork, class_prototypes
from companion.meta.distances import pairwise_distance


def test_pairwise_distances_against_cdist():
    a, b = torch.randn(5, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    torch.testing.assert_close(pairwise_distance(a, b, "euclidean"), torch.cdist(a, b))
    torch.testing.assert_close(pairwise_distance(a, b), torch.cdist(a, b) ** 2)
    cos = torch.nn.functional.cosine_similarity(a[:, None], b[None], dim=-1)
    torch.testing.assert_close(pairwise_distance(a, b, "cosine"), 1 - cos)
    with pytest.raises(ValueError, match="distance must be one of"):
        pairwise_distance(a, b, "manhattan")
    with pytest.raises(ValueError, match="expected"):
        pairwise_distance(a, b[:, :2])


def test_class_prototypes_are_means():
    z = torch.tensor([[0.0, 0.0], [2.0, 2.0], [10.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([0, 0, 1, 0])
    torch.testing.assert_close(class_prototypes(z, y, 2), torch.tensor([[1.0, 1.0], [10.0, 0.0]]))
    with pytest.raises(ValueError, match="at least one"):
        class_prototypes(z, y, 3)


def _points_episode() -> Episode:
    # class 0 around (0, 0) with one far shot; class 1 at (3, 0)
    support = torch.tensor([[0.0, 0.0], [0.0, 5.0], [3.0, 0.0]])
    query = torch.tensor([[0.2, 4.0], [2.0, 0.0]])
    return Episode(support, torch.tensor([0, 0, 1]), query, torch.tensor([0, 1]))


def test_nearest_neighbour_uses_the_closest_shot():
    scores = NearestNeighbour().predict(_points_episode())
    expected = -torch.tensor([[(0.2**2 + 1) ** 0.5, (2.8**2 + 16) ** 0.5], [2.0, 1.0]])
    torch.testing.assert_close(scores, expected)


def test_prototypes_and_nearest_neighbour_can_disagree():
    ep = _points_episode()
    proto = PrototypicalNetwork(torch.nn.Identity()).predict(ep)
    # prototype of class 0 is (0, 2.5): the first query (0.2, 4) is nearer to it than to (3, 0)
    assert proto.argmax(1).tolist() == [0, 1]
    assert NearestNeighbour().predict(ep).argmax(1).tolist() == [0, 1]
    far = Episode(ep.support_x, ep.support_y, torch.tensor([[2.4, 2.4]]), torch.tensor([1]))
    assert PrototypicalNetwork(torch.nn.Identity()).predict(far).argmax(1).item() == 0
    assert NearestNeighbour().predict(far).argmax(1).item() == 1


def test_bad_distance_names():
    with pytest.raises(ValueError, match="distance"):
        PrototypicalNetwork(torch.nn.Identity(), distance="l1")
    with pytest.raises(ValueError, match="distance"):
        NearestNeighbour(distance="l1")
