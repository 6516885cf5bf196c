"""Bad input to MAML and Reptile gives a clear ValueError naming the argument, never a raw
IndexError from cross-entropy or a silently non-finite prediction."""

from __future__ import annotations

import pytest
import torch

from companion.data import Episode, EpisodeBatch
from companion.meta.maml import MAML, MAMLConfig
from companion.meta.reptile import Reptile, ReptileConfig
from companion.models import MLP, Conv4


def _conv4(n_classes: int = 5) -> Conv4:
    return Conv4(n_classes=n_classes, hidden_channels=4, seed=0)


LEARNERS = {
    "maml": lambda n=5: MAML(_conv4(n), eval_inner_steps=1),
    "reptile": lambda n=5: Reptile(_conv4(n), eval_inner_steps=1),
}


def _episode(n_way: int = 5, queries: int = 2, seed: int = 0) -> Episode:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n_way)
    return Episode(torch.rand(n_way, 1, 28, 28, generator=g), labels,
                   torch.rand(n_way * queries, 1, 28, 28, generator=g),
                   labels.repeat_interleave(queries))


def _poisoned(which: str, value: float) -> Episode:
    ep = _episode()
    x = getattr(ep, which).clone()
    x[0, 0, 3, 3] = value
    parts = {"support_x": ep.support_x, "query_x": ep.query_x, which: x}
    return Episode(parts["support_x"], ep.support_y, parts["query_x"], ep.query_y)


@pytest.mark.parametrize("name", LEARNERS)
@pytest.mark.parametrize("which", ["support_x", "query_x"])
@pytest.mark.parametrize("value", [float("nan"), float("-inf")])
def test_non_finite_inputs_raise(name, which, value):
    learner = LEARNERS[name]()
    bad = _poisoned(which, value)
    with pytest.raises(ValueError, match=f"{which} holds NaN or infinite"):
        learner.predict(bad)
    with pytest.raises(ValueError, match=f"{which} holds NaN or infinite"):
        learner.meta_loss(EpisodeBatch.stack([_episode(), bad]))


@pytest.mark.parametrize("name", LEARNERS)
def test_non_finite_support_to_adapt(name):
    ep = _poisoned("support_x", float("nan"))
    with pytest.raises(ValueError, match="holds NaN or infinite"):
        LEARNERS[name]().adapt(ep.support_x, ep.support_y, steps=1)


@pytest.mark.parametrize("name", LEARNERS)
def test_non_finite_predictions_from_finite_inputs_raise(name):
    learner = LEARNERS[name]()
    with torch.no_grad():
        learner.model.head.bias.fill_(float("inf"))
    with pytest.raises(ValueError, match="predictions are NaN or infinite although"):
        learner.predict(_episode())


def test_diverging_adaptation_is_not_returned_silently():
    maml = MAML(MLP(1, (8,), 1, seed=0), task="regression", inner_lr=1e6, eval_inner_steps=5)
    x = torch.linspace(-5, 5, 10)[:, None]
    ep = Episode(x, 100 * x, x, 100 * x)
    with pytest.raises(ValueError, match="adaptation diverged"):
        maml.predict(ep)


@pytest.mark.parametrize("name", LEARNERS)
def test_a_10_way_episode_into_a_5_way_head(name):
    learner = LEARNERS[name]()
    ep = _episode(n_way=10, queries=1)
    with pytest.raises(ValueError, match=r"support_y has class label 9, but the model has only "
                                         r"5 outputs"):
        learner.predict(ep)
    with pytest.raises(ValueError, match="class label 9, but the model has only 5 outputs"):
        learner.meta_loss(EpisodeBatch.stack([ep]))


@pytest.mark.parametrize("name", LEARNERS)
def test_a_support_label_beyond_the_head_in_adapt(name):
    learner = LEARNERS[name]()
    ep = _episode()
    labels = torch.tensor([0, 1, 2, 3, 9])
    with pytest.raises(ValueError, match="class label 9, but the model has only 5 outputs"):
        learner.adapt(ep.support_x, labels, steps=1)
    with pytest.raises(ValueError, match="must be >= 0"):
        learner.adapt(ep.support_x, torch.tensor([0, 1, 2, 3, -1]), steps=1)


def test_labels_that_fit_a_wider_head_are_fine():
    ep = _episode(n_way=5)
    assert LEARNERS["maml"](n=7).predict(ep).shape == (10, 7)


@pytest.mark.parametrize("name", LEARNERS)
def test_support_count_mismatch_names_the_arguments(name):
    ep = _episode()
    x, y = ("support_x", "support_y") if name == "maml" else ("x", "y")
    with pytest.raises(ValueError, match=f"{x} and {y} must have one target per example"):
        LEARNERS[name]().adapt(ep.support_x, ep.support_y[:4], steps=1)


@pytest.mark.parametrize("name", LEARNERS)
@pytest.mark.parametrize(("labels", "message"), [
    (torch.arange(5).float(), "int64 class labels"),
    (torch.arange(5).int(), "int64 class labels"),
    ([0, 1, 2, 3, 4], r"must be a torch\.Tensor"),
])
def test_wrong_label_types(name, labels, message):
    with pytest.raises(ValueError, match=message):
        LEARNERS[name]().adapt(_episode().support_x, labels, steps=1)


