"""Sinusoid regression tasks (MAML section 5.1)."""

from __future__ import annotations

import math

import pytest
import torch

from companion.data import SinusoidTasks


def test_ranges_shapes_and_function():
    tasks = SinusoidTasks()
    episodes, fns = tasks.sample(500, n_support=10, n_query=7,
                                 generator=torch.Generator().manual_seed(0))
    assert episodes.support_x.shape == (500, 10, 1) and episodes.query_y.shape == (500, 7, 1)
    assert 0.1 <= fns.amplitude.min() and fns.amplitude.max() <= 5.0
    assert 0.0 <= fns.phase.min() and fns.phase.max() <= math.pi
    x = torch.cat([episodes.support_x, episodes.query_x], 1)
    assert -5 <= x.min() and x.max() <= 5
    expected = fns.amplitude[:, None, None] * torch.sin(episodes.support_x - fns.phase[:, None,
                                                                                        None])
    torch.testing.assert_close(episodes.support_y, expected)
    # the amplitude really spans its range (uniform): mean close to 2.55
    assert abs(fns.amplitude.mean().item() - 2.55) < 0.2


def test_deterministic_given_generator():
    a, _ = SinusoidTasks().sample(3, n_support=5, n_query=5,
                                  generator=torch.Generator().manual_seed(1))
    b, _ = SinusoidTasks().sample(3, n_support=5, n_query=5,
                                  generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.query_y, b.query_y)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"amplitude": (5.0, 0.1)}, "amplitude"),
    ({"phase": (0.0, float("nan"))}, "phase"),
    ({"x_range": (0.0, float("inf"))}, "x_range"),
])
def test_bad_ranges(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SinusoidTasks(**kwargs)


@pytest.mark.parametrize(("n_tasks", "n_support", "n_query", "message"), [
    (0, 5, 5, "n_tasks"), (2, 0, 5, "n_support"), (2, 5, -1, "n_query"),
])
def test_bad_sizes(n_tasks, n_support, n_query, message):
    with pytest.raises(ValueError, match=message):
        SinusoidTasks().sample(n_tasks, n_support=n_support, n_query=n_query,
                               generator=torch.Generator())


def test_sampler_is_a_task_source():
    sampler = SinusoidTasks().sampler(n_support=5, n_query=3, seed=0)
    batch = sampler.sample_batch(4)
    assert batch.support_x.shape == (4, 5, 1) and batch.query_y.shape == (4, 3, 1)
    again = SinusoidTasks().sampler(n_support=5, n_query=3, seed=0).sample_batch(4)
    assert torch.equal(batch.query_y, again.query_y)
    with pytest.raises(ValueError, match="generator= or seed="):
        SinusoidTasks().sampler(n_support=5, n_query=3)


@pytest.mark.parametrize("generator", [0, None, "seed"])
def test_generator_must_be_a_torch_generator(generator):
    with pytest.raises(ValueError, match=r"generator must be a torch\.Generator"):
        SinusoidTasks().sample(2, n_support=3, n_query=3, generator=generator)
