"""MAML meta-training speed and memory: the library's execution paths against a plain reference.

Workload (default): Conv-4 (64 channels, batch-statistics normalisation), 5-way 1-shot, 15
queries per class, meta-batch 32, one inner SGD step (lr 0.4), Adam outer step; random
Omniglot-shaped inputs (28x28, one channel: speed does not depend on pixel values). One timed
iteration is one full meta-training step (inner loop, query loss, backward, outer step).

What makes the numbers trustworthy:

* every implementation runs in ``--repeats`` fresh processes (default 3), interleaved
  (A B C A B C ...) so that a drift of the machine hits all alike; each process warms up
  (``--warmup``, default 2) and then times ``--steps`` iterations (default 10);
* reported: the median over processes of each process's median tasks/s, and the spread
  (min - max over processes); the peak resident set size of the process
  (``ru_maxrss``, the real peak, model, batch and torch included) or, on CUDA,
  ``torch.cuda.max_memory_allocated``;
* an idle check before starting: the 1-minute load average (``/proc/loadavg``) and the CPU
  time used by other processes over one second (``/proc/stat``). Above ``--max-load``
  (default 0.5) the benchmark refuses to run; with ``--force`` it runs and marks the result
  "machine busy" in the table and the JSON;
* a float64 meta-gradient check of every implementation, each in its own process, against
  :func:`reference_step`: a per-task loop with ``torch.func.functional_call`` and one
  ``backward`` per task (the way learn2learn and higher users compute MAML), written here,
  independently of ``companion.meta``. Tolerance ``--tol`` (1e-9), max absolute difference.

Every implementation starts from the same weights: a plain ``nn.Sequential`` Conv-4 (with
``nn.BatchNorm2d(track_running_stats=False)``), copied into ``companion.Conv4`` by position.

    python benchmarks/maml_speed.py                      # CPU, 15 queries per class
    python benchmarks/maml_speed.py --queries 1          # the MAML paper's Omniglot setting
    python benchmarks/maml_speed.py --device cuda --variants "loop, 2nd order" "vmap, 2nd order"
    python benchmarks/peers.py --peers-python /tmp/peers-venv/bin/python   # with learn2learn
    python benchmarks/maml_speed.py --check-only         # the float64 gradient check alone

The peers (learn2learn 0.2.0, higher 0.2.1) run only with ``--peers-python``, an interpreter
of the separate environment made by ``benchmarks/peers_env.sh``; the project never imports
them. This file imports only torch and the standard library at the top, so the peers'
interpreter can run its workers.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

ROOT = Path(__file__).resolve().parents[1]
INNER_LR = 0.4
OUTER_LR = 1e-3

VARIANTS: dict[str, dict[str, Any]] = {
    # name: {"impl": who computes it, then options}; "companion" options go to MAML(...)
    "reference loop, 2nd order": {"impl": "reference"},
    "reference loop, 1st order": {"impl": "reference", "first_order": True},
    "loop, 2nd order": {"impl": "companion", "batching": "loop"},
    "auto, 2nd order": {"impl": "companion", "batching": "auto"},
    "vmap, 2nd order": {"impl": "companion", "batching": "vmap"},
    "loop, 1st order": {"impl": "companion", "batching": "loop", "first_order": True},
    "vmap, 1st order": {"impl": "companion", "batching": "vmap", "first_order": True},
    "loop, 2nd order, backward per task": {"impl": "companion", "batching": "loop",
                                           "backward_chunk": 1},
    "loop, 2nd order, backward per 8 tasks": {"impl": "companion", "batching": "loop",
                                              "backward_chunk": 8},
    "vmap, 2nd order, backward per 8 tasks": {"impl": "companion", "batching": "vmap",
                                              "backward_chunk": 8},
    "vmap, 2nd order, backward per 4 tasks": {"impl": "companion", "batching": "vmap",
                                              "backward_chunk": 4},
    "vmap, 2nd order, backward per 2 tasks": {"impl": "companion", "batching": "vmap",
                                              "backward_chunk": 2},
    "vmap, 1st order, backward per 4 tasks": {"impl": "companion", "batching": "vmap",
                                              "first_order": True, "backward_chunk": 4},
    "vmap, 1st order, backward per 8 tasks": {"impl": "companion", "batching": "vmap",
                                              "first_order": True, "backward_chunk": 8},
    "loop, 2nd order, batched first step": {"impl": "companion", "batching": "loop",
                                            "batched_first_step": True},
    "loop, 1st order, backward per task": {"impl": "companion", "batching": "loop",
                                           "first_order": True, "backward_chunk": 1},
    # ANIL adapts only the head: another meta-gradient than the reference's, so not checked
    "loop, ANIL": {"impl": "companion", "batching": "loop", "adapt": "head", "check": False},
    "vmap, ANIL": {"impl": "companion", "batching": "vmap", "adapt": "head", "check": False},
    "loop, Meta-SGD": {"impl": "companion", "batching": "loop", "learn_inner_lr": True},
    "vmap, Meta-SGD": {"impl": "companion", "batching": "vmap", "learn_inner_lr": True},
    "learn2learn, 2nd order": {"impl": "learn2learn"},
    "learn2learn, 1st order": {"impl": "learn2learn", "first_order": True},
    "higher, 2nd order": {"impl": "higher"},
    # Reptile's paper setting, whatever the options above: 5 tasks of 5 x 10 images, 5 inner
    # Adam steps on minibatches of 10, then the outer SGD step. No gradient check (not MAML).
    "Reptile (paper setting)": {"impl": "reptile", "check": False},
}
PEERS = ("learn2learn", "higher")
DEFAULT_VARIANTS = ["reference loop, 2nd order", "loop, 2nd order", "auto, 2nd order",
                    "vmap, 2nd order", "loop, 1st order", "vmap, 1st order",
                    "loop, 2nd order, backward per task", "loop, 2nd order, batched first step"]
BASELINE = "reference loop, 2nd order"


# ---------------------------------------------------------------- the workload (torch only)

def plain_conv4(n_classes: int, channels: int = 64) -> nn.Sequential:
    """The usual flat ``nn.Sequential`` Conv-4 with batch-statistics BatchNorm."""
    layers: list[nn.Module] = []
    for c_in in (1, channels, channels, channels):
        layers += [nn.Conv2d(c_in, channels, 3, padding=1),
                   nn.BatchNorm2d(channels, track_running_stats=False), nn.ReLU(),
                   nn.MaxPool2d(2)]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels, n_classes))


def make_batch(args: argparse.Namespace, tasks: int, dtype: torch.dtype, device: torch.device,
               seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Random Omniglot-shaped tasks: ``[tasks, n, 1, 28, 28]`` inputs, ``[tasks, n]`` labels."""
    g = torch.Generator().manual_seed(seed)
    n_s, n_q = args.ways * args.shots, args.ways * args.queries
    sy = torch.arange(args.ways).repeat_interleave(args.shots).repeat(tasks, 1)  # [tasks, n_s]
    qy = torch.arange(args.ways).repeat_interleave(args.queries).repeat(tasks, 1)  # [tasks, n_q]
    return (torch.rand(tasks, n_s, 1, 28, 28, generator=g, dtype=dtype).to(device),
            sy.to(device),
            torch.rand(tasks, n_q, 1, 28, 28, generator=g, dtype=dtype).to(device),
            qy.to(device))


