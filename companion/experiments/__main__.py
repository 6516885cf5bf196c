"""Command line: run a named experiment and write its result file.

    python -m companion.experiments list
    python -m companion.experiments run maml-omniglot-5w1s --seed 0 --device cuda
    python -m companion.experiments show results/maml-omniglot-5w1s-seed0.json

An interrupted ``run`` resumes from its checkpoint when started again with the same options.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from companion.experiments.configs import CONFIGS, get_config
from companion.experiments.runner import result_path, run_experiment
from companion.utils import read_record


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m companion.experiments", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the named experiments and their settings")
    run = sub.add_parser("run", help="train, test and write results/<name>-seed<k>.json",
                         description="Train (resumably), test on 600 episodes, write results.")
    run.add_argument("name", choices=sorted(CONFIGS), metavar="NAME",
                     help="a named experiment (see `list`)")
    run.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    run.add_argument("--device", default=None,
                     help="cpu, cuda, cuda:1, ... (default: $COMPANION_DEVICE, else CUDA if "
                          "available, else CPU)")
    run.add_argument("--iterations", type=int, default=None,
                     help="outer steps (default: the configuration's; the result file "
                          "records the value used)")
    run.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch")
    run.add_argument("--results", default="results", help="folder for result files")
    run.add_argument("--runs", default="runs", help="folder for checkpoints")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    show = sub.add_parser("show", help="print a result file's test numbers and provenance")
    show.add_argument("path")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        for name, cfg in sorted(CONFIGS.items()):
            fields = {k: v for k, v in asdict(cfg).items() if k != "name"}
            print(f"{name}\n    {fields}")
        return 0
    if args.command == "show":
        record = read_record(args.path)
        result = record["result"]
        summary = {k: result[k] for k in ("test", "mse_vs_steps", "protocol", "iterations",
                                           "train_seconds", "device", "command")
                   if k in result}
        print(json.dumps({**summary, "git_revision": record["git_revision"],
                          "created": record["created"]}, indent=1))
        return 0
    cfg = get_config(args.name)
    if args.iterations is not None:
        if args.iterations < 1:
            print("error: --iterations must be >= 1", file=sys.stderr)
            return 2
        cfg = cfg.with_iterations(args.iterations)
    result = run_experiment(cfg, seed=args.seed, device=args.device, results_dir=args.results,
                            runs_dir=args.runs, threads=args.threads, progress=not args.quiet)
    print(f"wrote {result_path(cfg, args.seed, args.results)}")
    if "test" in result:
        t = result["test"]
        print(f"{cfg.name}: {100 * t['mean']:.2f} ± {100 * t['ci95']:.2f}% "
              f"({t['n_episodes']} episodes) on {result['device']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
