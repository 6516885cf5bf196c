"""One rank of a two-process run of a small MAML experiment, optionally stopped by a Ctrl-C in
step 3 (``stop-in-step-3``) or expected to refuse a bad parked copy (``expect-failure``), and
optionally taking a parked checkpoint back (tests/experiments/test_park.py)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from companion.engine.distributed import rank
from companion.experiments import get_config, run_experiment
from companion.meta.maml import MAML
from tests.experiments.interrupt import crashing_training_step

# small enough to train several times in a test, with a checkpoint every 2 steps
SMALL = replace(get_config("maml-sinusoid"), iterations=6, checkpoint_every=2,
                meta_batch_size=4, test_episodes=4, test_shots=(5,))


def main(where: str, stop: str, parked: str) -> None:
    if stop == "stop-in-step-3":
        MAML.training_step = crashing_training_step(MAML.training_step)  # type: ignore[method-assign]
    try:
        run_experiment(SMALL, results_dir=Path(where) / "r", runs_dir=Path(where) / "runs",
                       parked=parked or None, progress=False, device="cpu")
    except KeyboardInterrupt:
        if stop != "stop-in-step-3":
            raise
    except (ValueError, RuntimeError) as err:  # each rank says why, none waits for ever
        expected = ("different configuration" if rank() == 0 else "rank 0 could not prepare")
        if stop != "expect-failure" or expected not in str(err):
            raise
    else:
        if stop == "expect-failure":
            raise SystemExit("the run did not fail")


if __name__ == "__main__":
    main(*sys.argv[1:])