def reference_step(net: nn.Module, batch: tuple[Tensor, Tensor, Tensor, Tensor],
                   optimizer: torch.optim.Optimizer, *, inner_lr: float, inner_steps: int,
                   first_order: bool) -> None:
    """One MAML meta-training step, the plain way: a per-task loop, one backward per task.

    ``fast = theta - lr * grad L_support(theta)`` with ``torch.autograd.grad`` (keeping the
    graph for second order), the query loss of the task divided by the number of tasks,
    ``backward`` at once (so only one task's graph is alive), then the outer step.
    Independent of ``companion.meta`` on purpose: it is the ground truth of the check.
    """
    params: dict[str, Tensor] = dict(net.named_parameters())
    optimizer.zero_grad(set_to_none=True)
    support_x, support_y, query_x, query_y = batch
    n_tasks = support_x.shape[0]
    for sx, sy, qx, qy in zip(support_x, support_y, query_x, query_y, strict=True):
        fast = params
        for _ in range(inner_steps):
            loss = F.cross_entropy(functional_call(net, fast, (sx,)), sy)
            grads = torch.autograd.grad(loss, list(fast.values()), create_graph=not first_order)
            fast = {k: v - inner_lr * g for (k, v), g in zip(fast.items(), grads, strict=True)}
        query_loss = F.cross_entropy(functional_call(net, fast, (qx,)), qy)
        (query_loss / n_tasks).backward()
    optimizer.step()


# ---------------------------------------------------------------- one implementation per process

