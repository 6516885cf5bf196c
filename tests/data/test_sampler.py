"""EpisodeSampler: invariants as property tests, determinism, and every bad-input error."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from companion.data import EpisodeSampler, ImageClassDataset
from tests.conftest import make_dataset


def _row_ids(x: torch.Tensor) -> torch.Tensor:
    """Recover the dataset row of each sampled image (make_dataset encodes it in two pixels)."""
    px = (x[:, 0, 0, :2] * 255).round().long()
    return px[:, 0] + 256 * px[:, 1]


@st.composite
def requests(draw: st.DrawFn) -> tuple[list[int], int, int, int, int]:
    counts = draw(st.lists(st.integers(1, 12), min_size=1, max_size=15))
    n_shot = draw(st.integers(1, 4))
    n_query = draw(st.integers(1, 4))
    eligible = sum(c >= n_shot + n_query for c in counts)
    n_way = draw(st.integers(1, max(eligible, 1)))
    return counts, n_way, n_shot, n_query, draw(st.integers(0, 2**31))


@settings(max_examples=150, deadline=None)
@given(requests())
def test_episode_invariants(request):
    counts, n_way, n_shot, n_query, seed = request
    dataset = make_dataset(counts, seed=seed % 1000)
    if sum(c >= n_shot + n_query for c in counts) < n_way:
        with pytest.raises(ValueError, match="impossible"):
            EpisodeSampler(dataset, n_way=n_way, n_shot=n_shot, n_query=n_query, seed=seed)
        return
    sampler = EpisodeSampler(dataset, n_way=n_way, n_shot=n_shot, n_query=n_query, seed=seed)
    ep = sampler.sample()
    # labels are 0..n_way-1, class by class, with exactly n_shot / n_query of each
    assert ep.support_y.tolist() == [c for c in range(n_way) for _ in range(n_shot)]
    assert ep.query_y.tolist() == [c for c in range(n_way) for _ in range(n_query)]
    assert ep.support_x.shape == (n_way * n_shot, 1, 4, 4)
    assert ep.query_x.shape == (n_way * n_query, 1, 4, 4)
    assert 0 <= ep.support_x.min() and ep.support_x.max() <= 1
    # distinct classes, each with enough examples
    assert len(set(ep.classes.tolist())) == n_way
    assert all(counts[c] >= n_shot + n_query for c in ep.classes.tolist())
    # every image really belongs to the class its label stands for; no image is used twice
    rows_s, rows_q = _row_ids(ep.support_x), _row_ids(ep.query_x)
    assert torch.equal(dataset.labels[rows_s], ep.classes[ep.support_y])
    assert torch.equal(dataset.labels[rows_q], ep.classes[ep.query_y])
    all_rows = torch.cat([rows_s, rows_q]).tolist()
    assert len(set(all_rows)) == len(all_rows)  # support and query disjoint, no repeats


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 5))
def test_same_seed_same_episodes(seed, n):
    dataset = make_dataset([8] * 12)

    def draw() -> list[torch.Tensor]:
        s = EpisodeSampler(dataset, n_way=3, n_shot=2, n_query=3, seed=seed)
        return [s.sample().support_x for _ in range(n)]

    for a, b in zip(draw(), draw(), strict=True):
        assert torch.equal(a, b)


def test_generator_drives_sampling_and_global_rng_is_untouched(tiny_dataset):
    torch.manual_seed(0)
    before = torch.rand(1)
    g1 = torch.Generator().manual_seed(5)
    g2 = torch.Generator().manual_seed(5)
    torch.manual_seed(0)
    e1 = EpisodeSampler(tiny_dataset, n_way=4, n_shot=1, n_query=2, generator=g1).sample()
    assert torch.rand(1) == before  # the global generator did not advance
    e2 = EpisodeSampler(tiny_dataset, n_way=4, n_shot=1, n_query=2, generator=g2).sample()
    assert torch.equal(e1.query_x, e2.query_x)


def test_episodes_vary_and_cover_classes(tiny_dataset):
    sampler = EpisodeSampler(tiny_dataset, n_way=2, n_shot=1, n_query=1, seed=0)
    seen = {tuple(sampler.sample().classes.tolist()) for _ in range(200)}
    assert len(seen) > 30  # 90 ordered pairs are possible
    assert {c for pair in seen for c in pair} == set(range(10))


def test_label_assignment_is_random_per_episode(tiny_dataset):
    sampler = EpisodeSampler(tiny_dataset, n_way=3, n_shot=1, n_query=1, seed=1)
    first_class = {sampler.sample().classes[0].item() for _ in range(100)}
    assert len(first_class) == 10  # label 0 is not tied to any class


def test_sample_batch_stacks_for_vmap(tiny_dataset):
    batch = EpisodeSampler(tiny_dataset, n_way=5, n_shot=1, n_query=1, seed=0).sample_batch(7)
    assert len(batch) == 7
    assert batch.support_x.shape == (7, 5, 1, 4, 4) and batch.query_y.shape == (7, 5)
    assert batch.classes.shape == (7, 5)


def test_transform_is_applied(tiny_dataset):
    sampler = EpisodeSampler(tiny_dataset, n_way=2, n_shot=1, n_query=1, seed=0,
                             transform=lambda x: 1 - x)
    assert sampler.sample().support_x.min() >= 0.0 and sampler.sample().support_x.max() == 1.0


def test_iteration_is_endless(tiny_dataset):
    sampler = EpisodeSampler(tiny_dataset, n_way=2, n_shot=1, n_query=1, seed=0)
    stream = iter(sampler)
    assert len([next(stream) for _ in range(5)]) == 5


@pytest.mark.parametrize("name", ["n_way", "n_shot", "n_query"])
@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
def test_non_positive_or_non_integer_sizes(tiny_dataset, name, value):
    kwargs = {"n_way": 2, "n_shot": 1, "n_query": 1, name: value}
    with pytest.raises(ValueError, match=name):
        EpisodeSampler(tiny_dataset, seed=0, **kwargs)


def test_more_ways_than_classes(tiny_dataset):
    with pytest.raises(ValueError, match=r"n_way=11 .* only 10 of 10 classes"):
        EpisodeSampler(tiny_dataset, n_way=11, n_shot=1, n_query=1, seed=0)


def test_more_shots_and_queries_than_examples(tiny_dataset):
    with pytest.raises(ValueError, match=r"n_shot \+ n_query = 7 .* largest class has 6"):
        EpisodeSampler(tiny_dataset, n_way=2, n_shot=4, n_query=3, seed=0)


def test_classes_too_small_are_skipped_not_oversampled():
    dataset = make_dataset([2, 10, 10, 1])
    sampler = EpisodeSampler(dataset, n_way=2, n_shot=3, n_query=2, seed=0)
    assert all(set(sampler.sample().classes.tolist()) == {1, 2} for _ in range(20))


def test_randomness_must_be_explicit(tiny_dataset):
    with pytest.raises(ValueError, match="generator= or seed="):
        EpisodeSampler(tiny_dataset, n_way=2, n_shot=1, n_query=1)
    with pytest.raises(ValueError, match="not both"):
        EpisodeSampler(tiny_dataset, n_way=2, n_shot=1, n_query=1, seed=0,
                       generator=torch.Generator())
    with pytest.raises(ValueError, match="seed"):
        EpisodeSampler(tiny_dataset, n_way=2, n_shot=1, n_query=1, seed=-3)


def test_bad_batch_size(tiny_dataset):
    sampler = EpisodeSampler(tiny_dataset, n_way=2, n_shot=1, n_query=1, seed=0)
    with pytest.raises(ValueError, match="n_tasks"):
        sampler.sample_batch(0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_sampling_from_a_dataset_on_cuda(tiny_dataset):
    sampler = EpisodeSampler(tiny_dataset.to("cuda"), n_way=3, n_shot=1, n_query=2, seed=0)
    ep = sampler.sample()
    assert ep.device.type == "cuda" and ep.support_y.device.type == "cuda"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"generator": 0}, "generator must be a torch.Generator"),
    ({"generator": "seed", "seed": None}, "generator must be a torch.Generator"),
    ({"seed": 0, "transform": 1}, "transform must be a function"),
])
def test_wrong_types_are_value_errors(tiny_dataset, kwargs, message):
    with pytest.raises(ValueError, match=message):
        EpisodeSampler(tiny_dataset, n_way=2, n_shot=1, n_query=1, **kwargs)


def test_a_plain_tensor_is_not_a_dataset(tiny_dataset):
    with pytest.raises(ValueError, match="dataset must be an ImageClassDataset"):
        EpisodeSampler(tiny_dataset.images, n_way=2, n_shot=1, n_query=1, seed=0)


@pytest.mark.parametrize(("change", "message"), [
    ({"images": [[0]]}, "images must be a torch.Tensor"),
    ({"labels": [0] * 60}, "labels must be a torch.Tensor"),
    ({"class_names": "0123456789"}, "class_names must be a sequence of str"),
    ({"class_names": tuple(range(10))}, "class_names must be a sequence of str"),
    ({"name": 3}, "name must be a str"),
])
def test_dataset_wrong_types(tiny_dataset, change, message):
    fields = {"images": tiny_dataset.images, "labels": tiny_dataset.labels,
              "class_names": tiny_dataset.class_names, "name": "x", **change}
    with pytest.raises(ValueError, match=message):
        ImageClassDataset(**fields)


def test_dataset_accepts_a_list_of_class_names(tiny_dataset):
    ds = ImageClassDataset(tiny_dataset.images, tiny_dataset.labels,
                           list(tiny_dataset.class_names))  # type: ignore[arg-type]
    assert ds.class_names == tiny_dataset.class_names


@pytest.mark.parametrize("classes", [[1.5, 2], 3, "ab", [True, 2]])
def test_subset_needs_int_class_indices(tiny_dataset, classes):
    with pytest.raises(ValueError, match="classes must be a sequence of int"):
        tiny_dataset.subset(classes)


def test_dataset_to_an_unknown_device(tiny_dataset):
    with pytest.raises(ValueError, match="device must name a torch device"):
        tiny_dataset.to("gpu")
