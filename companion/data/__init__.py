"""Data: episodes, the episode sampler, and the data sets (Omniglot, MNIST, sinusoids)."""

from companion.data.dataset import ImageClassDataset
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
from companion.data.omniglot import OMNIGLOT_SPLITS, load_omniglot
from companion.data.sampler import EpisodeIndices, EpisodeSampler
from companion.data.sinusoid import Sinusoid, SinusoidSampler, SinusoidTasks

__all__ = [
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
    "LinearRegressionSampler",
    "LinearRegressionTasks",
    "RemoteFile",
    "Sinusoid",
    "SinusoidSampler",
    "SinusoidTasks",
    "data_dir",
    "fetch",
    "least_squares_predict",
    "load_mnist",
    "load_omniglot",
]
