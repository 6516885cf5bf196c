"""Meta-training on several processes: 2 ranks x 1 thread vs 1 process x 2 threads.

The same workload both ways: MAML (second order, Conv-4 with batch-statistics
normalisation), 5-way 1-shot with 1 query per class (the paper's Omniglot shape), meta-batch
32 per step in total, one inner step, Adam; random Omniglot-shaped images. With two ranks,
each draws 16 tasks from its own generator and the meta-gradients are averaged with one
gloo all-reduce per step (:func:`companion.engine.all_reduce_gradients`), exactly what
``torchrun --nproc_per_node=2 -m companion.experiments run ...`` does.

Each setting runs ``--repeats`` times, each in fresh processes; the table shows the median
tasks/s, the spread (min-max) and the ratio to the single process. The machine's load
average before the run is recorded: numbers from a busy machine are not comparable.

    python benchmarks/distributed_speed.py                       # 2 CPU cores
    python benchmarks/distributed_speed.py --json benchmarks/results/distributed_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _worker(args: argparse.Namespace) -> None:
    """One process of one setting; rank 0 prints tasks/s as JSON."""
    from companion import MAML, Conv4, EpisodeSampler, fit
    from companion.data import ImageClassDataset
    from companion.engine import init_from_env, rank, rank_seed, world_size

    torch.set_num_threads(args.threads)
    init_from_env("cpu")
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (100 * 20, 1, 28, 28), dtype=torch.uint8, generator=g)
    labels = torch.arange(100).repeat_interleave(20)
    data = ImageClassDataset(images, labels, tuple(map(str, range(100))), "random")
    sampler = EpisodeSampler(data, n_way=5, n_shot=1, n_query=args.queries,
                             seed=rank_seed(0, rank()))
    torch.manual_seed(0)
    maml = MAML(Conv4(n_classes=5, norm="batch_stats"), inner_lr=0.4, batching=args.batching)
    optimizer = torch.optim.Adam(maml.parameters(), lr=1e-3)
    per_rank = args.meta_batch // world_size()
    if args.warmup:
        fit(maml, sampler, optimizer, iterations=args.warmup, meta_batch_size=per_rank,
            progress=False)
    began = time.perf_counter()
    fit(maml, sampler, optimizer, iterations=args.steps, meta_batch_size=per_rank,
        progress=False)
    seconds = time.perf_counter() - began
    if rank() == 0:
        print(json.dumps({"tasks_per_s": args.steps * args.meta_batch / seconds}))
    if world_size() > 1:
        torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(processes: int, threads: int, args: argparse.Namespace) -> float:
    port = str(_free_port())
    command = [sys.executable, __file__, "--worker", "--threads", str(threads),
               "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--meta-batch", str(args.meta_batch), "--queries", str(args.queries),
               "--batching", args.batching]
    procs = []
    for r in range(processes):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
        if processes > 1:
            env.update(WORLD_SIZE=str(processes), RANK=str(r), LOCAL_RANK=str(r),
                       MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        procs.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True))
    outputs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"a worker failed: {outputs}")
    return float(json.loads(outputs[0].strip().splitlines()[-1])["tasks_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--meta-batch", type=int, default=32, help="tasks per step in total")
    parser.add_argument("--queries", type=int, default=1, help="queries per class")
    parser.add_argument("--batching", default="loop", choices=("loop", "vmap", "auto"))
    parser.add_argument("--repeats", type=int, default=3, help="fresh runs per setting")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    if args.meta_batch % 2:
        raise SystemExit("--meta-batch must be even (split over 2 ranks)")
    load = os.getloadavg()[0]
    settings = {"1 process x 2 threads": (1, 2), "2 ranks x 1 thread (gloo)": (2, 1)}
    runs = {name: [_run(p, t, args) for _ in range(args.repeats)]
            for name, (p, t) in settings.items()}
    base = statistics.median(runs["1 process x 2 threads"])
    print(f"MAML 2nd order ({args.batching}), 5-way 1-shot, {args.queries} queries/class, "
          f"meta-batch {args.meta_batch}, {args.steps} timed steps, {args.repeats} fresh runs; "
          f"load average before: {load:.2f}")
    print(f"{'setting':28} {'tasks/s':>9} {'min-max':>13} {'ratio':>7}")
    results = {}
    for name, values in runs.items():
        median = statistics.median(values)
        results[name] = {"tasks_per_s": median, "all": values, "ratio": median / base}
        print(f"{name:28} {median:9.1f} {min(values):6.1f}-{max(values):<6.1f} "
              f"{median / base:6.2f}x")
    if args.json is not None:
        args.json.write_text(json.dumps({
            "settings": vars(args) | {"json": str(args.json)}, "results": results,
            "load_average_before": load, "torch": torch.__version__,
            "machine": platform.platform(), "cpus": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d")}, indent=1) + "\n")


if __name__ == "__main__":
    main()
