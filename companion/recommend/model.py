"""A rating model in the style of MeLU: embeddings of side information, then decision layers.

Lee et al. (KDD 2019) embed each categorical attribute of the user and of the item, concatenate
the embeddings, and pass them through fully connected *decision-making layers* and an output
layer that predicts the rating. MeLU adapts only those decision layers to each user (its *local
update*); the embeddings are global. This module keeps the two parts in two sub-modules,
``embedding`` and ``decision``, so the local update can name its parameters
(:func:`decision_parameter_names`).

Inputs are the rows of :meth:`companion.data.movielens.MovieLens100K.features`: 4 user columns
(gender, age group, occupation, zip region) and 20 movie columns (release decade, 19 genre
flags), all int64.

Chapter: Applications (cold-start recommendation). References: :cite:t:`lee2019melu`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from companion._checks import check_positive_int
from companion.data.movielens import ITEM_CARDINALITIES, N_GENRES, USER_CARDINALITIES

__all__ = ["DECISION", "RatingModel", "SideInformationEmbedding", "decision_parameter_names"]

DECISION = "decision"  # name of the sub-module the local update adapts


class SideInformationEmbedding(nn.Module):
    """Concatenated embeddings of the user and movie attributes.

    Each categorical column has its own table; the genre flags (a movie may have several) are
    embedded as the mean of their genres' vectors (MeLU does the same for genres and actors).

    Shapes:
        ``[n, 4 + 1 + 19]`` int64 -> ``[n, (4 + 1 + 1) * embedding_dim]``.
    """

    def __init__(self, *, embedding_dim: int, user_cardinalities: Sequence[int],
                 item_cardinalities: Sequence[int], n_genres: int) -> None:
        super().__init__()
        check_positive_int("embedding_dim", embedding_dim)
        self.cardinalities = tuple(user_cardinalities) + tuple(item_cardinalities)
        self.n_genres = n_genres
        self.tables = nn.ModuleList(nn.Embedding(c, embedding_dim) for c in self.cardinalities)
        self.genres = nn.Linear(n_genres, embedding_dim, bias=False)
        self.out_features = (len(self.cardinalities) + 1) * embedding_dim
        self.in_features = len(self.cardinalities) + n_genres

    def forward(self, x: Tensor) -> Tensor:
        n_cat = len(self.cardinalities)
        parts = [table(x[:, i]) for i, table in enumerate(self.tables)]  # each [n, d]
        flags = x[:, n_cat:].float()  # [n, n_genres]
        count = flags.sum(dim=1, keepdim=True).clamp(min=1)  # [n, 1]
        parts.append(self.genres(flags) / count)  # [n, d]
        return torch.cat(parts, dim=1)  # [n, (n_cat + 1) * d]


class RatingModel(nn.Module):
    """Side-information embeddings -> decision layers (ReLU MLP) -> a rating.

    Args:
        embedding_dim: size of each attribute's embedding (MeLU: 32).
        hidden: widths of the decision layers (MeLU: 64, 64).
        user_cardinalities, item_cardinalities, n_genres: the attribute sizes (default:
            MovieLens 100K as loaded by :func:`companion.data.load_movielens`).
        mean_rating: initial bias of the output layer (a sensible starting prediction).

    Shapes:
        ``[n, 24]`` int64 features -> ``[n]`` float predicted ratings.
    """

    def __init__(self, *, embedding_dim: int = 32, hidden: Sequence[int] = (64, 64),
                 user_cardinalities: Sequence[int] = USER_CARDINALITIES,
                 item_cardinalities: Sequence[int] = ITEM_CARDINALITIES,
                 n_genres: int = N_GENRES, mean_rating: float = 3.5) -> None:
        super().__init__()
        for width in hidden:
            check_positive_int("hidden", width)
        self.embedding = SideInformationEmbedding(
            embedding_dim=embedding_dim, user_cardinalities=user_cardinalities,
            item_cardinalities=item_cardinalities, n_genres=n_genres)
        layers: list[nn.Module] = []
        width = self.embedding.out_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        out = nn.Linear(width, 1)
        nn.init.constant_(out.bias, mean_rating)
        layers.append(out)
        self.decision = nn.Sequential(*layers)

    def check_input(self, x: Tensor) -> None:
        """ValueError unless ``x`` is ``[n, in_features]`` integer features within range."""
        emb = self.embedding
        if x.dtype.is_floating_point or x.ndim != 2 or x.shape[1] != emb.in_features:
            raise ValueError(f"x must be [n, {emb.in_features}] integer features (from "
                             f"MovieLens100K.features), got dtype {x.dtype} and shape "
                             f"{tuple(x.shape)}")
        n_cat = len(emb.cardinalities)
        limits = torch.tensor(emb.cardinalities, device=x.device)  # [n_cat]
        cats = x[:, :n_cat]
        if ((cats < 0) | (cats >= limits)).any() or ((x[:, n_cat:] != 0)
                                                     & (x[:, n_cat:] != 1)).any():
            raise ValueError(f"x has a category out of range (allowed 0..c-1 for "
                             f"c in {emb.cardinalities}) or a genre flag other than 0/1")

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return self.decision(self.embedding(x)).squeeze(1)  # [n]


def decision_parameter_names(model: nn.Module, prefix: str = DECISION) -> tuple[str, ...]:
    """Names of the parameters under the ``decision`` sub-module (MeLU's local update)."""
    names = tuple(n for n, _ in model.named_parameters() if n.startswith(prefix + "."))
    if not names:
        raise ValueError(f"model has no parameters under {prefix!r}; its parameters are "
                         f"{[n for n, _ in model.named_parameters()]}")
    return names
