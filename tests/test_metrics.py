"""The library's one definition of each metric, checked by hand."""

from __future__ import annotations

import math

import pytest
import torch

from companion.metrics import mae, mean_ci95, mse, ndcg_at_k, rmse


def test_errors_by_hand():
    p, t = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 0.0, 1.0])
    assert mse(p, t).item() == pytest.approx(13 / 3)
    assert mae(p, t).item() == pytest.approx(5 / 3)
    assert rmse(p, t).item() == pytest.approx(math.sqrt(13 / 3))
    with pytest.raises(ValueError, match="same shape"):
        mse(p, t[:2])


def test_ndcg_by_hand():
    relevance = torch.tensor([3.0, 2.0, 0.0, 1.0])
    perfect = ndcg_at_k(relevance, relevance, k=4)
    assert perfect.item() == pytest.approx(1.0)
    scores = torch.tensor([0.0, 1.0, 2.0, 3.0])  # ranks items 3, 2, 1, 0
    dcg = (2**1 - 1) / math.log2(2) + 0 + (2**2 - 1) / math.log2(4) + (2**3 - 1) / math.log2(5)
    ideal = 7 / math.log2(2) + 3 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(scores, relevance, k=4).item() == pytest.approx(dcg / ideal)
    top2 = (1 / math.log2(2)) / (7 + 3 / math.log2(3))
    assert ndcg_at_k(scores, relevance, k=2).item() == pytest.approx(top2)
    assert ndcg_at_k(scores, torch.zeros(4), k=3).item() == 0.0
    for kwargs, match in (({"k": 0}, "k must"), ({"k": 2.0}, "k must")):
        with pytest.raises(ValueError, match=match):
            ndcg_at_k(scores, relevance, **kwargs)
    with pytest.raises(ValueError, match="finite"):
        ndcg_at_k(torch.tensor([float("nan"), 1.0]), torch.ones(2), k=1)
    with pytest.raises(ValueError, match="non-negative"):
        ndcg_at_k(scores, -relevance, k=1)


def test_mean_ci_prints_percentages_only_for_fractions():
    assert str(mean_ci95([0.5, 0.7])).endswith("% (2 episodes)")
    assert "%" not in str(mean_ci95([2.0, 3.0], percent=False))
