"""Meta-learning methods, one per file."""

from companion.meta.distances import pairwise_distance
from companion.meta.nearest_neighbour import NearestNeighbour
from companion.meta.protonet import PrototypicalNetwork, class_prototypes

__all__ = ["NearestNeighbour", "PrototypicalNetwork", "class_prototypes", "pairwise_distance"]
