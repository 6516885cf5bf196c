"""Data: episodes, the episode sampler, batch sources, and the data sets (Omniglot, MNIST,
scikit-learn's digits, shifted MNIST, sinusoids), plus the multi-task sets (MultiMNIST,
Omniglot alphabets, a synthetic regression family)."""

from companion.data.batches import (
    BatchSampler,
    LabelledBatch,
    MultiTaskSource,
    PairedSource,
    generators_of,
)
from companion.data.dataset import ImageClassDataset
from companion.data.digits import load_digits
from companion.data.download import (
    ChecksumError,
    CorruptDataError,
    DataError,
    DownloadError,
    RemoteFile,
    data_dir,
    fetch,
)
from companion.data.episode import Episode, EpisodeBatch
from companion.data.linear_regression import (
    LinearRegressionSampler,
    LinearRegressionTasks,
    least_squares_predict,
)
from companion.data.mnist import load_mnist
from companion.data.multimnist import MULTIMNIST_SPLITS, MultiMNIST, load_multimnist
from companion.data.multitask_batch import MultiTaskBatch, MultiTaskSampler
from companion.data.multitask_regression import LinearTaskFamily, LinearTaskSampler
from companion.data.omniglot import OMNIGLOT_SPLITS, load_omniglot
from companion.data.omniglot_alphabets import (
    alphabet_tasks,
    load_omniglot_alphabets,
    split_per_class,
    tasks_sampler,
)
from companion.data.sampler import EpisodeIndices, EpisodeSampler
from companion.data.shifted_mnist import load_shifted_mnist, shift_colours
from companion.data.sinusoid import Sinusoid, SinusoidSampler, SinusoidTasks

__all__ = [
    "BatchSampler",
    "LabelledBatch",
    "MultiTaskSource",
    "PairedSource",
    "generators_of",
    "MULTIMNIST_SPLITS",
    "OMNIGLOT_SPLITS",
    "ChecksumError",
    "CorruptDataError",
    "DataError",
    "DownloadError",
    "Episode",
    "EpisodeBatch",
    "EpisodeIndices",
    "EpisodeSampler",
    "ImageClassDataset",
    "LinearTaskFamily",
    "LinearTaskSampler",
    "MultiMNIST",
    "MultiTaskBatch",
    "MultiTaskSampler",
    "LinearRegressionSampler",
    "LinearRegressionTasks",
    "RemoteFile",
    "Sinusoid",
    "SinusoidSampler",
    "SinusoidTasks",
    "alphabet_tasks",
    "data_dir",
    "fetch",
    "load_digits",
    "least_squares_predict",
    "load_mnist",
    "load_multimnist",
    "load_omniglot",
    "load_omniglot_alphabets",
    "split_per_class",
    "tasks_sampler",
    "load_shifted_mnist",
    "shift_colours",
]
