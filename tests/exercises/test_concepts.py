"""The Concepts chapter's exercise checks: right answers pass, wrong ones fail."""

import pytest

from companion.exercises import concepts


def test_queries_per_class(capsys):
    concepts.check_queries_per_class(23, 1)  # 120 / 5 - 1 and 120 / 60 - 1
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="support set"):
        concepts.check_queries_per_class(24, 2)  # forgot the support image


def test_ci_shrink_factor(capsys):
    concepts.check_ci_shrink_factor(0.5)
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="sqrt"):
        concepts.check_ci_shrink_factor(0.25)  # 1/n instead of 1/sqrt(n)


def test_episodes_to_separate(capsys):
    # (2 * 1.96 * 0.05 / 0.002)^2 = 98^2 = 9604, by hand
    concepts.check_episodes_to_separate(9604, std=0.05, difference=0.002)
    assert "9604" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="too few"):
        concepts.check_episodes_to_separate(2401, std=0.05, difference=0.002)  # one interval
    with pytest.raises(AssertionError, match="more than needed"):
        concepts.check_episodes_to_separate(100_000, std=0.05, difference=0.002)
    with pytest.raises(ValueError, match="std"):
        concepts.check_episodes_to_separate(10, std=0.0, difference=0.002)


def test_multitask_weights(capsys):
    concepts.check_multitask_weights([0.2, 0.6, 0.2], [0.1, 0.3, 0.1])
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="proportional"):
        concepts.check_multitask_weights([1, 1, 1], [0.1, 0.3, 0.1])
    with pytest.raises(ValueError, match="same"):
        concepts.check_multitask_weights([1, 1], [0.5, 0.3, 0.2])
