"""Multi-task batches and samplers, and the synthetic linear task family."""

from __future__ import annotations

import math

import pytest
import torch

from companion.data import LinearTaskFamily, MultiTaskBatch, MultiTaskSampler


def test_batch_validation_and_sharing():
    x = torch.zeros(4, 3)
    batch = MultiTaskBatch.shared(x, {"a": torch.zeros(4), "b": torch.ones(4)})
    assert batch.shared_input is x and batch.tasks == ("a", "b")
    moved = batch.to("cpu")
    assert moved.shared_input is not None
    with pytest.raises(ValueError, match="x and y"):
        MultiTaskBatch({"a": x}, {"a": torch.zeros(4), "b": torch.zeros(4)})
    with pytest.raises(ValueError, match=r"y\['a'\]"):
        MultiTaskBatch.shared(x, {"a": torch.zeros(5)})
    with pytest.raises(ValueError, match="y must hold at least one task"):
        MultiTaskBatch({}, {})


def test_sampler_rows_are_consistent_across_tasks():
    x = torch.arange(10, dtype=torch.float32)[:, None]
    sampler = MultiTaskSampler.from_arrays(dict.fromkeys("ab", x), {"a": torch.arange(10),
                                                                     "b": -torch.arange(10)},
                                           seed=0)
    batch = sampler.sample_batch(4)
    rows = batch.shared_input[:, 0].long()
    assert torch.equal(batch.y["a"], rows) and torch.equal(batch.y["b"], -rows)
    again = MultiTaskSampler.from_arrays(dict.fromkeys("ab", x), {"a": torch.arange(10),
                                                                   "b": -torch.arange(10)},
                                         seed=0).sample_batch(4)
    assert torch.equal(again.y["a"], batch.y["a"])
    with pytest.raises(ValueError, match="generator"):
        MultiTaskSampler.from_arrays({"a": x}, {"a": torch.arange(10)})


@pytest.mark.parametrize(("n_tasks", "cosine"), [(2, -0.8), (2, 0.0), (3, 0.5), (4, -1 / 3)])
def test_linear_family_optima_have_the_requested_cosine(n_tasks, cosine):
    family = LinearTaskFamily(n_tasks=n_tasks, dim=6, cosine=cosine)
    w = family.optima()
    expected = (1 - cosine) * torch.eye(n_tasks, dtype=torch.float64) + cosine
    torch.testing.assert_close(w @ w.T, expected)


def test_linear_family_targets_and_scales():
    family = LinearTaskFamily(n_tasks=2, dim=3, cosine=0.5, scales=(1.0, 10.0))
    batch = family.sample(5, generator=torch.Generator().manual_seed(0))
    w = family.optima().float()
    x = batch.shared_input
    torch.testing.assert_close(batch.y["task0"], x @ w[0:1].T)
    torch.testing.assert_close(batch.y["task1"], 10 * (x @ w[1:2].T))
    assert family.sampler(seed=1).sample_batch(3).y["task0"].shape == (3, 1)


def test_linear_family_bad_arguments():
    with pytest.raises(ValueError, match="cosine"):
        LinearTaskFamily(n_tasks=3, cosine=-0.6)
    with pytest.raises(ValueError, match="dim"):
        LinearTaskFamily(n_tasks=3, dim=2)
    with pytest.raises(ValueError, match="scales"):
        LinearTaskFamily(n_tasks=2, scales=(1.0,))
    with pytest.raises(ValueError, match="noise"):
        LinearTaskFamily(noise=math.inf)
