"""Test-time cost of MAML and Reptile: transductive vs non-transductive evaluation.

A reader waits for the 600 test episodes of every stored run. Issue 16 measured, on one
thread, 93 s (transductive) against 447 s (non-transductive) for the shipped MAML: the
non-transductive protocol re-ran the adaptation and classified each query in a Python loop.
The library now adapts once per episode and shares the adapted weights between both
protocols (:class:`companion.meta.BothProtocols`); each query goes in a batch with the support
set only (:func:`companion.meta.functional.predict_queries`), all queries at once under
``vmap`` or one after another, as ``query_batching`` says. This benchmark times, per episode:

* ``adapt``: the adaptation alone (``evaluation_weights``: 3 inner steps for MAML, Reptile's
  test-time steps);
* ``transductive``: adaptation + all queries in one batch;
* ``non-transductive``: adaptation + each query with the support set, the library's choice
  (``query_batching="auto"``: the loop on a CPU, ``vmap`` elsewhere);
* ``non-transductive, vmap over queries`` and ``non-transductive, query loop``: the two
  ways forced (checked to give the same predictions);
* ``both protocols``: what ``python -m companion.experiments`` runs: one adaptation, both
  predictions (:class:`~companion.meta.BothProtocols`).

The learners are built from the registered experiments' configurations
(``maml-omniglot-5w1s``, ``reptile-omniglot-5w1s``: Conv-4, batch statistics, 5-way 1-shot,
15 queries per class, their test-time inner steps), with random weights and random
Omniglot-shaped episodes: time does not depend on weights or pixel values. Each (learner,
mode) runs in ``--repeats`` fresh processes, interleaved, ``--episodes`` episodes each after
one warm-up episode; reported: the median over processes of the time per episode, the time
for 600 episodes, and the ratio to transductive evaluation. Refuses to run on a busy machine
(1-minute load above ``--max-load``) unless ``--force``.

    python benchmarks/eval_speed.py --json benchmarks/results/eval_speed_cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from maml_speed import machine_state  # noqa: E402  (a sibling script, not a package)

LEARNERS = {"MAML": "maml-omniglot-5w1s", "Reptile": "reptile-omniglot-5w1s"}
MODES = ["adapt", "transductive", "non-transductive", "non-transductive, vmap over queries",
         "non-transductive, query loop", "both protocols"]
FORCED = {"non-transductive, vmap over queries": "vmap", "non-transductive, query loop": "loop"}


def _episodes(cfg: Any, n: int, seed: int) -> list[Any]:
    from companion.data import Episode

    g = torch.Generator().manual_seed(seed)
    ways, shots, queries = cfg.test_n_way, cfg.test_n_shot, cfg.test_n_query
    labels = torch.arange(ways)
    return [Episode(torch.rand(ways * shots, 1, 28, 28, generator=g),
                    labels.repeat_interleave(shots),
                    torch.rand(ways * queries, 1, 28, 28, generator=g),
                    labels.repeat_interleave(queries)) for _ in range(n)]


def worker(learner_name: str, mode: str, episodes: int, threads: int) -> dict[str, float]:
    from companion.experiments.registry import experiment
    from companion.meta import BothProtocols
    from companion.meta.functional import predict_queries

    torch.set_num_threads(threads)
    exp = experiment(LEARNERS[learner_name])
    learner: Any = exp.build(exp.config, 0)
    learner.eval()
    model, both = learner.model, BothProtocols(learner)

    def run(ep: Any) -> None:
        if mode == "both protocols":
            both.evaluation_metrics(ep)
            return
        fast = dict(learner.evaluation_weights(ep))
        if mode == "transductive":
            predict_queries(model, fast, ep.support_x, ep.query_x, transductive=True)
        elif mode == "non-transductive":
            predict_queries(model, fast, ep.support_x, ep.query_x, transductive=False)
        elif mode in FORCED:
            predict_queries(model, fast, ep.support_x, ep.query_x, transductive=False,
                            query_batching=FORCED[mode])

    eps = _episodes(exp.config, episodes + 1, seed=0)
    run(eps[0])  # warm-up
    start = time.perf_counter()
    for ep in eps[1:]:
        run(ep)
    return {"seconds_per_episode": (time.perf_counter() - start) / episodes}


def check_loop_equals_vmap(threads: int) -> float:
    """Max absolute difference between the query-loop and the vmap non-transductive outputs."""
    from companion.experiments.registry import experiment
    from companion.meta.functional import predict_queries

    torch.set_num_threads(threads)
    worst = 0.0
    for name in LEARNERS.values():
        exp = experiment(name)
        learner: Any = exp.build(exp.config, 0)
        ep = _episodes(exp.config, 1, seed=1)[0]
        fast = dict(learner.evaluation_weights(ep))
        a, b = (predict_queries(learner.model, fast, ep.support_x, ep.query_x,
                                transductive=False, query_batching=how) for how in ("vmap", "loop"))
        worst = max(worst, float((a - b).abs().max()))
    return worst


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=30, help="timed episodes per process")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per cell")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--learners", nargs="*", default=list(LEARNERS), choices=list(LEARNERS))
    parser.add_argument("--modes", nargs="*", default=MODES, choices=MODES)
    parser.add_argument("--max-load", type=float, default=0.5)
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("episodes", "repeats", "threads"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.episodes, args.threads)))
        return
    if "transductive" not in args.modes:
        raise SystemExit("--modes must include 'transductive' (the ratios divide by it)")
    before = machine_state()
    busy = not before["load1"] <= args.max_load
    if busy and not args.force:
        raise SystemExit(f"machine busy: 1-minute load {before['load1']} > {args.max_load}; "
                         "wait for an idle machine or pass --force (marked 'machine busy')")
    diff = check_loop_equals_vmap(args.threads)
    if diff > 1e-4:
        raise SystemExit(f"query loop and vmap disagree by {diff:.2e}")
    runs: dict[str, dict[str, list[float]]] = {n: {m: [] for m in args.modes}
                                               for n in args.learners}
    for _ in range(args.repeats):
        for name in args.learners:
            for mode in args.modes:
                out = subprocess.run(
                    [sys.executable, __file__, "--worker", name, mode, "--episodes",
                     str(args.episodes), "--threads", str(args.threads)],
                    capture_output=True, text=True, check=False)
                if out.returncode != 0:
                    raise SystemExit(f"worker {name}/{mode} failed:\n{out.stderr[-3000:]}")
                runs[name][mode].append(
                    json.loads(out.stdout.strip().splitlines()[-1])["seconds_per_episode"])
    after = machine_state()
    results: dict[str, dict[str, dict[str, float]]] = {}
    print(f"{'learner':<9}{'mode':<38}{'ms/episode':>11}{'s/600 ep.':>11}{'vs transd.':>11}"
          f"{'spread':>9}")
    for name, modes in runs.items():
        base = statistics.median(modes["transductive"])
        results[name] = {}
        for mode, times in modes.items():
            med = statistics.median(times)
            spread = (max(times) - min(times)) / med
            results[name][mode] = {"seconds_per_episode": med, "seconds_per_600": 600 * med,
                                   "ratio_to_transductive": med / base, "spread": spread}
            print(f"{name:<9}{mode:<38}{1000 * med:>11.1f}{600 * med:>11.1f}"
                  f"{med / base:>10.2f}x{100 * spread:>8.0f}%")
    print(f"{args.threads} thread(s), {args.episodes} episodes x {args.repeats} fresh processes, "
          f"median; torch {torch.__version__}; query loop = vmap within {diff:.1e}"
          + ("; MACHINE BUSY" if busy else ""))
    if args.json:
        report = {"setting": {k: v for k, v in vars(args).items() if k not in ("worker", "json")},
                  "machine": {"busy": busy, "before": before, "after": after,
                              "torch": torch.__version__},
                  "loop_vs_vmap_max_abs_diff": diff, "results": results, "per_process": runs}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
