"""The model-based chapter's exercise checks: right answers pass, wrong ones fail."""

import math

import pytest
import torch

from companion.exercises import model_based


def test_shifted_inputs(capsys):
    right = [[0, 0, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]]  # by hand: zeros, then y_{t-1}
    model_based.check_shifted_inputs(right)
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="concurrent"):
        model_based.check_shifted_inputs([[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 0]])
    with pytest.raises(AssertionError, match="step 0"):
        model_based.check_shifted_inputs(torch.eye(4, 3))
    with pytest.raises(AssertionError, match="shape"):
        model_based.check_shifted_inputs([[0, 1]])


def test_allowed_pairs(capsys):
    model_based.check_allowed_pairs(100 * 25 + 75)  # by hand
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="reads all 25"):
        model_based.check_allowed_pairs(100 * 100)  # an unmasked Transformer


def test_least_squares_error(capsys):
    model_based.check_least_squares_error(lambda d, n: max(d - n, 0))
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="span"):
        model_based.check_least_squares_error(lambda d, n: d / (n + 1))


def test_meta_updates(capsys):
    model_based.check_meta_updates(lambda u, t: math.ceil(u / t))
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="shorter"):
        model_based.check_meta_updates(lambda u, t: u // t)
