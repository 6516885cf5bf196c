"""Learning each episode from its support set alone, by gradient descent.

:class:`SupportSetFineTuner` puts a fresh (linear or cosine) head on an encoder and trains
it (and, if asked, a copy of the encoder) on the support set, then classifies the query set.
With a randomly initialised encoder this is "deep learning from five examples"; with a pre-trained,
frozen encoder it is the Baseline of Chen et al. (2019) (``head="linear"``) or their
Baseline++ (``head="cosine"``: scores ``scale * cos(z, w_k)``); see
:func:`companion.transfer.baseline`.

Chapter: Concepts (why few-shot learning is hard); transfer learning.
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from companion._checks import check_positive_float, check_positive_int
from companion.data.episode import Episode
from companion.transfer.cosine import chen_scale, cosine_scores

__all__ = ["SupportSetFineTuner"]


class SupportSetFineTuner(nn.Module):
    """Fit a classifier to one episode's support set; no knowledge from other tasks is used
    beyond what ``encoder`` already holds.

    Args:
        encoder: maps inputs to ``[n, embedding_dim]``.
        embedding_dim: output size of ``encoder``.
        steps: full-batch Adam steps on the support set (> 0).
        lr: Adam learning rate (> 0).
        finetune_encoder: also train a per-episode copy of the encoder (else it stays frozen).
        head: ``"linear"`` (``W z + b``) or ``"cosine"`` (``scale * cos(z, w_k)``, no bias).
        scale: the cosine head's scale (> 0); None -> 2, Chen et al.'s value for few classes.

    The linear head starts at zero and the cosine head at the support set's class means, so
    every episode starts from a fixed point and the result does not depend on a random
    initialisation (Chen et al. initialise randomly).
    """

    def __init__(self, encoder: nn.Module, embedding_dim: int, *, steps: int = 100,
                 lr: float = 1e-2, finetune_encoder: bool = False,
                 head: Literal["linear", "cosine"] = "linear",
                 scale: float | None = None) -> None:
        super().__init__()
        check_positive_int("steps", steps)
        check_positive_float("lr", lr)
        if head not in ("linear", "cosine"):
            raise ValueError(f"head must be 'linear' or 'cosine', got {head!r}")
        self.head_kind = head
        self.scale = chen_scale(1) if scale is None else check_positive_float("scale", scale)
        self.encoder = encoder
        self.embedding_dim = embedding_dim
        self.steps = steps
        self.lr = lr
        self.finetune_encoder = finetune_encoder

    def predict(self, episode: Episode) -> Tensor:
        """``[n_query_total, n_way]`` scores after training on ``episode``'s support set."""
        encoder = copy.deepcopy(self.encoder) if self.finetune_encoder else self.encoder
        dtype = next(encoder.parameters(), torch.empty(0)).dtype
        with torch.no_grad():
            z0 = encoder(episode.support_x).to(dtype)  # [n_s, d]
        weight, bias = self._initial_head(z0, episode.support_y, episode.n_way)
        params = [weight] if bias is None else [weight, bias]
        if self.finetune_encoder:
            params += list(encoder.parameters())
        optimizer = torch.optim.Adam(params, lr=self.lr)
        with torch.enable_grad():
            for _ in range(self.steps):
                z = encoder(episode.support_x) if self.finetune_encoder else z0  # [n_s, d]
                loss = F.cross_entropy(self._scores(z, weight, bias), episode.support_y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            return self._scores(encoder(episode.query_x), weight, bias)  # [n_q, n_way]

    def _initial_head(self, z: Tensor, labels: Tensor, n_way: int
                      ) -> tuple[Tensor, Tensor | None]:
        if self.head_kind == "cosine":  # start at the class means: cosine nearest-centroid
            one_hot = F.one_hot(labels, n_way).to(z.dtype)  # [n_s, n_way]
            means = (one_hot.T @ z) / one_hot.sum(0)[:, None]  # [n_way, d]
            return means.clone().requires_grad_(True), None
        weight = torch.zeros(n_way, self.embedding_dim, device=z.device, dtype=z.dtype,
                             requires_grad=True)  # the head starts at zero
        bias = torch.zeros(n_way, device=z.device, dtype=z.dtype, requires_grad=True)
        return weight, bias

    def _scores(self, z: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if bias is None:
            return cosine_scores(z, weight, self.scale)  # [n, n_way]
        return F.linear(z, weight, bias)  # [n, n_way]
