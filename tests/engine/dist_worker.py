"""A worker of the two-process tests (tests/engine/test_distributed.py), one per rank.

Run as ``python dist_worker.py MODE OUT [ITERATIONS]`` with the torchrun environment variables
(WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) set by the test.

* ``gradient``: each rank takes its half of four fixed sinusoid tasks, back-propagates MAML's
  meta-loss and averages the gradients over the ranks; rank 0 saves them to OUT.
* ``fit``: a short 2-rank MAML run with a checkpoint at OUT/ckpt.pt; each rank saves its final
  parameters to OUT/params-ITERATIONS-rankR.pt.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from companion import MAML, MLP, SinusoidTasks, fit
from companion.engine import all_reduce_gradients, init_from_env, rank, rank_seed


def _maml(dtype: torch.dtype = torch.float64) -> MAML:
    torch.manual_seed(0)
    maml = MAML(MLP(1, (16, 16), 1), task="regression", inner_lr=0.01, inner_steps=2)
    return maml.to(dtype)


def tasks(n: int = 4):
    batch, _ = SinusoidTasks().sample(n, n_support=5, n_query=5,
                                      generator=torch.Generator().manual_seed(3))
    return batch.to(dtype=torch.float64)


def main(mode: str, out: Path, iterations: int) -> None:
    torch.set_num_threads(1)
    init_from_env("cpu")
    maml = _maml(torch.float64 if mode == "gradient" else torch.float32)
    if mode == "gradient":
        batch = tasks()
        mine = type(batch)(*(t[2 * rank():2 * rank() + 2] for t in (
            batch.support_x, batch.support_y, batch.query_x, batch.query_y)))
        loss, _ = maml.meta_loss(mine)
        loss.backward()
        all_reduce_gradients(maml.parameters())
        if rank() == 0:
            torch.save({k: p.grad for k, p in maml.named_parameters()}, out)
    else:
        sampler = SinusoidTasks().sampler(n_support=5, n_query=5, seed=rank_seed(0, rank()))
        optimizer = torch.optim.Adam(maml.parameters(), lr=1e-3)
        fit(maml, sampler, optimizer, iterations=iterations, meta_batch_size=2,
            checkpoint=out / "ckpt.pt", checkpoint_every=2, progress=False)
        torch.save(dict(maml.state_dict()), out / f"params-{iterations}-rank{rank()}.pt")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0)
