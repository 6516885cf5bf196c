"""EpisodeSampler(shuffle=...): off keeps the class-major episodes bit for bit; on permutes
support and query (with the sampler's own generator) and keeps every image with its label."""

from __future__ import annotations

import pytest
import torch

from companion.data import EpisodeSampler
from tests.conftest import make_dataset


def _row_ids(x: torch.Tensor) -> torch.Tensor:
    px = (x[:, 0, 0, :2] * 255).round().long()
    return px[:, 0] + 256 * px[:, 1]


def _class_major(dataset, seed: int, n_way: int, n_shot: int, n_query: int):
    """The episode as the sampler built it before ``shuffle`` existed, from its indices."""
    idx = EpisodeSampler(dataset, n_way=n_way, n_shot=n_shot, n_query=n_query,
                         seed=seed).sample_indices()
    images = dataset.images.float() / 255
    labels = torch.arange(n_way)
    return (images[idx.support.reshape(-1)], labels.repeat_interleave(n_shot),
            images[idx.query.reshape(-1)], labels.repeat_interleave(n_query), idx.classes)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_shuffle_off_is_the_class_major_episode_bit_for_bit(seed):
    dataset = make_dataset([8] * 6)
    ep = EpisodeSampler(dataset, n_way=4, n_shot=2, n_query=3, seed=seed).sample()
    default = EpisodeSampler(dataset, n_way=4, n_shot=2, n_query=3, seed=seed,
                             shuffle=False).sample()
    for got, other, want in zip((ep.support_x, ep.support_y, ep.query_x, ep.query_y,
                                 ep.classes),
                                (default.support_x, default.support_y, default.query_x,
                                 default.query_y, default.classes),
                                _class_major(dataset, seed, 4, 2, 3), strict=True):
        assert torch.equal(got, want)
        assert torch.equal(other, want)


def test_shuffle_permutes_support_and_query_and_keeps_labels_with_images():
    dataset = make_dataset([8] * 6)
    not_class_major = 0
    for seed in range(10):
        a = EpisodeSampler(dataset, n_way=4, n_shot=3, n_query=3, seed=seed).sample()
        b = EpisodeSampler(dataset, n_way=4, n_shot=3, n_query=3, seed=seed,
                           shuffle=True).sample()
        assert torch.equal(a.classes, b.classes)  # same classes drawn: the shuffle comes last
        for xa, ya, xb, yb in ((a.support_x, a.support_y, b.support_x, b.support_y),
                               (a.query_x, a.query_y, b.query_x, b.query_y)):
            rows_a, rows_b = _row_ids(xa), _row_ids(xb)
            assert sorted(rows_a.tolist()) == sorted(rows_b.tolist())  # same images
            assert torch.equal(dataset.labels[rows_b], b.classes[yb])  # label follows image
            assert torch.equal(torch.bincount(yb), torch.bincount(ya))
        not_class_major += int(not torch.equal(b.support_y, a.support_y))
    assert not_class_major >= 9


def test_shuffle_is_seeded_and_leaves_the_global_rng_alone():
    dataset = make_dataset([8] * 6)
    state = torch.random.get_rng_state()
    one = EpisodeSampler(dataset, n_way=3, n_shot=2, n_query=2, seed=5, shuffle=True)
    two = EpisodeSampler(dataset, n_way=3, n_shot=2, n_query=2,
                         generator=torch.Generator().manual_seed(5), shuffle=True)
    for _ in range(3):
        a, b = one.sample(), two.sample()
        assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_y, b.query_y)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_shuffle_must_be_a_bool():
    with pytest.raises(ValueError, match="shuffle"):
        EpisodeSampler(make_dataset([8] * 6), n_way=3, n_shot=2, n_query=2, seed=0,
                       shuffle=1)  # type: ignore[arg-type]
