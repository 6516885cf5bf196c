"""Two stacked linear layers are one linear layer."""

from __future__ import annotations

import pytest
import torch

from companion.clinic import stacked_linear as clinic

X = torch.randn(16, 5, generator=torch.Generator().manual_seed(0))


pytestmark = pytest.mark.usefixtures("torch_seed_0")  # module initialisation


def test_two_linear_layers_equal_the_product_of_their_weights():
    model = clinic.MistakenMetaModel(5, 7, 3)
    single = clinic.collapse(model)
    assert torch.allclose(single(X), model(X), atol=1e-6)
    manual = X @ (model.meta.weight @ model.base.weight).T + (
        model.meta.weight @ model.base.bias + model.meta.bias)
    assert torch.allclose(single(X), manual, atol=1e-6)


@pytest.mark.parametrize("build, is_right", [(clinic.corrected_model, True),
                                             (clinic.MistakenMetaModel, False)])
def test_a_model_that_is_more_than_affine(build, is_right):
    assert (not clinic.is_affine(build(5, 7, 3), X)) is is_right
