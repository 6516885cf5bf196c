"""The multi-task chapter's exercise checks: right answers pass, wrong ones fail."""

import pytest

from companion.exercises import multitask


def test_pcgrad_projection(capsys):
    multitask.check_pcgrad_projection([1.0, 1.0])  # by hand: (2,0) - (-2/2)(-1,1) = (1,1)
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="conflict"):
        multitask.check_pcgrad_projection([2.0, 0.0])  # left unprojected
    multitask.check_pcgrad_projection([1.0, 2.0], g1=(1.0, 2.0), g2=(3.0, 0.0))  # no conflict
    with pytest.raises(AssertionError, match="2 numbers"):
        multitask.check_pcgrad_projection([1.0])
    with pytest.raises(ValueError, match="g2"):
        multitask.check_pcgrad_projection([1.0, 1.0], g2=(float("nan"), 1.0))
    with pytest.raises(ValueError, match="g1_projected"):
        multitask.check_pcgrad_projection("ab")  # type: ignore[arg-type]


def test_mgda_weight(capsys):
    multitask.check_mgda_weight(0.8)  # by hand: ((g2 - g1) . g2) / |g1 - g2|^2 = 4 / 5
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="parabola"):
        multitask.check_mgda_weight(0.5)
    multitask.check_mgda_weight(1.0, g1=(1.0, 0.0), g2=(2.0, 0.0))  # clipped: g1 is shorter
    multitask.check_mgda_weight(0.3, g1=(1.0, 1.0), g2=(1.0, 1.0))  # one point: any weight
    with pytest.raises(AssertionError, match=r"\[0, 1\]"):
        multitask.check_mgda_weight(1.5, g1=(1.0, 1.0), g2=(1.0, 1.0))


def test_uncertainty_optimum(capsys):
    multitask.check_uncertainty_optimum(0.5, 1.0)
    assert "Correct" in capsys.readouterr().out
    multitask.check_uncertainty_optimum(5.0, 0.1, loss=5.0)
    with pytest.raises(AssertionError, match="sigma"):
        multitask.check_uncertainty_optimum(1.0, 0.5)  # sigma^2 = 2L is the classification form
    with pytest.raises(AssertionError, match="weight"):
        multitask.check_uncertainty_optimum(0.5, 0.5)
    with pytest.raises(ValueError, match="loss"):
        multitask.check_uncertainty_optimum(0.5, 1.0, loss=0.0)
