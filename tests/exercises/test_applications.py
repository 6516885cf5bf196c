"""The applications chapter's exercise checks: right answers pass, wrong ones fail."""

import math

import pytest
import torch

from companion.exercises import applications


def test_ndcg_by_hand(capsys):
    # predicted order: movies 3, 1, 2 with true ratings 4, 3, 5 -> gains 15, 7, 31
    dcg = 15 / math.log2(2) + 7 / math.log2(3) + 31 / math.log2(4)
    ideal = 31 / math.log2(2) + 15 / math.log2(3) + 7 / math.log2(4)
    applications.check_ndcg(dcg / ideal)
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="predicted"):
        applications.check_ndcg((31 + 15 / math.log2(3) + 7 / 2) / ideal * 0.5)


def test_paired_ci(capsys):
    d = [0.03, 0.07, 0.02, 0.06, 0.01, 0.07]  # a - b user by user
    mean = sum(d) / 6
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 5)
    applications.check_paired_ci(1.959964 * sd / math.sqrt(6))
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="pair the users"):
        a, b = (0.91, 0.78, 1.02, 0.66, 0.85, 0.97), (0.88, 0.71, 1.00, 0.60, 0.84, 0.90)

        def half(v):
            m = sum(v) / 6
            return 1.959963984540054 * math.sqrt(sum((x - m) ** 2 for x in v) / 5) / math.sqrt(6)
        applications.check_paired_ci(half(a) + half(b))


def test_collapse(capsys):
    applications.check_collapse(lambda w1, b1, w2, b2: (w2 @ w1, w2 @ b1 + b2))
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="W2 b1"):
        applications.check_collapse(lambda w1, b1, w2, b2: (w2 @ w1, b1[:3] + b2))
    with pytest.raises(AssertionError, match="shape"):
        applications.check_collapse(lambda w1, b1, w2, b2: (w1, b1))
    assert torch.get_default_dtype() == torch.float32
