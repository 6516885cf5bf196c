"""companion: the tested PyTorch library behind the book on meta-, multi-task and transfer learning.

Every chapter imports it; the public API is re-exported here.
"""

from companion.data import (
    BatchSampler,
    Episode,
    EpisodeBatch,
    EpisodeSampler,
    ImageClassDataset,
    LabelledBatch,
    SinusoidTasks,
    load_mnist,
    load_omniglot,
)
from companion.engine import evaluate_all
from companion.meta import MAML, MAMLConfig, NearestNeighbour, PrototypicalNetwork
from companion.metrics import MeanCI
from companion.models import MLP, BatchStatNorm2d, Conv4
from companion.supervised import SupervisedLearner
from companion.training import AccuracyCI, History, evaluate, fit, mean_ci95
from companion.utils import (
    describe_device,
    get_device,
    load_or_run,
    seed_everything,
    show_source,
)

__version__ = "0.1.0"

__all__ = [
    "MAML",
    "MLP",
    "AccuracyCI",
    "BatchSampler",
    "BatchStatNorm2d",
    "Conv4",
    "Episode",
    "EpisodeBatch",
    "EpisodeSampler",
    "History",
    "ImageClassDataset",
    "LabelledBatch",
    "MAMLConfig",
    "MeanCI",
    "NearestNeighbour",
    "PrototypicalNetwork",
    "SinusoidTasks",
    "SupervisedLearner",
    "describe_device",
    "evaluate",
    "evaluate_all",
    "fit",
    "get_device",
    "load_mnist",
    "load_omniglot",
    "load_or_run",
    "mean_ci95",
    "seed_everything",
    "show_source",
]
