"""Command line: run a named experiment and write its result file.

    python -m companion.experiments list
    python -m companion.experiments run maml-omniglot-5w1s --seed 0 --device cuda
    python -m companion.experiments show results/maml-omniglot-5w1s-seed0.json
    python -m companion.experiments estimate maml-omniglot-20w1s --threads 2
    python -m companion.experiments park maml-omniglot-20w5s --seed 0

An interrupted ``run`` (Ctrl-C: exit status 130) resumes from its checkpoint when started
again with the same options. Checkpoints go to ``--runs``, default ``$COMPANION_RUNS_DIR``,
else ``~/.cache/companion/runs`` (``$XDG_CACHE_HOME`` honoured). On a machine that will be
laid anew whole, ``park`` copies the checkpoint into ``parked/`` in the working tree (commit
it); ``run`` takes it back where it is further along than the runs folder's checkpoint or that
has none (:mod:`companion.experiments.park`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from companion.experiments.base import ExperimentConfig
from companion.experiments.configs import CONFIGS, get_config
from companion.experiments.estimate import estimate_run
from companion.experiments.park import PARKED_DIR, ParkError, park
from companion.experiments.paths import result_path, run_dir
from companion.experiments.runner import run_experiment

INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a Ctrl-C


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
    run.add_argument("--runs", default=None,
                     help="folder for checkpoints (default: $COMPANION_RUNS_DIR, else "
                          "~/.cache/companion/runs)")
    run.add_argument("--parked", default=PARKED_DIR,
                     help="folder of parked checkpoints: one further along than the runs "
                          "folder's is taken back, and it is deleted once the result is "
                          "written (default: parked)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    estimate = sub.add_parser(
        "estimate", help="measure how long `run NAME` would take here (writes nothing)",
        description="Time a few training steps and test episodes of NAME on this machine and "
                    "scale them to its budget; nothing is written.")
    estimate.add_argument("name", choices=sorted(CONFIGS), metavar="NAME",
                          help="a named experiment (see `list`)")
    estimate.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    estimate.add_argument("--device", default=None, help="as for `run`")
    estimate.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch")
    estimate.add_argument("--steps", type=int, default=5,
                          help="timed training steps after one warm-up (default 5)")
    estimate.add_argument("--episodes", type=int, default=10,
                          help="validation and test episodes actually run (default 10)")
    parking = sub.add_parser(
        "park", help="copy an unfinished run's checkpoint into parked/ (to commit it)",
        description="Copy the checkpoint folder of NAME from the runs folder to "
                    "<parked>/<run id>, so that a commit carries it to a machine laid anew; "
                    "`run` there resumes from it.")
    parking.add_argument("name", choices=sorted(CONFIGS), metavar="NAME",
                         help="a named experiment (see `list`)")
    parking.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parking.add_argument("--iterations", type=int, default=None, help="as given to `run`")
    parking.add_argument("--runs", default=None, help="as for `run`")
    parking.add_argument("--parked", default=PARKED_DIR, help="target folder (default: parked)")
    parking.add_argument("--force", action="store_true",
                         help="replace a parked copy that is further along")
    show = sub.add_parser("show", help="print a result file's test numbers and provenance")
    show.add_argument("path", help="a result file, results/<name>-seed<k>.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        for name, cfg in sorted(CONFIGS.items()):
            fields = {k: v for k, v in asdict(cfg).items() if k != "name"}
            print(f"{name}  ({type(cfg).__name__})\n    {fields}")
        return 0
    if args.command == "show":
        return _show(Path(args.path))
    cfg = get_config(args.name)
    if args.command == "estimate":
        return _estimate(cfg, args)
    if args.iterations is not None:
        if args.iterations < 1:
            print("error: --iterations must be >= 1", file=sys.stderr)
            return 2
        cfg = cfg.with_iterations(args.iterations)
    if args.command == "park":
        return _park(cfg, args)
    return _run(cfg, args)


def _run(cfg: ExperimentConfig, args: argparse.Namespace) -> int:
    """Train (resuming), test and write the result; 130 after a Ctrl-C, 2 for a bad parked
    copy."""
    old = Path("runs") / run_dir(cfg, args.seed, "runs").name
    if args.runs is None and old.is_dir() and not run_dir(cfg, args.seed).exists():
        print(f"note: a checkpoint from before checkpoints moved to the user cache is in "
              f"{old}; add `--runs runs` to resume it", file=sys.stderr)
    try:
        result = run_experiment(cfg, seed=args.seed, device=args.device,
                                results_dir=args.results, runs_dir=args.runs,
                                threads=args.threads, progress=not args.quiet,
                                parked=args.parked)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the last checkpoint in {run_dir(cfg, args.seed, args.runs)} "
              "resumes when the same command is started again (on a machine that will be laid "
              "anew, `park` it first)", file=sys.stderr)
        return INTERRUPTED
    except ParkError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {result_path(cfg, args.seed, args.results)}")
    if "test" in result:
        t = result["test"]
        print(f"{cfg.name}: {100 * t['mean']:.2f} ± {100 * t['ci95']:.2f}% "
              f"({t['n_episodes']} episodes) on {result['device']}")
    return 0


def _park(cfg: ExperimentConfig, args: argparse.Namespace) -> int:
    """Park a run's checkpoint folder; exit status 2 with a message when there is none."""
    try:
        target, step = park(cfg, args.seed, runs=args.runs, parked=args.parked,
                            force=args.force)
    except ParkError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"parked {cfg.name} (seed {args.seed}) at step {step} of {cfg.iterations} in "
          f"{target}; commit that folder: `run` with the same options resumes from it")
    return 0


def _estimate(cfg: ExperimentConfig, args: argparse.Namespace) -> int:
    """Print the measured estimate; exit status 2 with a message for bad options."""
    if args.threads is not None and args.threads < 1:
        print("error: --threads must be >= 1", file=sys.stderr)
        return 2
    previous = torch.get_num_threads()
    try:
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        estimate = estimate_run(cfg, seed=args.seed, device=args.device, steps=args.steps,
                                episodes=args.episodes)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        torch.set_num_threads(previous)
    print(estimate.report(cfg))
    return 0


def _show(path: Path) -> int:
    """Print a result file's summary; exit status 2 with a message for anything else."""
    record = _read_shown(path)
    if isinstance(record, str):
        print(f"error: {record}", file=sys.stderr)
        return 2
    result = record["result"]
    summary = {k: result[k] for k in ("test", "mse_vs_steps", "protocol", "iterations",
                                       "train_seconds", "device", "command")
               if k in result}
    print(json.dumps({**summary, "git_revision": record.get("git_revision"),
                      "created": record.get("created")}, indent=1))
    return 0


def _read_shown(path: Path) -> dict[str, Any] | str:
    """The record at ``path``, or what is wrong with it."""
    if path.suffix == ".pt":
        return (f"{path} holds trained weights, not a result; `show` reads the result file "
                f"beside it: {path.with_suffix('.json')}")
    if path.suffix != ".json":
        return f"{path} is not a result file; `show` reads results/<name>-seed<k>.json"
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return f"{path} does not exist"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return f"cannot read {path} ({err}); write it anew with the run command that made it"
    if not isinstance(record, dict) or not isinstance(record.get("result"), dict):
        return f"{path} is not a result file written by `python -m companion.experiments run`"
    return record


if __name__ == "__main__":
    sys.exit(main())
