"""Meta-learning methods, one per file, over a shared functional core."""

from companion.meta.distances import pairwise_distance
from companion.meta.functional import inner_adapt, named_params
from companion.meta.joint import JointTraining
from companion.meta.maml import MAML, MAMLConfig, adaptation_curve
from companion.meta.matching import MatchingNetwork
from companion.meta.metric import MetricLearner, remap_labels
from companion.meta.nearest_neighbour import NearestNeighbour
from companion.meta.protonet import PrototypicalNetwork, class_prototypes
from companion.meta.reference import naive_maml_loss
from companion.meta.relation import RelationNetwork, relation_module
from companion.meta.reptile import Reptile, ReptileConfig

__all__ = [
    "MAML",
    "JointTraining",
    "MAMLConfig",
    "MatchingNetwork",
    "MetricLearner",
    "NearestNeighbour",
    "PrototypicalNetwork",
    "RelationNetwork",
    "Reptile",
    "ReptileConfig",
    "adaptation_curve",
    "class_prototypes",
    "inner_adapt",
    "naive_maml_loss",
    "named_params",
    "pairwise_distance",
    "relation_module",
    "remap_labels",
]
