"""Named, resumable experiments whose result files the chapters load (``python -m
companion.experiments --help``)."""

from companion.experiments.configs import CONFIGS, ExperimentConfig, get_config
from companion.experiments.runner import (
    build_learner,
    load_or_run_experiment,
    load_trained,
    result_path,
    results_dir,
    run_command,
    run_experiment,
    run_id,
    stored_result,
)

__all__ = [
    "CONFIGS",
    "ExperimentConfig",
    "build_learner",
    "get_config",
    "load_or_run_experiment",
    "load_trained",
    "result_path",
    "results_dir",
    "run_command",
    "run_experiment",
    "run_id",
    "stored_result",
]
