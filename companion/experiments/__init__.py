"""Named, resumable experiments whose result files the chapters load (``python -m
companion.experiments --help``)."""

from companion.experiments.configs import CONFIGS, ExperimentConfig, get_config
from companion.experiments.runner import build_learner, result_path, run_experiment, run_id

__all__ = ["CONFIGS", "ExperimentConfig", "build_learner", "get_config", "result_path",
           "run_experiment", "run_id"]
