"""A worker of the two-process multi-task test (tests/multitask/test_distributed.py).

Run as ``python dist_worker.py METHOD OUT`` with the torchrun environment variables set by the
test. Each rank takes its half of a fixed batch, makes one ``training_step`` of
:class:`~companion.multitask.GradientMultiTaskLearner` with SGD, and saves its parameters to
``OUT/params-rankR.pt``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from companion.engine import init_from_env, rank
from tests.multitask.test_distributed import LR, half_batch, learner


def main(method: str, out: Path) -> None:
    torch.set_num_threads(1)
    init_from_env("cpu")
    mtl = learner(method)
    mtl.training_step(half_batch(rank()), torch.optim.SGD(mtl.parameters(), lr=LR))
    torch.save({k: v.detach() for k, v in mtl.named_parameters()}, out / f"params-rank{rank()}.pt")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
