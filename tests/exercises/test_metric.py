"""The metric chapter's exercise checks: right answers pass, wrong ones fail."""

import math

import pytest

from companion.exercises import metric


def test_linear_classifier(capsys):
    metric.check_linear_classifier(lambda c: (2 * c, -(c * c).sum(1)))
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="Expand"):
        metric.check_linear_classifier(lambda c: (c, -(c * c).sum(1)))  # w = c, not 2c
    with pytest.raises(AssertionError, match="shape"):
        metric.check_linear_classifier(lambda c: (2 * c, -(c * c)))


def test_softmax_bound(capsys):
    p = math.e / (math.e + 19)  # by hand: 0.1252
    metric.check_softmax_bound(p, math.log(1 + 19 / math.e))
    assert "Correct" in capsys.readouterr().out
    assert abs(p - 0.125) < 0.001 and abs(math.log(1 + 19 / math.e) - 2.08) < 0.005
    with pytest.raises(AssertionError, match="largest probability"):
        metric.check_softmax_bound(1 / 20, math.log(20))  # the uniform softmax
    with pytest.raises(ValueError, match="n_way"):
        metric.check_softmax_bound(1.0, 0.0, n_way=1)


def test_queries_per_class_is_shared(capsys):
    metric.check_queries_per_class(23, 1)
    assert "Correct" in capsys.readouterr().out
