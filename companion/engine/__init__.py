"""The training engine: one loop (:func:`fit`), one evaluation path (:func:`evaluate`),
checkpoints that resume exactly and never execute code, and several processes (torchrun).

Chapter: Concepts (first experiment); Appendix (training at scale).
"""

from companion.engine.checkpoint import CheckpointError
from companion.engine.distributed import (
    all_reduce_gradients,
    init_from_env,
    is_distributed,
    rank,
    rank_seed,
    world_size,
)
from companion.engine.evaluation import evaluate, evaluate_all, prediction_metrics
from companion.engine.loop import History, fit, move_batch

__all__ = [
    "CheckpointError",
    "History",
    "all_reduce_gradients",
    "evaluate",
    "evaluate_all",
    "fit",
    "init_from_env",
    "is_distributed",
    "move_batch",
    "prediction_metrics",
    "rank",
    "rank_seed",
    "world_size",
]
