"""Learning each episode from its support set alone, by gradient descent.

:class:`SupportSetFineTuner` puts a fresh linear head on an encoder and trains it (and, if
asked, a copy of the encoder) on the support set, then classifies the query set. With a
randomly initialised encoder this is "deep learning from five examples"; with a pre-trained,
frozen encoder it is the linear-probe baseline of Chen et al. (2019).

Chapter: Concepts (why few-shot learning is hard); transfer learning.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from companion._checks import check_positive_float, check_positive_int
from companion.data.episode import Episode

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

    The head starts at zero, so every episode starts from the same point and the result does
    not depend on a random initialisation.
    """

    def __init__(self, encoder: nn.Module, embedding_dim: int, *, steps: int = 100,
                 lr: float = 1e-2, finetune_encoder: bool = False) -> None:
        super().__init__()
        check_positive_int("steps", steps)
        check_positive_float("lr", lr)
        self.encoder = encoder
        self.embedding_dim = embedding_dim
        self.steps = steps
        self.lr = lr
        self.finetune_encoder = finetune_encoder

    def predict(self, episode: Episode) -> Tensor:
        """``[n_query_total, n_way]`` logits after training on ``episode``'s support set."""
        encoder = copy.deepcopy(self.encoder) if self.finetune_encoder else self.encoder
        dtype = next(encoder.parameters(), torch.empty(0)).dtype
        weight = torch.zeros(episode.n_way, self.embedding_dim, device=episode.device,
                             dtype=dtype, requires_grad=True)  # the head starts at zero
        bias = torch.zeros(episode.n_way, device=episode.device, dtype=dtype,
                           requires_grad=True)
        params = [weight, bias]
        if self.finetune_encoder:
            params += list(encoder.parameters())
        optimizer = torch.optim.Adam(params, lr=self.lr)
        with torch.enable_grad():
            frozen = None if self.finetune_encoder else encoder(episode.support_x).detach()
            for _ in range(self.steps):
                z = frozen if frozen is not None else encoder(episode.support_x)  # [n_s, d]
                loss = F.cross_entropy(F.linear(z, weight, bias), episode.support_y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            return F.linear(encoder(episode.query_x), weight, bias)  # [n_q, n_way]
