"""Named, resumable experiments whose result files the chapters load (``python -m
companion.experiments --help``).

A method family registers its configuration class, builder and evaluator in its own file
under ``methods/`` (see :mod:`companion.experiments.registry`).
"""

from companion.experiments.configs import (
    CONFIGS,
    ExperimentConfig,
    JointExperiment,
    MAMLExperiment,
    MetricExperiment,
    ReptileExperiment,
    get_config,
)
from companion.experiments.paths import result_path, run_id, runs_dir
from companion.experiments.registry import register_experiments, register_method
from companion.experiments.runner import (
    UnreadableResultError,
    benchmarks_dir,
    build_learner,
    describe_threads,
    load_or_run_experiment,
    load_trained,
    results_dir,
    run_command,
    run_experiment,
    stored_result,
)

__all__ = [
    "CONFIGS",
    "ExperimentConfig",
    "JointExperiment",
    "MAMLExperiment",
    "MetricExperiment",
    "ReptileExperiment",
    "UnreadableResultError",
    "benchmarks_dir",
    "build_learner",
    "describe_threads",
    "get_config",
    "load_or_run_experiment",
    "load_trained",
    "register_experiments",
    "register_method",
    "result_path",
    "results_dir",
    "run_command",
    "run_experiment",
    "run_id",
    "runs_dir",
    "stored_result",
]
