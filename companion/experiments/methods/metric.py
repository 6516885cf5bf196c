"""Metric-based methods (Prototypical, Matching and Relation networks) as named experiments.

Chapter: Metric-based meta-learning.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from companion.experiments.base import AdamTrained, check_extra_tests
from companion.experiments.protocol import (
    fixed_and_extra_tests,
    omniglot_protocol,
)
from companion.experiments.registry import register_experiments, register_method
from companion.experiments.sources import adam_optimizer
from companion.meta.matching import MatchingNetwork
from companion.meta.protonet import PrototypicalNetwork
from companion.meta.relation import RelationNetwork
from companion.models import Conv4

__all__ = ["MATCHING_SCALE", "MetricExperiment"]

MATCHING_SCALE = 10.0  # Conv-4 features are non-negative: cosines in [0, 1] need a scale


@dataclass(frozen=True, kw_only=True)
class MetricExperiment(AdamTrained):
    """Settings of a metric method; ``extra_tests`` lists more (n_way, n_shot) test shapes."""

    METHODS: ClassVar[tuple[str, ...]] = ("protonet", "matching", "matching-fce", "relation")
    DATASETS: ClassVar[tuple[str, ...]] = ("omniglot",)

    method: Literal["protonet", "matching", "matching-fce", "relation"]
    extra_tests: tuple[tuple[int, int], ...] = ()  # more (n_way, n_shot) test settings

    def __post_init__(self) -> None:
        super().__post_init__()
        check_extra_tests(self.extra_tests)


def build(cfg: MetricExperiment, seed: int) -> nn.Module:
    """The metric network on a Conv-4 with BatchNorm running statistics."""
    if cfg.method == "protonet":
        return PrototypicalNetwork(Conv4(norm="batch"))
    if cfg.method == "relation":
        return RelationNetwork()
    return MatchingNetwork(Conv4(norm="batch"), embedding_dim=64,  # cosine x 10 (see ch. 4)
                           fce=cfg.method == "matching-fce", scale=MATCHING_SCALE)


def evaluate(cfg: MetricExperiment, learner: nn.Module, data: dict[str, Any], *,
             progress: bool, device: torch.device) -> dict[str, Any]:
    """Eval mode: BatchNorm running statistics, so no transduction; then the extra shapes."""
    accuracy, extra = fixed_and_extra_tests(cfg, learner, data, progress=progress)
    return {"test": accuracy.to_dict(), "extra_tests": extra, "protocol": {
        **omniglot_protocol(cfg), "test": "each query on its own (BatchNorm running statistics)"}}


register_method(*MetricExperiment.METHODS, config=MetricExperiment, build=build,
                evaluate=evaluate, optimizer=adam_optimizer)


def _named(method: str, shots: int) -> MetricExperiment:
    """Adam at 1e-3 (Snell et al. halve it every 2000 episodes; these CPU runs stop at 2000),
    tested 5-way and 20-way. Prototypical and Matching networks train on 20-way episodes with
    5 queries per class; Relation networks on 5-way episodes with 15 queries (their paper's
    shape; 20-way episodes compare 2000 query-class pairs and are five times slower)."""
    ways, queries = (5, 15) if method == "relation" else (20, 5)
    return MetricExperiment(
        name=f"{method}-omniglot-{shots}shot", method=method,  # type: ignore[arg-type]
        n_way=ways, n_shot=shots, n_query=queries, test_n_way=5, test_n_shot=shots,
        extra_tests=((20, shots),), meta_batch_size=1, iterations=2000, lr_halve_every=2000,
        val_every=1000, checkpoint_every=250)


register_experiments(*(_named(m, k) for m in ("protonet", "matching", "relation")
                       for k in (1, 5)))
# Snell et al.'s higher-way schedule: 60-way training episodes (5 queries per class), Adam 1e-3
# halved every 2000 episodes; 6000 episodes here (about an hour on two CPU cores).
register_experiments(replace(_named("protonet", 1), name="protonet-omniglot-1shot-60way",
                             n_way=60, iterations=6000))
