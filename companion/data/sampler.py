"""N-way K-shot episode sampling, driven by an explicit ``torch.Generator``.

Chapter: Concepts (the episodic formulation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from companion._checks import check_positive_int, generator_from
from companion.data.dataset import ImageClassDataset
from companion.data.episode import Episode, EpisodeBatch

__all__ = ["EpisodeIndices", "EpisodeSampler"]


@dataclass(frozen=True)
class EpisodeIndices:
    """Which dataset rows make up an episode.

    Args:
        classes: ``[n_way]`` dataset class of episode label ``i``.
        support: ``[n_way, n_shot]`` dataset row indices, row ``i`` of class ``classes[i]``.
        query: ``[n_way, n_query]`` dataset row indices, disjoint from ``support``.
    """

    classes: Tensor
    support: Tensor
    query: Tensor


class EpisodeSampler:
    """Samples N-way K-shot episodes with Q queries per class from an :class:`ImageClassDataset`.

    Each episode draws ``n_way`` distinct classes, then ``n_shot + n_query`` distinct images of
    each (so support and query never share an image). Labels are remapped to ``0 .. n_way-1``
    in a random order, so a model cannot memorise which label a class gets. Images are returned
    as float in ``[0, 1]`` on the dataset's device.

    Args:
        dataset: the images to sample from.
        n_way: classes per episode.
        n_shot: support images per class.
        n_query: query images per class.
        generator: the only source of randomness; pass this or ``seed``.
        seed: seeds a fresh CPU generator when ``generator`` is not given.
        transform: optional function applied to each ``[n, C, H, W]`` float batch.
        shuffle: put the support and the query set each in a random order (drawn from
            ``generator``) instead of class by class; sequence models that read the support
            set in order (:mod:`companion.meta.blackbox`) need it. False keeps the class-major
            order (and the exact episodes of earlier versions for a given seed).

    Raises:
        ValueError: non-positive sizes, more ways than classes with enough images, or no
            source of randomness.

    Example:
        >>> sampler = EpisodeSampler(dataset, n_way=5, n_shot=1, n_query=15, seed=0)
        >>> episode = sampler.sample()
        >>> episode.support_x.shape  # [5 * 1, 1, 28, 28]
    """

    def __init__(
        self,
        dataset: ImageClassDataset,
        *,
        n_way: int,
        n_shot: int,
        n_query: int,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        transform: Callable[[Tensor], Tensor] | None = None,
        shuffle: bool = False,
    ) -> None:
        if not isinstance(dataset, ImageClassDataset):
            raise ValueError(f"dataset must be an ImageClassDataset (e.g. load_omniglot(...)), "
                             f"got {type(dataset).__name__}; wrap tensors as "
                             "ImageClassDataset(images, labels, class_names)")
        if transform is not None and not callable(transform):
            raise ValueError(f"transform must be a function of a [n, C, H, W] batch or None, "
                             f"got {transform!r}")
        self.n_way = check_positive_int("n_way", n_way)
        self.n_shot = check_positive_int("n_shot", n_shot)
        self.n_query = check_positive_int("n_query", n_query)
        self.generator = generator_from(generator, seed)
        self.dataset = dataset
        self.transform = transform
        if not isinstance(shuffle, bool):
            raise ValueError(f"shuffle must be a bool, got {shuffle!r}")
        self.shuffle = shuffle
        self._table, self._eligible = self._index_table()

    def _index_table(self) -> tuple[Tensor, Tensor]:
        """``[C, M]`` row indices per class (padded with -1) and the classes with enough rows."""
        labels = self.dataset.labels.cpu()
        counts = torch.bincount(labels, minlength=self.dataset.num_classes)
        order = torch.argsort(labels, stable=True)
        width = int(counts.max()) if len(counts) else 0
        table = torch.full((self.dataset.num_classes, width), -1, dtype=torch.int64)
        starts = torch.cumsum(counts, 0) - counts
        position = torch.arange(len(labels)) - starts[labels[order]]
        table[labels[order], position] = order
        need = self.n_shot + self.n_query
        eligible = (counts >= need).nonzero().squeeze(1)
        if len(eligible) < self.n_way:
            raise ValueError(
                f"n_way={self.n_way} with n_shot + n_query = {need} is impossible: only "
                f"{len(eligible)} of {self.dataset.num_classes} classes in {self.dataset.name!r} "
                f"have >= {need} images (the largest class has {width})"
            )
        return table, eligible

    def sample_indices(self) -> EpisodeIndices:
        """Draw the classes and the dataset rows of one episode (no image is touched)."""
        g, need = self.generator, self.n_shot + self.n_query
        pick = torch.randperm(len(self._eligible), generator=g)[: self.n_way]
        classes = self._eligible[pick]  # [n_way]
        rows = self._table[classes]  # [n_way, M], -1 = padding
        keys = torch.rand(rows.shape, generator=g).masked_fill(rows < 0, 2.0)
        chosen = rows.gather(1, keys.argsort(dim=1)[:, :need])  # [n_way, n_shot + n_query]
        return EpisodeIndices(classes, chosen[:, : self.n_shot], chosen[:, self.n_shot :])

    def sample(self) -> Episode:
        """One episode; support and query are ordered class by class (label 0 first), or each
        in a random order with ``shuffle=True``."""
        idx = self.sample_indices()
        labels = torch.arange(self.n_way)
        support_rows, query_rows = idx.support.reshape(-1), idx.query.reshape(-1)
        support_y = labels.repeat_interleave(self.n_shot)  # [n_way * n_shot]
        query_y = labels.repeat_interleave(self.n_query)  # [n_way * n_query]
        if self.shuffle:
            s = torch.randperm(len(support_rows), generator=self.generator)
            q = torch.randperm(len(query_rows), generator=self.generator)
            support_rows, support_y, query_rows, query_y = (
                support_rows[s], support_y[s], query_rows[q], query_y[q])
        device = self.dataset.images.device
        return Episode(
            support_x=self._images(support_rows),  # [n_way * n_shot, C, H, W]
            support_y=support_y.to(device),  # [n_way * n_shot]
            query_x=self._images(query_rows),  # [n_way * n_query, C, H, W]
            query_y=query_y.to(device),  # [n_way * n_query]
            classes=idx.classes.to(device),
        )

    def sample_batch(self, n_tasks: int) -> EpisodeBatch:
        """``n_tasks`` independent episodes stacked for ``vmap`` (leading task dimension)."""
        check_positive_int("n_tasks", n_tasks)
        return EpisodeBatch.stack([self.sample() for _ in range(n_tasks)])

    def __iter__(self) -> Iterator[Episode]:
        """Endless stream of episodes."""
        while True:
            yield self.sample()

    def _images(self, rows: Tensor) -> Tensor:
        x = self.dataset.images[rows.to(self.dataset.images.device)].float().div_(255.0)
        return self.transform(x) if self.transform is not None else x

    def __repr__(self) -> str:
        return (
            f"EpisodeSampler({self.dataset.name!r}, n_way={self.n_way}, n_shot={self.n_shot}, "
            f"n_query={self.n_query}, classes={len(self._eligible)}"
            f"{', shuffle=True' if self.shuffle else ''})"
        )

