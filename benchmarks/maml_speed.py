"""MAML meta-training speed: tasks per second and peak memory, loop vs vmap, 2nd vs 1st order.

Setting (default): Conv-4 (64 channels, BatchStatNorm2d), 5-way 1-shot, meta-batch 32, 15
queries per class, 1 inner step: one full meta-training step (forward, inner loop, query
loss, backward, Adam step) per timed iteration. Inputs are random tensors of the right shape
(speed does not depend on pixel values). Every variant runs in a fresh subprocess, so its
peak memory and allocator state are its own. Ratios are against the plain per-task loop of
companion.meta.reference (the way the reference implementation computes MAML).

    python benchmarks/maml_speed.py                      # CPU, 15 queries per class
    python benchmarks/maml_speed.py --queries 1          # the MAML paper's Omniglot setting
    python benchmarks/maml_speed.py --device cuda

Peak memory: on CUDA, torch.cuda.max_memory_allocated; on a CPU, how far the process's peak
resident set size (ru_maxrss) grew above its size before the first step (model and batch
already in memory), i.e. what the meta-training steps needed.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

VARIANTS: dict[str, dict] = {
    # name: MAML options ("reference" = the plain loop of companion.meta.reference)
    "reference loop, 2nd order": {"reference": True},
    "loop, 2nd order": {"batching": "loop"},
    "vmap, 2nd order": {"batching": "vmap"},
    "loop, 1st order": {"batching": "loop", "first_order": True},
    "vmap, 1st order": {"batching": "vmap", "first_order": True},
    "loop, ANIL": {"batching": "loop", "adapt": "head"},
    "vmap, ANIL": {"batching": "vmap", "adapt": "head"},
    "loop, Meta-SGD": {"batching": "loop", "learn_inner_lr": True},
    "vmap, Meta-SGD": {"batching": "vmap", "learn_inner_lr": True},
    # Reptile's paper setting, whatever the options above: 5 tasks of 5 x 10 images, 5 inner
    # Adam steps on minibatches of 10, then the outer SGD step.
    "Reptile (paper setting)": {"reptile": True},
}
DEFAULT_VARIANTS = list(VARIANTS)[:5]
BASELINE = "reference loop, 2nd order"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def worker(args: argparse.Namespace) -> dict[str, float]:
    """Time one variant (runs inside its own process)."""
    from companion import Conv4
    from companion.data import EpisodeBatch
    from companion.meta.maml import MAML
    from companion.meta.reference import naive_maml_loss

    options = dict(VARIANTS[args.variant])
    reference = options.pop("reference", False)
    if options.pop("reptile", False):
        return _reptile_worker(args)
    device = torch.device(args.device)
    torch.manual_seed(0)
    net = Conv4(n_classes=args.ways, norm="batch_stats").to(device)
    maml = MAML(net, inner_lr=0.4, inner_steps=args.inner_steps, **options)
    opt = torch.optim.Adam(maml.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    b, n_s, n_q = args.meta_batch, args.ways * args.shots, args.ways * args.queries
    batch = EpisodeBatch(
        torch.rand(b, n_s, 1, 28, 28, generator=g),
        torch.arange(args.ways).repeat_interleave(args.shots).repeat(b, 1),
        torch.rand(b, n_q, 1, 28, 28, generator=g),
        torch.arange(args.ways).repeat_interleave(args.queries).repeat(b, 1),
    ).to(device)

    def step() -> None:
        if reference:
            loss = naive_maml_loss(net, batch, inner_lr=0.4, inner_steps=args.inner_steps,
                                   loss_fn=F.cross_entropy)
        else:
            loss, _ = maml.meta_loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return _time(step, args, device, b)


def _reptile_worker(args: argparse.Namespace) -> dict[str, float]:
    from companion import Conv4
    from companion.data import EpisodeBatch
    from companion.meta import Reptile

    device = torch.device(args.device)
    torch.manual_seed(0)
    reptile = Reptile(Conv4(n_classes=5, norm="batch_stats")).to(device)
    optimizer, _ = reptile.outer_optimizer(total_iterations=10_000)
    g = torch.Generator().manual_seed(0)
    tasks, per_class = 5, 5  # 5 support + 5 query per class: 10 examples of each class
    batch = EpisodeBatch(
        torch.rand(tasks, 5 * per_class, 1, 28, 28, generator=g),
        torch.arange(5).repeat_interleave(per_class).repeat(tasks, 1),
        torch.rand(tasks, 5 * per_class, 1, 28, 28, generator=g),
        torch.arange(5).repeat_interleave(per_class).repeat(tasks, 1),
    ).to(device)

    def step() -> None:
        loss, _ = reptile.meta_loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return _time(step, args, device, tasks)


def _time(step: Callable[[], None], args: argparse.Namespace, device: torch.device,
          tasks: int) -> dict[str, float]:
    """Median seconds per step and peak memory (see the module docstring)."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    rss_before = _peak_rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(args.warmup):
        step()
    sync()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
            else _peak_rss_mb() - rss_before)
    median = statistics.median(times)
    return {"seconds_per_step": median, "tasks_per_s": tasks / median, "peak_mb": peak,
            "spread": (max(times) - min(times)) / median}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ways", type=int, default=5)
    parser.add_argument("--shots", type=int, default=1)
    parser.add_argument("--queries", type=int, default=15, help="query images per class")
    parser.add_argument("--meta-batch", type=int, default=32)
    parser.add_argument("--inner-steps", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="timed meta-training steps")
    parser.add_argument("--variants", nargs="*", default=DEFAULT_VARIANTS,
                        choices=list(VARIANTS), metavar="VARIANT",
                        help=f"any of {list(VARIANTS)} (default: the first five)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # internal: worker mode
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(worker(args)))
        return
    results = {}
    for name in args.variants:
        out = subprocess.run([sys.executable, __file__, *_worker_argv(args), "--variant", name],
                             capture_output=True, text=True, check=True)
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    _print_table(args, results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"setting": vars(args), "results": results, "torch": torch.__version__,
                       "machine": platform.machine(), "threads": torch.get_num_threads()},
                      f, indent=2)


def _worker_argv(args: argparse.Namespace) -> list[str]:
    """The setting, as command-line options for a worker process."""
    options = ("device", "ways", "shots", "queries", "meta_batch", "inner_steps", "warmup",
               "steps")
    return [item for name in options
            for item in (f"--{name.replace('_', '-')}", str(getattr(args, name)))]


def _print_table(args: argparse.Namespace, results: dict[str, dict[str, float]]) -> None:
    device = (torch.cuda.get_device_name() if args.device.startswith("cuda")
              else f"CPU, {torch.get_num_threads()} threads, {platform.machine()}")
    print(f"MAML meta-training, Conv-4, {args.ways}-way {args.shots}-shot, {args.queries} "
          f"queries/class, meta-batch {args.meta_batch}, {args.inner_steps} inner step(s); "
          f"{device}; torch {torch.__version__}; median of {args.steps} steps")
    base = results.get(BASELINE, next(iter(results.values())))["tasks_per_s"]
    print(f"{'variant':<28}{'tasks/s':>10}{'x baseline':>12}{'peak MB':>10}{'spread':>9}")
    for name, r in results.items():
        print(f"{name:<28}{r['tasks_per_s']:>10.1f}{r['tasks_per_s'] / base:>12.2f}"
              f"{r['peak_mb']:>10.0f}{100 * r['spread']:>8.0f}%")


if __name__ == "__main__":
    main()
