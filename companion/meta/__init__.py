"""Meta-learning methods, one per file, over a shared functional core."""

from companion.meta.blackbox import RecurrentLearner
from companion.meta.distances import pairwise_distance
from companion.meta.functional import inner_adapt, named_params
from companion.meta.in_context import (
    InContextLearner,
    MaskedSelfAttention,
    episode_attention_mask,
)
from companion.meta.joint import JointTraining
from companion.meta.label_inputs import HIDDEN, label_inputs
from companion.meta.learned_optimizer import (
    LSTMOptimizer,
    LSTMOptimizerConfig,
    Unroll,
    baseline_curve,
    optimizer_curves,
    preprocess_gradients,
)
from companion.meta.maml import MAML, MAMLConfig, adaptation_curve
from companion.meta.mann import MemoryAugmentedLearner, MemoryState
from companion.meta.matching import MatchingNetwork
from companion.meta.metric import MetricLearner, remap_labels
from companion.meta.nearest_neighbour import NearestNeighbour
from companion.meta.optimizees import (
    MLPFamily,
    MLPProblems,
    Problems,
    ProblemSampler,
    QuadraticFamily,
    QuadraticProblems,
)
from companion.meta.protocols import AdaptedPredictor, BothProtocols
from companion.meta.protonet import PrototypicalNetwork, class_prototypes
from companion.meta.reference import naive_maml_loss
from companion.meta.relation import RelationNetwork, relation_module
from companion.meta.reptile import Reptile, ReptileConfig
from companion.meta.sequence import SequenceLearner

__all__ = [
    "HIDDEN",
    "MAML",
    "AdaptedPredictor",
    "BothProtocols",
    "InContextLearner",
    "JointTraining",
    "LSTMOptimizer",
    "LSTMOptimizerConfig",
    "MAMLConfig",
    "MLPFamily",
    "MLPProblems",
    "MaskedSelfAttention",
    "MatchingNetwork",
    "MemoryAugmentedLearner",
    "MemoryState",
    "MetricLearner",
    "NearestNeighbour",
    "ProblemSampler",
    "Problems",
    "PrototypicalNetwork",
    "QuadraticFamily",
    "QuadraticProblems",
    "RecurrentLearner",
    "RelationNetwork",
    "Reptile",
    "ReptileConfig",
    "SequenceLearner",
    "Unroll",
    "adaptation_curve",
    "baseline_curve",
    "class_prototypes",
    "episode_attention_mask",
    "inner_adapt",
    "label_inputs",
    "naive_maml_loss",
    "named_params",
    "optimizer_curves",
    "pairwise_distance",
    "preprocess_gradients",
    "relation_module",
    "remap_labels",
]
