"""Several processes (``torchrun``): who am I, averaging gradients, rank-aware seeds.

The training loop is the same on one process and on many. When ``torch.distributed`` is
initialised with more than one process (``torchrun --nproc_per_node=N ...``), each rank draws
its own share of the meta-batch from its own generator, :func:`all_reduce_gradients`
averages the meta-gradients before every optimiser step, and only rank 0 writes files. On one
process every function here is a no-op.

* CPU: the ``gloo`` backend; GPUs: ``nccl``, one device per rank from ``LOCAL_RANK``
  (:func:`init_from_env`).
* A step on ``N`` ranks with ``B`` tasks each equals a single-process step over the union of
  the ``N * B`` tasks when the learner's loss is a mean over tasks (tested with MAML).

Chapter: Appendix (training at scale). References: PyTorch's DDP tutorial and
``torch.distributed.run``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["all_gather_objects", "all_reduce_gradients", "all_reduce_mean", "any_rank",
           "broadcast_module",
           "init_from_env", "is_distributed", "rank", "rank_seed", "world_size"]


def is_distributed() -> bool:
    """True when a process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 on a single process)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of processes (1 on a single process)."""
    return dist.get_world_size() if is_distributed() else 1


def rank_seed(seed: int, rank_: int) -> int:
    """The seed of rank ``rank_``'s task generator, derived from the run seed.

    Rank 0 keeps the run seed itself, so a one-process run draws exactly the tasks it drew
    before several processes were supported; rank ``r > 0`` gets a seed far from every run
    seed a user would pick (``seed + r * 1_000_003``).
    """
    if rank_ < 0:
        raise ValueError(f"rank must be >= 0, got {rank_}")
    return seed + rank_ * 1_000_003


def init_from_env(device: str | torch.device | None = None) -> torch.device | None:
    """Start the process group if ``torchrun`` launched this process; return its device.

    Reads ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (set by ``torchrun``). Uses NCCL and
    ``cuda:LOCAL_RANK`` when the requested device is CUDA (or, with no request, when CUDA is
    available), else gloo on the CPU. Returns None when not launched by ``torchrun`` with more
    than one process.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    local = int(os.environ.get("LOCAL_RANK", "0"))
    wanted = torch.device(device) if device is not None else None
    use_cuda = (wanted.type == "cuda") if wanted is not None else torch.cuda.is_available()
    if use_cuda:
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was requested but CUDA is not available")
        torch.cuda.set_device(local)
        chosen = torch.device("cuda", local)
    else:
        chosen = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return chosen


def all_reduce_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Average ``.grad`` over all ranks, in place (parameters without a gradient count as 0).

    One flat all-reduce per call (all gradients concatenated), so the number of messages does
    not grow with the number of parameter tensors.
    """
    if not is_distributed():
        return
    params = [p for p in parameters if p.requires_grad]
    if not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world_size()
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def any_rank(flag: bool) -> bool:
    """Whether ``flag`` is set on any rank (the flag itself on one process)."""
    if not is_distributed():
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def all_reduce_mean(value: Tensor) -> Tensor:
    """The mean of a tensor over all ranks (the tensor itself on one process)."""
    if not is_distributed():
        return value
    out = value.detach().clone()
    if dist.get_backend() == "nccl":  # NCCL reduces CUDA tensors only
        out = out.cuda()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return (out / world_size()).to(value.device)


def broadcast_module(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (identical starting points)."""
    if not is_distributed():
        return
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, src=0)


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` on one process)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out
