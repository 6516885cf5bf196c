"""Relational knowledge distillation: invariances, zero at student = teacher, by-hand values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from companion.transfer import RelationalDistillationLoss, rkd_angle_loss, rkd_distance_loss


def _embeddings(n: int = 7, d: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _rotation(d: int, seed: int) -> torch.Tensor:
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    q, _ = torch.linalg.qr(a)
    return q  # orthogonal


@pytest.mark.parametrize("loss", [rkd_distance_loss, rkd_angle_loss])
def test_zero_when_student_equals_teacher(loss):
    t = _embeddings()
    assert loss(t, t).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("loss", [rkd_distance_loss, rkd_angle_loss])
def test_invariant_to_rotation_scaling_and_translation_of_either_embedding(loss):
    s, t = _embeddings(seed=1), _embeddings(seed=2)
    moved = 3.5 * t @ _rotation(5, 3) + 2.0
    assert loss(s, moved).item() == pytest.approx(loss(s, t).item(), rel=1e-9)
    assert loss(0.1 * s @ _rotation(5, 4) - 1.0, t).item() == pytest.approx(
        loss(s, t).item(), rel=1e-9)
    assert loss(s, t).item() > 1e-3  # and not trivially zero


def test_student_of_another_size_with_the_same_geometry_scores_zero():
    t = _embeddings(d=3)
    s = torch.cat([t, torch.zeros(7, 4, dtype=torch.float64)], 1) @ _rotation(7, 5)  # d = 7
    assert rkd_distance_loss(s, t).item() == pytest.approx(0.0, abs=1e-12)
    assert rkd_angle_loss(s, t).item() == pytest.approx(0.0, abs=1e-12)


def test_distance_loss_by_hand():
    """Teacher: a 3-4-5 triangle, mean distance 4 -> psi = (3, 4, 5)/4. Student: an
    equilateral triangle -> psi = 1. Huber (delta 1) of (0.25, 0, 0.25), each pair twice."""
    t = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    s = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]], dtype=torch.float64)
    assert rkd_distance_loss(s, t).item() == pytest.approx(0.5 * 0.25 ** 2 * 2 / 3)


def test_angle_loss_by_hand():
    """Right angle at vertex 0 of the teacher (cos 0) vs 60 degrees (cos 1/2) in the student;
    the other angles: teacher (cos 3/5 at vertex 1, 4/5 at vertex 2), student 1/2 each."""
    t = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    s = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]], dtype=torch.float64)
    diffs = torch.tensor([0.5, 0.5 - 0.6, 0.5 - 0.8], dtype=torch.float64)
    expected = F.smooth_l1_loss(diffs, torch.zeros(3, dtype=torch.float64))
    assert rkd_angle_loss(s, t).item() == pytest.approx(expected.item())


def test_teacher_gets_no_gradient_and_the_combined_loss_weights():
    t = _embeddings(seed=6).requires_grad_(True)
    s = _embeddings(seed=7).requires_grad_(True)
    loss = RelationalDistillationLoss(distance_weight=2.0, angle_weight=3.0)(s, t)
    expected = 2 * rkd_distance_loss(s, t) + 3 * rkd_angle_loss(s, t)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert t.grad is None and s.grad is not None and torch.isfinite(s.grad).all()


@pytest.mark.parametrize(("student", "teacher", "message"), [
    (torch.randn(4, 3), torch.randn(5, 3), "same batch"),
    (torch.randn(2, 3), torch.randn(2, 3), "at least 3"),
    (torch.randn(4, 3), torch.zeros(4, 3), "duplicate|coincide"),
    (torch.full((4, 3), float("nan")), torch.randn(4, 3), "NaN"),
])
def test_bad_input(student, teacher, message):
    with pytest.raises(ValueError, match=message):
        RelationalDistillationLoss()(student, teacher)


def test_bad_weights():
    with pytest.raises(ValueError, match="angle_weight"):
        RelationalDistillationLoss(angle_weight=-1.0)
