"""Where a named run keeps its files: the run id, its checkpoint folder, its result file, and
the configuration stamp that ties a checkpoint folder to one configuration.

Chapter: Appendix (reproducing the results).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from companion.experiments.configs import (
    CONFIGS,
    ExperimentConfig,
    key_differences,
    same_experiment,
)

__all__ = ["CHECKPOINT", "REVISIONS", "RUNS_ENV", "STAMP", "config_differences",
           "different_configuration", "result_path", "run_dir", "run_id", "runs_dir"]

RUNS_ENV = "COMPANION_RUNS_DIR"
# the files of a run folder: the training loop's checkpoint, the configuration it belongs to,
# and the code revisions that have trained it
CHECKPOINT, STAMP, REVISIONS = "checkpoint.pt", "config.json", "revisions.txt"


def runs_dir() -> Path:
    """Where checkpoints go by default: ``$COMPANION_RUNS_DIR``, else
    ``$XDG_CACHE_HOME/companion/runs``, else ``~/.cache/companion/runs`` (outside the
    checkout, which may be laid anew)."""
    if os.environ.get(RUNS_ENV):
        return Path(os.environ[RUNS_ENV])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "companion" / "runs"


def run_id(cfg: ExperimentConfig, seed: int) -> str:
    """``<name>-seed<k>``, with ``-it<N>`` when the iterations differ from the registry's."""
    registered = CONFIGS.get(cfg.name)
    budget = "" if registered is not None and registered == cfg else f"-it{cfg.iterations}"
    return f"{cfg.name}{budget}-seed{seed}"


def result_path(cfg: ExperimentConfig, seed: int, results_dir: str | os.PathLike[str]) -> Path:
    return Path(results_dir) / f"{run_id(cfg, seed)}.json"


def run_dir(cfg: ExperimentConfig, seed: int,
            runs: str | os.PathLike[str] | None = None) -> Path:
    """The checkpoint folder of a run (under ``runs``, default :func:`runs_dir`)."""
    return Path(runs if runs is not None else runs_dir()) / run_id(cfg, seed)


def config_differences(folder: Path, key: dict[str, Any]) -> list[str] | None:
    """How the configuration stamped in ``folder/config.json`` differs from ``key``: the
    differing fields (empty when it is the same experiment), or None when there is no stamp.

    Raises:
        ValueError: the stamp exists but is not readable JSON of a configuration.
    """
    stamp = folder / STAMP
    try:
        stored = json.loads(stamp.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read {stamp} ({err})") from None
    if not isinstance(stored, dict):
        raise ValueError(f"{stamp} does not hold a configuration")
    return [] if same_experiment(stored, key) else key_differences(stored, key) or ["format"]


def different_configuration(folder: Path, key: dict[str, Any]) -> str | None:
    """A sentence saying that ``folder`` holds a run of a different configuration than
    ``key``, or None (the same configuration, or no stamp)."""
    differ = config_differences(folder, key)
    if not differ:
        return None
    return f"{folder} holds a run of a different configuration (differing in {', '.join(differ)})"
