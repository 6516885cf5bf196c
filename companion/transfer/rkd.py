"""Relation-based transfer: relational knowledge distillation (RKD).

Instead of matching a teacher's outputs example by example, the student matches the
*relations* among examples in a batch, so the two embeddings may differ in size:

* distance-wise, for pairs ``(i, j)``: ``psi_D(t_i, t_j) = ||t_i - t_j|| / mu``, with ``mu`` the
  mean distance over the batch's pairs ``i != j``;
* angle-wise, for triplets ``(i, j, k)`` of distinct examples: ``psi_A = cos angle(t_i, t_j,
  t_k) = <e_ij, e_kj>``, ``e_ij = (t_i - t_j) / ||t_i - t_j||`` (the angle at ``t_j``);

    L_RKD-D = mean_{i != j} huber(psi_D(s_i, s_j) - psi_D(t_i, t_j)),
    L_RKD-A = mean_{distinct i,j,k} huber(psi_A(s_i, s_j, s_k) - psi_A(t_i, t_j, t_k)),

with the Huber loss (``delta = 1``). Both are invariant to rotations, translations and
(through ``mu``, or because angles are) uniform scalings of either embedding. The paper
weights them ``lambda_D = 25`` and ``lambda_A = 50`` next to the task loss. The teacher's
relations are constants (no gradient flows into the teacher). Cost: ``O(n^2 d)`` for the
distances and ``O(n^3 + n^2 d)`` for the angles of a batch of ``n``.

Chapter: Transfer learning (relation-based transfer).
Reference: :cite:t:`park2019relational`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from companion.transfer._checks import check_features, check_non_negative_float

__all__ = ["RelationalDistillationLoss", "rkd_angle_loss", "rkd_distance_loss"]


def _check(student: Tensor, teacher: Tensor, min_rows: int) -> tuple[Tensor, Tensor]:
    s = check_features("student", student, min_rows=min_rows)
    t = check_features("teacher", teacher, min_rows=min_rows)
    if s.shape[0] != t.shape[0]:
        raise ValueError(f"student and teacher must embed the same batch, got {s.shape[0]} "
                         f"and {t.shape[0]} rows")
    return s, t.detach()


def _normalised_distances(z: Tensor) -> Tensor:
    """``[n, d]`` -> ``[n (n - 1)]`` pairwise distances ``i != j`` divided by their mean."""
    n = z.shape[0]
    diff = z[:, None, :] - z[None, :, :]  # [n, n, d]
    off = ~torch.eye(n, dtype=torch.bool, device=z.device)  # [n, n]
    dist = diff[off].norm(dim=1)  # [n (n - 1)], no zero distance on the diagonal
    mean = dist.mean()
    if not mean > 0:
        raise ValueError("all embeddings in the batch coincide: distances are undefined")
    return dist / mean


def _angles(z: Tensor) -> Tensor:
    """``[n, d]`` -> cosines of the angle at ``j`` of every triplet of distinct (i, j, k)."""
    n = z.shape[0]
    e = F.normalize(z[None, :, :] - z[:, None, :], dim=2)  # [j, i, d]: e_ij = unit(t_i - t_j)
    cos = e @ e.transpose(1, 2)  # [j, i, k]
    idx = torch.arange(n, device=z.device)
    distinct = ((idx[:, None, None] != idx[None, :, None]) & (idx[:, None, None]
                != idx[None, None, :]) & (idx[None, :, None] != idx[None, None, :]))
    return cos[distinct]  # [n (n - 1) (n - 2)]


def rkd_distance_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """Distance-wise RKD loss.

    Args:
        student: ``[n, d_s]`` student embeddings (``n >= 2``).
        teacher: ``[n, d_t]`` teacher embeddings of the same examples (detached).

    Returns:
        Scalar mean Huber loss between normalised pairwise distances.
    """
    s, t = _check(student, teacher, 2)
    return F.smooth_l1_loss(_normalised_distances(s), _normalised_distances(t))


def rkd_angle_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """Angle-wise RKD loss (``n >= 3``; shapes as in :func:`rkd_distance_loss`).

    Returns:
        Scalar mean Huber loss between the cosines of the triplets' angles.
    """
    s, t = _check(student, teacher, 3)
    if torch.pdist(t).min() == 0:
        raise ValueError("teacher has duplicate embeddings in the batch: angles are undefined")
    return F.smooth_l1_loss(_angles(s), _angles(t))


class RelationalDistillationLoss(nn.Module):
    """``distance_weight * L_RKD-D + angle_weight * L_RKD-A`` (paper: 25 and 50).

    Shapes:
        student ``[n, d_s]``, teacher ``[n, d_t]`` -> scalar.
    """

    def __init__(self, *, distance_weight: float = 25.0, angle_weight: float = 50.0) -> None:
        super().__init__()
        self.distance_weight = check_non_negative_float("distance_weight", distance_weight)
        self.angle_weight = check_non_negative_float("angle_weight", angle_weight)

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        return (self.distance_weight * rkd_distance_loss(student, teacher)
                + self.angle_weight * rkd_angle_loss(student, teacher))
