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


# ---------------------------------------------------------------- bad input, seeded initialisation

@pytest.mark.parametrize(("kwargs", "message"), [
    ({"in_channels": "1"}, "in_channels must be a positive int"),
    ({"in_channels": 1.0}, "in_channels must be a positive int"),
    ({"hidden_channels": 64.0}, "hidden_channels must be a positive int"),
    ({"image_size": "28"}, "image_size must be a positive int"),
    ({"n_classes": 5.0}, "n_classes must be a positive int or None"),
    ({"n_classes": "5"}, "n_classes must be a positive int or None"),
    ({"n_classes": True}, "n_classes must be a positive int or None"),
    ({"pool": True}, "pool needs one True/False flag per block"),
    ({"pool": "abcd"}, "pool needs one True/False flag per block"),
    ({"flatten": "no"}, "flatten must be True or False"),
    ({"seed": -1}, "seed must be a non-negative int"),
    ({"seed": "0"}, "seed must be a non-negative int"),
])
def test_conv4_wrong_types_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Conv4(**kwargs)


@pytest.mark.parametrize(("x", "message"), [
    ([1.0], "x must be a tensor"),
    (torch.zeros(2, 3, 28, 28), r"expected \[N, 1, 28, 28\]"),
    (torch.zeros(2, 1, 28, 28, dtype=torch.uint8), "convert the images"),
    (torch.zeros(2, 1, 28, 28, dtype=torch.float64), "convert the images"),
])
def test_conv4_forward_rejects_wrong_inputs_clearly(x, message):
    with pytest.raises(ValueError, match=message):
        Conv4()(x)


@pytest.mark.parametrize(("args", "message"), [
    ((1, 40, 1), "hidden must be a sequence"),
    ((1, "40", 1), "hidden must be a sequence"),
    ((True, (40,), 1), "positive ints"),
    ((1, (40.0,), 1), "positive ints"),
])
def test_mlp_wrong_types_are_value_errors(args, message):
    with pytest.raises(ValueError, match=message):
        MLP(*args)


def test_norm_wrong_types_are_value_errors():
    with pytest.raises(ValueError, match="num_features"):
        BatchStatNorm2d("3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eps"):
        BatchStatNorm2d(3, eps="small")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected"):
        BatchStatNorm2d(3)([0.0])  # type: ignore[arg-type]


def _weights(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("build", [
    lambda seed: Conv4(n_classes=5, seed=seed),
    lambda seed: Conv4(norm="batch", seed=seed),
    lambda seed: MLP(1, (40, 40), 1, seed=seed),
])
def test_seeded_models_are_identical_and_leave_the_global_rng_alone(build):
    before = torch.random.get_rng_state()
    a, b, c = _weights(build(0)), _weights(build(0)), _weights(build(1))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert a.keys() == b.keys() == c.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert any(not torch.equal(a[n], c[n]) for n in a)


@pytest.mark.parametrize("build", [
    lambda **kw: Conv4(n_classes=5, **kw),
    lambda **kw: MLP(1, (40, 40), 1, **kw),
])
def test_seeded_init_is_torchs_default_init(build):
    """Same distributions, same order: torch's own init after torch.manual_seed(s) (an
    independent reference) gives exactly the seeded weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        reference = _weights(build())
    seeded = _weights(build(seed=3))
    for name in reference:
        torch.testing.assert_close(seeded[name], reference[name], rtol=0, atol=0)


def test_unseeded_models_still_use_the_global_rng():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        a = _weights(Conv4())
        b = _weights(Conv4())
    assert not torch.equal(a["features.0.0.weight"], b["features.0.0.weight"])


def test_init_from_seed_refuses_layers_it_cannot_initialise():
    from companion.models import init_from_seed

    with pytest.raises(ValueError, match="cannot initialise layer '1'"):
        init_from_seed(nn.Sequential(nn.Linear(2, 2), nn.LSTM(2, 2)), 0)
