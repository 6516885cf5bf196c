"""Data: episodes, the episode sampler, batch sources, and the data sets (Omniglot, MNIST,
scikit-learn's digits, shifted MNIST, sinusoids), plus the multi-task sets (MultiMNIST,
Omniglot alphabets, a synthetic regression family)."""
"""Data: episodes, the episode sampler, and the data sets (Omniglot, MNIST, MovieLens 100K, sinusoids), plus
the multi-task sets (MultiMNIST, Omniglot alphabets, a synthetic regression family)."""

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
from companion.data.movielens import MovieLens100K, load_movielens
from companion.data.movielens_tasks import (
    RatingEpisode,
    RatingEpisodeBatch,
    UserTaskSampler,
    cold_start_samplers,
    eligible_users,
    split_users,
    user_episode,
)
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
    "MovieLens100K",
    "MultiMNIST",
    "MultiTaskBatch",
    "MultiTaskSampler",
    "LinearRegressionSampler",
    "LinearRegressionTasks",
    "RatingEpisode",
    "RatingEpisodeBatch",
    "RemoteFile",
    "Sinusoid",
    "SinusoidSampler",
    "SinusoidTasks",
    "UserTaskSampler",
    "alphabet_tasks",
    "cold_start_samplers",
    "data_dir",
    "eligible_users",
    "fetch",
    "load_digits",
    "least_squares_predict",
    "load_mnist",
    "load_movielens",
    "load_multimnist",
    "load_omniglot",
    "load_omniglot_alphabets",
    "split_per_class",
    "split_users",
    "tasks_sampler",
    "load_shifted_mnist",
    "shift_colours",
    "user_episode",
]
