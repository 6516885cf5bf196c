"""Conv-4, MLP and BatchStatNorm2d: shapes, reference behaviour, torch.func, CUDA."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from companion.models import MLP, BatchStatNorm2d, Conv4

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("norm", ["batch_stats", "batch", "none"])
def test_conv4_shapes(device, norm):
    net = Conv4(norm=norm).to(device)
    assert net(torch.randn(7, 1, 28, 28, device=device)).shape == (7, 64)
    head = Conv4(n_classes=5, norm=norm).to(device)
    out = head(torch.randn(3, 1, 28, 28, device=device))
    assert out.shape == (3, 5) and out.device.type == device


def test_conv4_embedding_size_for_other_inputs():
    net = Conv4(in_channels=3, image_size=84)
    assert net.embedding_dim == 64 * 5 * 5
    assert net(torch.randn(2, 3, 84, 84)).shape == (2, 1600)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"norm": "layer"}, "norm must be one of"),
    ({"image_size": 8}, "image_size"),
    ({"hidden_channels": 0}, "hidden_channels"),
    ({"n_classes": 0}, "n_classes"),
])
def test_conv4_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Conv4(**kwargs)


def test_conv4_rejects_wrong_input_size():
    with pytest.raises(ValueError, match="expected"):
        Conv4()(torch.randn(2, 1, 32, 32))


def test_batch_stat_norm_matches_functional_batch_norm():
    x = torch.randn(6, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    norm = BatchStatNorm2d(4).double()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1, 1)
    ours = norm(x)
    ref = F.batch_norm(x, None, None, norm.weight, norm.bias, training=True, eps=norm.eps)
    torch.testing.assert_close(ours, ref)
    g1 = torch.autograd.grad(ours.pow(3).sum(), x, create_graph=True)[0]
    g2 = torch.autograd.grad(ref.pow(3).sum(), x, create_graph=True)[0]
    torch.testing.assert_close(g1, g2)


def test_batch_stat_norm_is_the_same_in_eval_mode():
    norm = BatchStatNorm2d(3)
    x = torch.randn(4, 3, 2, 2)
    torch.testing.assert_close(norm.eval()(x), norm.train()(x))


def test_conv4_under_vmap_matches_a_loop_including_gradients():
    """Per-task gradients through functional_call + vmap equal those of a plain loop."""
    torch.manual_seed(0)
    net = Conv4(n_classes=3).double()
    params = {k: v.detach() for k, v in net.named_parameters()}
    xs = torch.randn(4, 6, 1, 28, 28, dtype=torch.float64)
    ys = torch.randint(0, 3, (4, 6))

    def loss(p: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(net, p, (x,)), y)

    batched = vmap(grad(loss), in_dims=(None, 0, 0))(params, xs, ys)
    for t in range(4):
        single = grad(loss)(params, xs[t], ys[t])
        for name in params:
            torch.testing.assert_close(batched[name][t], single[name])


def test_mlp():
    mlp = MLP(1, (40, 40), 1)
    assert [type(m) for m in mlp] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert mlp(torch.randn(10, 1)).shape == (10, 1)
    with pytest.raises(ValueError, match="positive"):
        MLP(1, (0,), 1)


def test_norm_rejects_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="num_features"):
        BatchStatNorm2d(0)
    with pytest.raises(ValueError, match="expected"):
        BatchStatNorm2d(3)(torch.randn(2, 4, 2, 2))
