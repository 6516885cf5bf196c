"""Gradient reversal: identity forward, gradient times -lambda backward."""

from __future__ import annotations

import pytest
import torch

from companion.transfer import GradientReversal, grad_reverse


@pytest.mark.parametrize("coefficient", [0.0, 0.5, 1.0, 3.0])
def test_identity_forward_and_reversed_scaled_gradient(coefficient):
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    upstream = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    y = grad_reverse(x, coefficient)
    torch.testing.assert_close(y, x, rtol=0, atol=0)
    (y * upstream).sum().backward()
    torch.testing.assert_close(x.grad, -coefficient * upstream)


def test_gradcheck_of_the_backward_map():
    """The backward is the linear map ``v -> -lambda v``: gradcheck (finite differences) of
    the vector-Jacobian product as a function of ``v`` confirms its Jacobian ``-lambda I``."""
    x = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    v = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)

    def vjp(upstream: torch.Tensor) -> torch.Tensor:
        (g,) = torch.autograd.grad(grad_reverse(x, 0.7), x, upstream, create_graph=True)
        return g

    assert torch.autograd.gradcheck(vjp, (v,))
    torch.testing.assert_close(vjp(v), -0.7 * v)


def test_gradcheck_of_the_forward_fails_as_it_should():
    """The layer is deliberately *not* a consistent function (forward identity, backward
    -lambda): gradcheck, which compares the two, must reject it."""
    x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert not torch.autograd.gradcheck(lambda t: grad_reverse(t, 1.0), (x,),
                                        raise_exception=False)


def test_second_layer_composes_and_module_coefficient_is_settable():
    layer = GradientReversal(2.0)
    x = torch.ones(3, requires_grad=True)
    layer(layer(x)).sum().backward()
    torch.testing.assert_close(x.grad, torch.full((3,), 4.0))  # (-2) * (-2)
    layer.coefficient = 0.5
    assert layer.coefficient == 0.5 and "0.5" in repr(layer)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), True])
def test_negative_or_non_finite_coefficient_is_rejected(bad):
    with pytest.raises(ValueError, match="coefficient"):
        grad_reverse(torch.ones(2), bad)
    with pytest.raises(ValueError, match="coefficient"):
        GradientReversal(bad)
    layer = GradientReversal()
    with pytest.raises(ValueError, match="coefficient"):
        layer.coefficient = bad
