"""The Reptile chapter's exercise checks: right answers pass, wrong ones fail."""

import pytest
import torch

from companion.exercises import reptile


def test_joint_training_learning_rate(capsys):
    reptile.check_joint_training_learning_rate(0.1 * 0.02, outer_lr=0.1, inner_lr=0.02)
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="epsilon"):
        reptile.check_joint_training_learning_rate(0.1, outer_lr=0.1, inner_lr=0.02)


def test_taylor_coefficients(capsys):
    reptile.check_taylor_coefficients(3, -3, k=3)
    reptile.check_taylor_coefficients(2, -1, k=2)  # the chapter's k = 2 expansion
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="pairs"):
        reptile.check_taylor_coefficients(3, -2, k=3)
    with pytest.raises(AssertionError, match="AvgGrad"):
        reptile.check_taylor_coefficients(2, -3, k=3)
    with pytest.raises(ValueError, match="k"):
        reptile.check_taylor_coefficients(0, 0, k=0)


def test_equal_steepness_point(capsys):
    # independent: the normal equations of the four lines, solved by hand with torch.linalg.solve
    angles = torch.tensor(reptile.ANGLES, dtype=torch.float64)
    n = torch.stack([angles.cos(), angles.sin()], 1)
    b = torch.tensor(reptile.OFFSETS, dtype=torch.float64)
    point = torch.linalg.solve(n.T @ n, n.T @ b)
    reptile.check_equal_steepness_point(point)
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="least-squares"):
        reptile.check_equal_steepness_point([0.0, 0.0])
