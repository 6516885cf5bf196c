"""A worker of the two-process learned-optimiser test (tests/meta/test_learned_optimizer.py).

Run as ``python dist_lstm_worker.py OUT`` with the torchrun environment variables set by the
test: each rank takes its half of four fixed quadratics, makes one ``training_step`` (two
truncations, plain SGD) and rank 0 saves the resulting parameters to OUT.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from companion.engine import init_from_env, rank
from companion.meta import LSTMOptimizer, LSTMOptimizerConfig, QuadraticFamily, QuadraticProblems

CONFIG = LSTMOptimizerConfig(hidden_size=6, unroll=4, truncation=2)
LR = 0.05


def optimiser() -> LSTMOptimizer:
    """The same float64 initial optimiser in every process."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return LSTMOptimizer(CONFIG).double()


def problems() -> QuadraticProblems:
    return QuadraticFamily(dim=3).sample(4, generator=torch.Generator().manual_seed(5),
                                         dtype=torch.float64)


def main(out: Path) -> None:
    torch.set_num_threads(1)
    init_from_env("cpu")
    learned, every = optimiser(), problems()
    r = rank()
    mine = QuadraticProblems(every.W[2 * r:2 * r + 2], every.y[2 * r:2 * r + 2],
                             every.theta0[2 * r:2 * r + 2])
    learned.training_step(mine, torch.optim.SGD(learned.parameters(), lr=LR))
    if r == 0:
        torch.save(dict(learned.state_dict()), out)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