@pytest.mark.parametrize("name", LEARNERS)
def test_predict_needs_an_episode(name):
    ep = _episode()
    with pytest.raises(ValueError, match="predict needs an Episode"):
        LEARNERS[name]().predict((ep.support_x, ep.support_y, ep.query_x))


@pytest.mark.parametrize("name", LEARNERS)
def test_inputs_of_another_dtype_than_the_model(name):
    ep = _episode().to(dtype=torch.float64)
    with pytest.raises(ValueError, match="convert the images"):
        LEARNERS[name]().predict(ep)


@pytest.mark.parametrize(("cls", "kwargs", "message"), [
    (MAML, {"first_order": "yes"}, "first_order must be True or False"),
    (MAML, {"learn_inner_lr": 1}, "learn_inner_lr must be True or False"),
    (MAML, {"adapt": "head", "head": 3}, "head must be the name"),
    (MAML, {"inner_steps_": 1}, r"unknown MAMLConfig field\(s\) \['inner_steps_'\]"),
    (Reptile, {"outer_lr": "0.1"}, "outer_lr must be a number"),
    (Reptile, {"final_outer_lr": "0"}, "final_outer_lr must be a number"),
    (Reptile, {"epsilon": 0.1}, r"unknown ReptileConfig field\(s\) \['epsilon'\]"),
])
def test_bad_configuration_types(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(_conv4(), **kwargs)


def test_model_and_config_types():
    with pytest.raises(ValueError, match=r"model must be an nn\.Module"):
        MAML(lambda x: x)
    with pytest.raises(ValueError, match=r"model must be an nn\.Module"):
        Reptile(lambda x: x)
    with pytest.raises(ValueError, match="config must be a MAMLConfig"):
        MAML(_conv4(), ReptileConfig())
    with pytest.raises(ValueError, match="config must be a ReptileConfig"):
        Reptile(_conv4(), MAMLConfig())


def test_regression_targets_must_be_finite_floats():
    maml = MAML(MLP(1, (8,), 1, seed=0), task="regression")
    x = torch.linspace(-1, 1, 4)[:, None]
    with pytest.raises(ValueError, match="support_y holds NaN"):
        maml.adapt(x, torch.full((4, 1), float("nan")))
    with pytest.raises(ValueError, match="floating-point regression targets"):
        maml.adapt(x, torch.zeros(4, 1, dtype=torch.int64))
    batch = EpisodeBatch(x[None], torch.full((1, 4, 1), float("inf")), x[None], x[None])
    with pytest.raises(ValueError, match=r"batch\.support_y holds NaN or infinite"):
        maml.meta_loss(batch)


@pytest.mark.parametrize("name", LEARNERS)
def test_regression_targets_must_match_the_predictions(name):
    cls = MAML if name == "maml" else Reptile
    learner = cls(MLP(1, (8,), 2, seed=0), task="regression")
    x = torch.linspace(-1, 1, 4)[:, None]
    with pytest.raises(ValueError, match=r"has shape \(4, 1\) but the model's predictions"):
        learner.adapt(x, torch.zeros(4, 1), steps=1)
    batch = EpisodeBatch(x[None], torch.zeros(1, 4, 1), x[None], torch.zeros(1, 4, 1))
    with pytest.raises(ValueError, match=r"has shape \(\d+, 1\) but the model's predictions"):
        learner.meta_loss(batch)


def test_adaptation_curve_refuses_non_finite_inputs():
    from companion.meta.maml import adaptation_curve

    maml = MAML(MLP(1, (8,), 1, seed=0), task="regression")
    x = torch.linspace(-1, 1, 4)[None, :, None]
    batch = EpisodeBatch(x.clone().fill_(float("nan")), x, x, x)
    with pytest.raises(ValueError, match=r"batch\.support_x holds NaN"):
        adaptation_curve(maml, batch, 1)


def test_mlp_inputs_must_fit_the_first_layer():
    with pytest.raises(ValueError, match=r"x must be \[\.\.\., 1\] \(in_features\)"):
        MAML(MLP(1, (4,), 2)).forward(torch.rand(3, 2))
    with pytest.raises(ValueError, match="convert x"):
        MLP(1, (4,), 2)(torch.rand(3, 1, dtype=torch.float64))


def test_output_shape_is_a_shape_only_forward_pass_that_follows_the_model():
    from companion._checks import output_shape

    model = _conv4(5)
    x = torch.rand(4, 1, 28, 28)
    dropout = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Dropout(0.5))
    before = torch.random.get_rng_state()
    assert output_shape(dropout, torch.ones(2, 3)) == (2, 6)
    assert output_shape(model, x) == (4, 5)
    assert torch.equal(torch.random.get_rng_state(), before)  # no random numbers drawn
    with torch.random.fork_rng(devices=[]):
        model.head = torch.nn.Linear(model.embedding_dim, 8)  # a new head is seen at once
    assert output_shape(model, x) == (4, 8)

    class NoMeta(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.as_tensor(x.tolist())  # needs real data

    assert output_shape(NoMeta(), x) is None  # no check possible, no error either
