"""Two processes (gloo on the CPU) train exactly as one would over the union of their tasks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from companion.engine import is_distributed, rank, rank_seed, world_size
from tests.engine.dist_worker import _maml, tasks
from tests.two_ranks import run_two_ranks

WORKER = Path(__file__).with_name("dist_worker.py")


def _run_two(*args: str) -> None:
    run_two_ranks(WORKER, *args)


def test_single_process_defaults():
    assert not is_distributed() and rank() == 0 and world_size() == 1
    assert rank_seed(7, 0) == 7 and rank_seed(7, 1) != rank_seed(7, 0)
    with pytest.raises(ValueError, match="rank"):
        rank_seed(7, -1)


@pytest.mark.slow
def test_two_rank_meta_gradient_equals_the_single_process_one(tmp_path):
    _run_two("gradient", str(tmp_path / "grads.pt"))
    averaged = torch.load(tmp_path / "grads.pt", weights_only=True)
    maml = _maml()
    loss, _ = maml.meta_loss(tasks())  # all four tasks in one process
    loss.backward()
    for name, p in maml.named_parameters():  # float64: equal up to summation order
        torch.testing.assert_close(averaged[name], p.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_two_rank_resume_equals_an_uninterrupted_two_rank_run(tmp_path):
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    straight.mkdir()
    interrupted.mkdir()
    _run_two("fit", str(straight), "6")
    _run_two("fit", str(interrupted), "4")  # stops after 4 steps (checkpoint at 4) ...
    _run_two("fit", str(interrupted), "6")  # ... and a new pair of processes resumes it
    a = torch.load(straight / "params-6-rank0.pt", weights_only=True)
    b = torch.load(interrupted / "params-6-rank0.pt", weights_only=True)
    c = torch.load(interrupted / "params-4-rank0.pt", weights_only=True)
    other = torch.load(straight / "params-6-rank1.pt", weights_only=True)
    assert a.keys() == b.keys() == other.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
        assert torch.equal(a[k], other[k]), k  # the ranks agree after every step
    assert any(not torch.equal(a[k], c[k]) for k in a)  # the resumed steps did something
