"""The transfer chapter's exercise checks: right answers pass, wrong ones fail."""

import math

import pytest

from companion.exercises import transfer


def test_proxy_a_distance(capsys):
    transfer.check_proxy_a_distance(1.6)  # by hand: 2 (1 - 2 * 0.1)
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="2 \\(1 - 2 error\\)"):
        transfer.check_proxy_a_distance(0.8)  # 1 - 2 error, without the factor 2
    with pytest.raises(ValueError, match="error"):
        transfer.check_proxy_a_distance(1.0, error=1.5)


def test_weight_at_zero(capsys):
    by_hand = 0.5 / 0.3 * math.exp(0.5)  # the normalising constants and exp(0.25 / 0.5)
    assert abs(by_hand - 2.7479) < 1e-4
    transfer.check_weight_at_zero(by_hand)
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="Divide"):
        transfer.check_weight_at_zero(math.exp(0.5))  # forgot the ratio of the constants
    with pytest.raises(AssertionError, match="finite"):
        transfer.check_weight_at_zero(float("nan"))


def test_warmup_progress(capsys):
    p = math.log(19) / 10
    assert abs(2 / (1 + math.exp(-10 * p)) - 1 - 0.9) < 1e-12  # the schedule at p is 0.9
    transfer.check_warmup_progress(p)
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="Solve"):
        transfer.check_warmup_progress(0.9)
    with pytest.raises(ValueError, match="fraction"):
        transfer.check_warmup_progress(0.1, fraction=1.0)
    with pytest.raises(ValueError, match="gamma"):
        transfer.check_warmup_progress(0.1, gamma=0.0)


def test_l2sp_gradient(capsys):
    transfer.check_l2sp_gradient(lambda w, w0, alpha: alpha * (w - w0))
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="towards w0"):
        transfer.check_l2sp_gradient(lambda w, w0, alpha: alpha * w)  # weight decay
    with pytest.raises(AssertionError, match="towards w0"):
        transfer.check_l2sp_gradient(lambda w, w0, alpha: 0.5 * alpha * (w - w0))
    with pytest.raises(AssertionError, match="shape"):
        transfer.check_l2sp_gradient(lambda w, w0, alpha: (w - w0).sum())
