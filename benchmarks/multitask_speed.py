"""Multi-task methods: time per training step relative to equal weighting, for 2, 4 and 8 tasks.

Setting: hard parameter sharing with a small trunk (an MLP 784-256-256, or ``--trunk conv``:
a 4-block Conv-4 on 28x28 images) and one linear 10-way head per task, a batch of random inputs
shared by all tasks (speed does not depend on pixel values), Adam. A step is the library's real
path: ``training_loss`` + backward + step for equal / uncertainty / DWA; ``training_step`` for
GradNorm, PCGrad, MGDA and MGDA-UB (one backward per task through the trunk for PCGrad and
MGDA; through the heads only for MGDA-UB). Methods are timed in interleaved rounds so that
drift affects all alike; the table shows the median over rounds and the ratio to equal
weighting with the same number of tasks.

    python benchmarks/multitask_speed.py
    python benchmarks/multitask_speed.py --quick          # check that it runs (seconds)
    python benchmarks/multitask_speed.py --trunk conv --device cuda --rounds 10
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from companion.data import MultiTaskBatch
from companion.models import MLP, Conv4
from companion.multitask import HardSharing, multitask_learner

METHODS = ("equal", "uncertainty", "dwa", "gradnorm", "pcgrad", "mgda", "mgda_ub")


def _trunk(kind: str) -> tuple[nn.Module, int, tuple[int, ...]]:
    """The trunk, its output size and the input shape of one example."""
    if kind == "conv":
        return Conv4(), 64, (1, 28, 28)
    return nn.Sequential(nn.Flatten(), MLP(784, [256], 256), nn.ReLU()), 256, (1, 28, 28)


def _step_fn(method: str, n_tasks: int, args: argparse.Namespace,
             device: torch.device) -> Callable[[], None]:
    trunk, width, shape = _trunk(args.trunk)
    tasks = [f"t{i}" for i in range(n_tasks)]
    model = HardSharing(trunk, {t: nn.Linear(width, 10) for t in tasks}).to(device)
    learner = multitask_learner(model, method=method).to(device)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, *shape, generator=g).to(device)
    y = {t: torch.randint(0, 10, (args.batch,), generator=g).to(device) for t in tasks}
    batch = MultiTaskBatch.shared(x, y)
    if method == "gradnorm":
        optimizers: object = (torch.optim.Adam(learner.model_parameters(), lr=1e-3),
                              torch.optim.Adam(learner.gradnorm.parameters(), lr=1e-3))
    else:
        optimizers = torch.optim.Adam(learner.parameters(), lr=1e-3)

    def step() -> None:
        if hasattr(learner, "training_step"):
            learner.training_step(batch, optimizers)
            return
        opt = optimizers
        assert isinstance(opt, torch.optim.Optimizer)
        loss, _ = learner.training_loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--trunk", choices=("mlp", "conv"), default="mlp")
    parser.add_argument("--tasks", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="steps per method per round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="check that the script runs: 2 tasks, 1 round of 2 steps")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.rounds, args.steps, args.warmup, args.batch = [2], 1, 2, 1, 8
    methods = ["equal", *[m for m in args.methods if m != "equal"]]
    device = torch.device(args.device)
    steps = {(n, m): _step_fn(m, n, args, device) for n in args.tasks for m in methods}
    for fn in steps.values():
        for _ in range(args.warmup):
            fn()
    timings: dict[tuple[int, str], list[float]] = {key: [] for key in steps}
    for _ in range(args.rounds):
        for key, fn in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(args.steps):
                fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            timings[key].append((time.perf_counter() - start) / args.steps)
    median = {key: statistics.median(v) for key, v in timings.items()}
    where = (torch.cuda.get_device_name() if device.type == "cuda"
             else f"CPU, {torch.get_num_threads()} threads, {platform.machine()}")
    print(f"Multi-task methods, hard sharing ({args.trunk} trunk), batch {args.batch}; {where}; "
          f"torch {torch.__version__}; median of {args.rounds} rounds of {args.steps} steps")
    header = "".join(f"{f'{n} tasks ms':>13}{'ratio':>7}" for n in args.tasks)
    print(f"{'method':<13}{header}")
    for m in methods:
        row = "".join(f"{1000 * median[(n, m)]:>13.2f}{median[(n, m)] / median[(n, 'equal')]:>7.2f}"
                      for n in args.tasks)
        print(f"{m:<13}{row}")
    if args.json:
        results = {m: {str(n): {"seconds_per_step": median[(n, m)],
                                "ratio_to_equal": median[(n, m)] / median[(n, "equal")]}
                       for n in args.tasks} for m in methods}
        with open(args.json, "w") as f:
            json.dump({"setting": vars(args), "results": results, "torch": torch.__version__,
                       "threads": torch.get_num_threads(), "machine": platform.machine()},
                      f, indent=2)


if __name__ == "__main__":
    main()
