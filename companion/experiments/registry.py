"""The registry: method name -> (configuration class, builder, evaluator, optimiser), and
experiment name -> configuration.

A method family registers itself in its own file under ``companion/experiments/methods/``
(imported by ``methods/__init__.py``)::

    register_method("maml", "fomaml", config=MAMLExperiment, build=build,
                    evaluate=evaluate, optimizer=adam_optimizer)
    register_experiments(MAMLExperiment(name="maml-omniglot-5w1s", method="maml"), ...)

The runner only ever asks :func:`method_spec` (or :func:`experiment`) what to call.

Chapter: MAML (results of longer runs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from companion.experiments.base import ExperimentConfig

__all__ = [
    "EXPERIMENTS",
    "Experiment",
    "MethodSpec",
    "experiment",
    "method_spec",
    "register_experiments",
    "register_method",
]


class Evaluator(Protocol):
    """Tests a trained learner; returns the JSON-ready part of the result (``test``,
    ``protocol``, ...)."""

    def __call__(self, cfg: Any, learner: nn.Module, data: dict[str, Any], *, progress: bool,
                 device: torch.device) -> dict[str, Any]: ...


Builder = Callable[[Any, int], nn.Module]  # (configuration, seed) -> learner
OptimizerFactory = Callable[[Any, nn.Module], tuple[torch.optim.Optimizer, Any]]  # + scheduler
# (configuration, data, learner, seed) -> (training source, validation function or None)
SourceFactory = Callable[[Any, dict[str, Any], nn.Module, int], tuple[Any, Any]]


@dataclass(frozen=True)
class MethodSpec:
    """What one method needs: its configuration class and three functions.

    Attributes:
        config: the family's :class:`ExperimentConfig` subclass.
        build: ``(cfg, seed) -> learner`` (an ``nn.Module`` with ``meta_loss`` and ``predict``).
        evaluate: ``(cfg, learner, data, *, progress, device) -> dict`` (see :class:`Evaluator`).
        optimizer: ``(cfg, learner) -> (optimizer, scheduler or None)``.
        training_source: ``(cfg, data, learner, seed) -> (source, validate or None)``, the
            data :func:`companion.fit` draws from; None -> episodes of the training classes
            (:func:`companion.experiments.sources.training_tasks`).
    """

    config: type[ExperimentConfig]
    build: Builder
    evaluate: Evaluator
    optimizer: OptimizerFactory
    training_source: SourceFactory | None = None


@dataclass(frozen=True)
class Experiment:
    """A named experiment: its configuration and its method's builder and evaluator."""

    config: ExperimentConfig
    build: Builder
    evaluate: Evaluator


_METHODS: dict[str, MethodSpec] = {}
EXPERIMENTS: dict[str, ExperimentConfig] = {}


def register_method(*names: str, config: type[ExperimentConfig], build: Builder,
                    evaluate: Evaluator, optimizer: OptimizerFactory,
                    training_source: SourceFactory | None = None) -> None:
    """Register one or more method names (e.g. ``"maml", "fomaml"``) with their family
    (``training_source``: see :class:`MethodSpec`; default: training episodes).

    Raises:
        ValueError: a name is registered already, or is not in ``config.METHODS``.
    """
    for name in names:
        if name in _METHODS:
            raise ValueError(f"method {name!r} is registered already")
        if name not in config.METHODS:
            raise ValueError(f"method {name!r} is not among {config.__name__}.METHODS "
                             f"{config.METHODS}")
    for name in names:
        _METHODS[name] = MethodSpec(config, build, evaluate, optimizer, training_source)


def register_experiments(*configs: ExperimentConfig) -> None:
    """Register named configurations (the ones result files and chapters refer to).

    Raises:
        ValueError: a name is taken, or the method is not registered with this config class.
    """
    for cfg in configs:
        if cfg.name in EXPERIMENTS:
            raise ValueError(f"experiment {cfg.name!r} is registered already")
        spec_for(cfg)
        EXPERIMENTS[cfg.name] = cfg


def unregister_experiment(name: str) -> None:
    """Remove a named configuration (for tests that register a temporary one)."""
    EXPERIMENTS.pop(name, None)


def methods() -> tuple[str, ...]:
    """The registered method names."""
    return tuple(sorted(_METHODS))


def method_spec(method: str) -> MethodSpec:
    """The registered family of ``method``."""
    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}; registered: {methods()}")
    return _METHODS[method]


def spec_for(cfg: ExperimentConfig) -> MethodSpec:
    """The family of a configuration, checking that the configuration is of that family."""
    spec = method_spec(cfg.method)
    if not isinstance(cfg, spec.config):
        raise ValueError(f"method {cfg.method!r} takes a {spec.config.__name__}, got a "
                         f"{type(cfg).__name__}")
    return spec


def experiment(name: str) -> Experiment:
    """The named experiment with its builder and evaluator."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose from {sorted(EXPERIMENTS)}")
    cfg = EXPERIMENTS[name]
    spec = spec_for(cfg)
    return Experiment(cfg, spec.build, spec.evaluate)
