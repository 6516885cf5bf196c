"""Named experiment configurations: every number in a results table comes from one of these.

Each configuration is a frozen dataclass of its method's family (``methods/*.py``); its key
(name, method, seed and every field that differs from the key defaults, see
:mod:`companion.experiments.base`) is stored with the result, so a changed hyperparameter
can never be mistaken for a cached result.

Chapter: MAML (results of longer runs); later chapters add their own.
"""

from __future__ import annotations

from typing import Any

from companion.experiments import methods  # noqa: F401  (registers the families)
from companion.experiments.base import ExperimentConfig, canonical
from companion.experiments.methods.joint import JointExperiment
from companion.experiments.methods.maml import MAMLExperiment
from companion.experiments.methods.metric import MetricExperiment
from companion.experiments.methods.reptile import ReptileExperiment
from companion.experiments.registry import EXPERIMENTS, method_spec

__all__ = [
    "CONFIGS",
    "ExperimentConfig",
    "JointExperiment",
    "MAMLExperiment",
    "MetricExperiment",
    "ReptileExperiment",
    "canonical",
    "config_from_key",
    "get_config",
    "key_differences",
    "same_experiment",
]

CONFIGS: dict[str, ExperimentConfig] = EXPERIMENTS  # the registry itself, by name


def get_config(name: str) -> ExperimentConfig:
    """The registered configuration called ``name``."""
    if name not in CONFIGS:
        raise ValueError(f"unknown experiment {name!r}; choose from {sorted(CONFIGS)}")
    return CONFIGS[name]


def _family(key: dict[str, Any]) -> type[ExperimentConfig] | None:
    try:
        return method_spec(key["method"]).config
    except (KeyError, ValueError):
        return None  # no or an unknown method: compare every field


def same_experiment(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two stored keys describe the same configuration and seed (compared on the
    fields of their method's family)."""
    family = _family(a)
    return _family(b) is family and canonical(a, family) == canonical(b, family)


def key_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The fields on which two stored keys disagree (as :func:`same_experiment` compares)."""
    family = _family(a) if _family(a) is _family(b) else None
    ca, cb = canonical(a, family), canonical(b, family)
    return sorted(k for k in set(ca) | set(cb) if ca.get(k) != cb.get(k))


def config_from_key(key: dict[str, Any]) -> ExperimentConfig:
    """The configuration a stored key describes (the key without its seed).

    Raises:
        ValueError: the key names no registered method or does not make a valid configuration.
    """
    family = _family(key)
    if family is None:
        raise ValueError(f"the key names no registered method: {key.get('method')!r}")
    values = {k: v for k, v in canonical(key, family).items() if k != "seed"}
    return family.from_dict(values)