def _stub_missing_imports(roots: tuple[str, ...]) -> None:
    """Let ``import learn2learn`` succeed without its data-set dependencies.

    learn2learn imports torchvision, gym, PIL, scipy, pandas, requests, tqdm and qpth at
    import time; MAML uses none of them. Each one that is not installed is replaced, in this
    process only, by a module whose every attribute is an empty class.
    """
    missing = {r for r in roots if importlib.util.find_spec(r) is None}

    class Stub(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            if name.startswith("__"):
                raise AttributeError(name)
            return type(name, (), {"__init__": lambda self, *a, **k: None})

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
            if fullname.split(".")[0] in missing:
                return importlib.util.spec_from_loader(fullname, self, is_package=True)
            return None

        def create_module(self, spec: Any) -> types.ModuleType:
            return Stub(spec.name)

        def exec_module(self, module: types.ModuleType) -> None:
            module.__path__ = []

    sys.meta_path.insert(0, Finder())


def build_step(args: argparse.Namespace, name: str, dtype: torch.dtype, device: torch.device,
               tasks: int, outer: Callable[[list[nn.Parameter]], torch.optim.Optimizer]
               ) -> tuple[Callable[[], None], list[nn.Parameter]]:
    """The meta-training step of implementation ``name`` and its meta-parameters, in order."""
    options = dict(VARIANTS[name])
    impl = options.pop("impl")
    options.pop("check", None)
    first_order = bool(options.get("first_order", False))
    plain = plain_conv4(args.ways)  # global RNG seeded by the caller: same weights everywhere
    plain = plain.to(device=device, dtype=dtype)
    batch = make_batch(args, tasks, dtype, device)
    steps = args.inner_steps
    if impl == "reference":
        opt = outer(list(plain.parameters()))
        return (lambda: reference_step(plain, batch, opt, inner_lr=INNER_LR, inner_steps=steps,
                                       first_order=first_order), list(plain.parameters()))
    if impl == "companion":
        from companion import Conv4
        from companion.data import EpisodeBatch
        from companion.meta.maml import MAML
        from companion.models.conv4 import load_state_dict_by_position

        net = Conv4(n_classes=args.ways, norm="batch_stats").to(device=device, dtype=dtype)
        load_state_dict_by_position(net, plain.state_dict())
        maml = MAML(net, inner_lr=INNER_LR, inner_steps=steps, **options)
        episodes = EpisodeBatch(*batch)
        params = list(maml.parameters())
        opt = outer(params)

        def companion_step() -> None:
            maml.training_step(episodes, opt)

        return companion_step, params
    if impl == "learn2learn":
        _stub_missing_imports(("torchvision", "gym", "PIL", "scipy", "pandas", "requests",
                               "tqdm", "qpth"))
        import learn2learn as l2l

        wrapped = l2l.algorithms.MAML(plain, lr=INNER_LR, first_order=first_order)
        opt = outer(list(wrapped.parameters()))

        def l2l_step() -> None:
            opt.zero_grad(set_to_none=True)
            for sx, sy, qx, qy in zip(*batch, strict=True):
                learner = wrapped.clone()
                for _ in range(steps):
                    learner.adapt(F.cross_entropy(learner(sx), sy))
                (F.cross_entropy(learner(qx), qy) / tasks).backward()
            opt.step()

        return l2l_step, list(wrapped.parameters())
    if impl == "higher":
        import higher

        opt = outer(list(plain.parameters()))
        inner_opt = torch.optim.SGD(plain.parameters(), lr=INNER_LR)

        def higher_step() -> None:
            opt.zero_grad(set_to_none=True)
            for sx, sy, qx, qy in zip(*batch, strict=True):
                with higher.innerloop_ctx(plain, inner_opt, copy_initial_weights=False) as (
                        fnet, diffopt):
                    for _ in range(steps):
                        diffopt.step(F.cross_entropy(fnet(sx), sy))
                    (F.cross_entropy(fnet(qx), qy) / tasks).backward()
            opt.step()

        return higher_step, list(plain.parameters())
    raise ValueError(f"unknown implementation {impl!r}")


def _reptile_step(device: torch.device) -> tuple[Callable[[], None], int]:
    from companion import Conv4
    from companion.data import EpisodeBatch
    from companion.meta import Reptile

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

    return step, tasks


def time_worker(args: argparse.Namespace) -> dict[str, float]:
    """Time one implementation (inside its own process): per-iteration seconds and peak memory."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    baseline_mb = _peak_rss_mb()
    if VARIANTS[args.variant]["impl"] == "reptile":
        step, tasks = _reptile_step(device)
    else:
        tasks = args.meta_batch
        step, _ = build_step(args, args.variant, torch.float32, device, tasks,
                             lambda p: torch.optim.Adam(p, lr=OUTER_LR))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(args.warmup):
        step()
    _sync(device)
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"tasks_per_s": tasks / median, "seconds_per_step": median,
            "step_min_s": min(times), "step_max_s": max(times),
            "peak_mb": (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
                        else _peak_rss_mb()),
            "rss_before_mb": baseline_mb}


def check_worker(args: argparse.Namespace) -> None:
    """Write the float64 meta-gradient of one implementation to ``args.check_out``."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    step, params = build_step(args, args.variant, torch.float64, device, args.check_tasks,
                              lambda p: torch.optim.SGD(p, lr=0.0))  # lr 0: .grad is left
    step()
    torch.save([p.grad.detach().cpu() if p.grad is not None else torch.zeros_like(p).cpu()
                for p in params], args.check_out)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ---------------------------------------------------------------- the parent process

