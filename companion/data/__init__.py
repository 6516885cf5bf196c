"""Data: episodes, the episode sampler, and the data sets (Omniglot, MNIST, scikit-learn's
digits, shifted MNIST, sinusoids)."""

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
from companion.data.mnist import load_mnist
from companion.data.omniglot import OMNIGLOT_SPLITS, load_omniglot
from companion.data.sampler import EpisodeIndices, EpisodeSampler
from companion.data.shifted_mnist import load_shifted_mnist, shift_colours
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
    "RemoteFile",
    "Sinusoid",
    "SinusoidSampler",
    "SinusoidTasks",
    "data_dir",
    "fetch",
    "load_digits",
    "load_mnist",
    "load_omniglot",
    "load_shifted_mnist",
    "shift_colours",
]
