"""Bad input to the metric learners gives a clear ValueError, never a NaN score or a raw
torch error: non-finite inputs, mixed dtypes or devices, wrong types."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.data import Episode, EpisodeBatch
from companion.meta import (
    MatchingNetwork,
    NearestNeighbour,
    PrototypicalNetwork,
    RelationNetwork,
)
from companion.meta.relation import relation_module
from companion.models import Conv4


def _relation() -> RelationNetwork:
    encoder = Conv4(hidden_channels=4, norm="batch", pool=(True, True, False, False),
                    flatten=False, seed=0)
    return RelationNetwork(encoder, relation_module(in_channels=8, hidden_channels=4))


LEARNERS = {
    "protonet": lambda: PrototypicalNetwork(Conv4(hidden_channels=4, seed=0)),
    "matching": lambda: MatchingNetwork(Conv4(hidden_channels=4, seed=0)),
    "matching-fce": lambda: MatchingNetwork(Conv4(hidden_channels=4, seed=0), fce=True,
                                            embedding_dim=4),
    "relation": _relation,
    "nearest-neighbour": lambda: NearestNeighbour(),
}


def _episode(dtype: torch.dtype = torch.float32) -> Episode:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(9, 1, 28, 28, generator=g, dtype=dtype)
    y = torch.arange(3).repeat(3)
    return Episode(x[:6], y[:6], x[6:], y[6:])


def _poisoned(which: str, value: float) -> Episode:
    ep = _episode()
    x = getattr(ep, which).clone()
    x[-1, 0, 5, 5] = value
    fields = {"support_x": ep.support_x, "query_x": ep.query_x, which: x}
    return Episode(fields["support_x"], ep.support_y, fields["query_x"], ep.query_y)


@pytest.mark.parametrize("name", LEARNERS)
@pytest.mark.parametrize("which", ["support_x", "query_x"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_inputs_raise_in_predict_and_meta_loss(name, which, value):
    net = LEARNERS[name]().eval()
    bad = _poisoned(which, value)
    with pytest.raises(ValueError, match=f"{which} holds NaN or infinite"):
        net.predict(bad)
    with pytest.raises(ValueError, match=f"{which} holds NaN or infinite"):
        net.meta_loss(EpisodeBatch.stack([_episode(), bad]))
    with pytest.raises(ValueError, match=f"{which} holds NaN or infinite"):
        net.episode_loss(bad)


@pytest.mark.parametrize("name", ["protonet", "relation"])
def test_non_finite_weights_never_give_silent_nan_scores(name):
    net = LEARNERS[name]().eval()
    with torch.no_grad():
        next(net.parameters()).fill_(float("nan"))
    with pytest.raises(ValueError, match="scores are NaN or infinite although the inputs"):
        net.predict(_episode())


@pytest.mark.parametrize("name", LEARNERS)
def test_support_and_query_of_different_dtypes(name):
    net = LEARNERS[name]().eval()
    ep = _episode()
    with pytest.raises(ValueError, match="support_x and query_x must have the same dtype"):
        net(ep.support_x, ep.support_y, ep.query_x.double())


@pytest.mark.parametrize("name", LEARNERS)
def test_support_and_query_on_different_devices(name):
    """The meta device stands in for a GPU: the check runs before any arithmetic."""
    ep = _episode()
    with pytest.raises(ValueError, match="support_x and query_x must be on the same device"):
        LEARNERS[name]()(ep.support_x, ep.support_y, ep.query_x.to("meta"))


@pytest.mark.parametrize("name", ["protonet", "matching", "relation"])
def test_inputs_of_another_dtype_than_the_model(name):
    net = LEARNERS[name]().eval()
    with pytest.raises(ValueError, match="convert the images"):
        net.predict(_episode(torch.float64))


def test_wrong_types_are_value_errors():
    net = LEARNERS["protonet"]()
    ep = _episode()
    with pytest.raises(ValueError, match="predict needs an Episode"):
        net.predict((ep.support_x, ep.support_y, ep.query_x))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"support_x must be a torch\.Tensor"):
        net(ep.support_x.tolist(), ep.support_y, ep.query_x)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="episode_loss needs an Episode"):
        net.episode_loss(EpisodeBatch.stack([ep]))  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"scale": "large"}, "scale must be a positive finite number"),
    ({"fce": "yes", "embedding_dim": 4}, "fce must be True or False"),
    ({"fce": True, "embedding_dim": "64"}, "embedding_dim must be a positive int"),
    ({"fce_steps": True}, "fce_steps must be a positive int"),
])
def test_matching_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MatchingNetwork(nn.Identity(), **kwargs)


@pytest.mark.parametrize("kwargs", [{"in_channels": "128"}, {"hidden_units": 8.0},
                                    {"feature_size": None}])
def test_relation_module_arguments(kwargs):
    with pytest.raises(ValueError, match=f"{next(iter(kwargs))} must be a positive int"):
        relation_module(**kwargs)


def test_encoders_must_be_modules():
    with pytest.raises(ValueError, match=r"encoder must be an nn\.Module"):
        PrototypicalNetwork(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"encoder must be an nn\.Module"):
        MatchingNetwork(lambda x: x)  # type: ignore[arg-type]


def test_fce_embedding_dim_must_match_the_encoder():
    net = MatchingNetwork(nn.Identity(), fce=True, embedding_dim=4)
    with pytest.raises(ValueError, match="embeddings have 3 dimensions, but embedding_dim=4"):
        net(torch.rand(2, 3), torch.arange(2), torch.rand(2, 3))


def test_relation_network_needs_feature_maps():
    net = RelationNetwork(Conv4(hidden_channels=4, seed=0),
                          relation_module(in_channels=8, hidden_channels=4))
    ep = _episode()
    with pytest.raises(ValueError, match=r"feature maps \[n, C, H, W\]"):
        net.predict(ep)


def test_inputs_need_an_example_and_a_feature_dimension():
    with pytest.raises(ValueError, match="at least 2-D"):
        NearestNeighbour()(torch.rand(2), torch.arange(2), torch.rand(2))


@pytest.mark.parametrize(("labels", "message"), [
    (torch.tensor([0, 1, 5]), "labels must be int64 in 0 .. n_way-1"),
    (torch.tensor([0.0, 1.0, 1.0]), "labels must be int64"),
    (torch.tensor([0, 1]), r"expected embeddings \[n, d\] and labels \[n\]"),
])
def test_class_prototypes_arguments(labels, message):
    from companion.meta import class_prototypes

    with pytest.raises(ValueError, match=message):
        class_prototypes(torch.rand(3, 2), labels, 2)