def machine_state() -> dict[str, float | int]:
    """1-minute load average and the share of all CPUs busy over one second (others' work)."""

    def cpu_times() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields), idle

    try:
        with open("/proc/loadavg") as f:
            load1 = float(f.read().split()[0])
        total0, idle0 = cpu_times()
        time.sleep(1.0)
        total1, idle1 = cpu_times()
    except OSError:  # not Linux: no check possible
        return {"load1": float("nan"), "busy_fraction": float("nan"),
                "cpus": os.cpu_count() or 1}
    busy = 1 - (idle1 - idle0) / max(total1 - total0, 1)
    return {"load1": load1, "busy_fraction": round(busy, 3), "cpus": os.cpu_count() or 1}


def _python_for(name: str, args: argparse.Namespace) -> str:
    if VARIANTS[name]["impl"] in PEERS:
        if not args.peers_python:
            raise SystemExit(f"{name!r} needs --peers-python (see benchmarks/peers_env.sh)")
        return args.peers_python
    return sys.executable


def _run_worker(name: str, args: argparse.Namespace, extra: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([_python_for(name, args), __file__, *_worker_argv(args),
                           "--variant", name, *extra], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"worker for {name!r} failed:\n{done.stderr[-4000:]}")
    return done.stdout


def gradient_check(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Max absolute float64 meta-gradient difference of each implementation to the reference."""
    names = [n for n in args.variants if VARIANTS[n].get("check", True)]
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        references: dict[bool, list[Tensor]] = {}
        for first_order in sorted({bool(VARIANTS[n].get("first_order")) for n in names}):
            ref = "reference loop, 1st order" if first_order else BASELINE
            out = Path(tmp) / f"ref{int(first_order)}.pt"
            _run_worker(ref, args, ["--check-out", str(out)])
            references[first_order] = torch.load(out, weights_only=True)
        for i, name in enumerate(names):
            out = Path(tmp) / f"{i}.pt"
            _run_worker(name, args, ["--check-out", str(out)])
            got = torch.load(out, weights_only=True)
            want = references[bool(VARIANTS[name].get("first_order"))]
            n = len(want)  # Meta-SGD has extra parameters (its learned rates) at the end
            diff = max(float((g - w).abs().max()) for g, w in zip(got[:n], want, strict=True))
            results[name] = {"max_abs_diff": diff, "ok": diff <= args.tol}
    return results


def main(argv: list[str] | None = None, defaults: dict[str, Any] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ways", type=int, default=5)
    parser.add_argument("--shots", type=int, default=1)
    parser.add_argument("--queries", type=int, default=15, help="query images per class")
    parser.add_argument("--meta-batch", type=int, default=32)
    parser.add_argument("--inner-steps", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10, help="timed iterations per process")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per variant")
    parser.add_argument("--variants", nargs="*", default=DEFAULT_VARIANTS,
                        choices=list(VARIANTS), metavar="VARIANT",
                        help=f"any of {list(VARIANTS)}")
    parser.add_argument("--baseline", default=BASELINE, help="the row the ratios divide by")
    parser.add_argument("--peers-python", help="interpreter with learn2learn and higher")
    parser.add_argument("--max-load", type=float, default=0.5,
                        help="refuse to run above this 1-minute load average")
    parser.add_argument("--force", action="store_true",
                        help="run on a busy machine anyway (the result is marked busy)")
    parser.add_argument("--no-check", action="store_true", help="skip the gradient check")
    parser.add_argument("--check-only", action="store_true",
                        help="only the gradient check (no timing, so no idle check)")
    parser.add_argument("--check-tasks", type=int, default=4,
                        help="tasks in the float64 gradient check")
    parser.add_argument("--tol", type=float, default=1e-9)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # internal: worker mode
    parser.add_argument("--check-out", help=argparse.SUPPRESS)  # internal: check mode
    if defaults:
        parser.set_defaults(**defaults)
    args = parser.parse_args(argv)
    if args.variant:
        if args.check_out:
            check_worker(args)
        else:
            print(json.dumps(time_worker(args)))
        return
    if args.baseline not in args.variants:
        raise SystemExit(f"--baseline {args.baseline!r} is not among --variants")

    if args.check_only:
        checks = gradient_check(args)
        for name, check in checks.items():
            print(f"{name:<40}{'ok' if check['ok'] else 'WRONG'} ({check['max_abs_diff']:.1e})")
        if args.json:
            Path(args.json).write_text(json.dumps({"setting": vars(args), "gradient_check":
                                                   checks}, indent=2) + "\n")
        if not all(c["ok"] for c in checks.values()):
            raise SystemExit("a meta-gradient differs from the reference")
        return
    before = machine_state()
    busy = not before["load1"] <= args.max_load  # NaN (no /proc) counts as busy
    if busy and not args.force:
        raise SystemExit(f"machine busy: 1-minute load {before['load1']} > {args.max_load} "
                         f"(CPUs {100 * before['busy_fraction']:.0f}% busy); timings would "
                         "not mean anything. Wait for an idle machine, or pass --force "
                         "(the result is then marked 'machine busy').")
    checks = {} if args.no_check else gradient_check(args)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in args.variants}
    for _ in range(args.repeats):
        for name in args.variants:  # interleaved, so drift hits every variant alike
            runs[name].append(json.loads(_run_worker(name, args, []).strip().splitlines()[-1]))
    after = machine_state()
    results = {name: summarise(per_process, checks.get(name))
               for name, per_process in runs.items()}
    report = {"setting": {k: v for k, v in vars(args).items()
                          if k not in ("variant", "check_out", "json")},
              "machine": {"busy": busy, "before": before, "after": after,
                          "device": _device_name(args), "torch": torch.__version__,
                          "python": platform.python_version(),
                          "threads": torch.get_num_threads()},
              "results": results, "per_process": runs,
              "threads": torch.get_num_threads()}  # also at the top, where the book reads it
    print_table(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


def summarise(per_process: list[dict[str, float]],
              check: dict[str, Any] | None) -> dict[str, Any]:
    """Median over processes and the spread (min - max), peak memory, gradient check."""
    rates = [r["tasks_per_s"] for r in per_process]
    return {"tasks_per_s": statistics.median(rates), "tasks_per_s_min": min(rates),
            "tasks_per_s_max": max(rates),
            "seconds_per_step": statistics.median(r["seconds_per_step"] for r in per_process),
            "peak_mb": statistics.median(r["peak_mb"] for r in per_process),
            "gradient_check": check or "not run"}


def _device_name(args: argparse.Namespace) -> str:
    if args.device.startswith("cuda"):
        return torch.cuda.get_device_name()
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores), {torch.get_num_threads()} threads"


def print_table(report: dict[str, Any]) -> None:
    s, m = report["setting"], report["machine"]
    print(f"MAML meta-training, Conv-4, {s['ways']}-way {s['shots']}-shot, {s['queries']} "
          f"queries/class, meta-batch {s['meta_batch']}, {s['inner_steps']} inner step(s); "
          f"{m['device']}; torch {m['torch']}; median of {s['repeats']} processes x "
          f"{s['steps']} iterations")
    if m["busy"]:
        print(f"MACHINE BUSY (load {m['before']['load1']}, CPUs "
              f"{100 * m['before']['busy_fraction']:.0f}% busy before): these timings are "
              "not results")
    base = report["results"][s["baseline"]]["tasks_per_s"]
    print(f"{'implementation':<40}{'tasks/s':>9}{'min-max':>14}{'x ' + 'baseline':>12}"
          f"{'peak MB':>9}  grad check")
    for name, r in report["results"].items():
        check = r["gradient_check"]
        verdict = (check if isinstance(check, str) else
                   f"{'ok' if check['ok'] else 'WRONG'} ({check['max_abs_diff']:.1e})")
        spread = f"{r['tasks_per_s_min']:.1f}-{r['tasks_per_s_max']:.1f}"
        print(f"{name:<40}{r['tasks_per_s']:>9.1f}{spread:>14}{r['tasks_per_s'] / base:>12.2f}"
              f"{r['peak_mb']:>9.0f}  {verdict}")
    print(f"(x baseline: against {s['baseline']!r})")


def _worker_argv(args: argparse.Namespace) -> list[str]:
    """The setting, as command-line options for a worker process."""
    options = ("device", "ways", "shots", "queries", "meta_batch", "inner_steps", "warmup",
               "steps", "check_tasks")
    return [item for name in options
            for item in (f"--{name.replace('_', '-')}", str(getattr(args, name)))]


if __name__ == "__main__":
    main()
