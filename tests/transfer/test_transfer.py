"""Supervised pre-training and support-set fine-tuning."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion import EpisodeSampler, evaluate
from companion.data import Episode
from companion.transfer import SupportSetFineTuner, train_classifier
from tests.conftest import make_dataset


def _blobs(n_classes: int = 4, per_class: int = 30, seed: int = 0):
    """Images whose class is written as a bright pixel at a class-specific position."""
    ds = make_dataset([per_class] * n_classes, image_size=8, seed=seed)
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 40, ds.images.shape, dtype=torch.uint8, generator=g)
    for c in range(n_classes):
        images[ds.labels == c, 0, 4, c] = 255
    return type(ds)(images, ds.labels, ds.class_names, "blobs")


def test_train_classifier_learns_and_validates():
    ds = _blobs()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))
    calls = []
    history = train_classifier(
        model, ds, torch.optim.Adam(model.parameters(), lr=0.05), steps=40, batch_size=16,
        generator=torch.Generator().manual_seed(0), progress=False, validate_every=20,
        validate=lambda: calls.append(1) or evaluate(lambda e: torch.zeros(len(e.query_y), 2),
                                                     EpisodeSampler(ds, n_way=2, n_shot=1,
                                                                    n_query=1, seed=0),
                                                     n_episodes=2, progress=False))
    assert len(history.loss) == 40 and len(calls) == 2
    assert [v["iteration"] for v in history.validation] == [20, 40]
    assert sum(history.metrics["accuracy"][-5:]) / 5 > 0.9


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"steps": 0}, "steps"), ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 1000}, "exceeds"), ({"validate_every": 3}, "validate_every"),
])
def test_train_classifier_bad_arguments(kwargs, message):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))
    args = {"steps": 1, "batch_size": 4, "generator": torch.Generator(), **kwargs}
    with pytest.raises(ValueError, match=message):
        train_classifier(model, _blobs(), torch.optim.SGD(model.parameters(), lr=0.1), **args)


def test_linear_probe_on_a_good_frozen_embedding_is_perfect():
    ds = _blobs(n_classes=6)
    probe = SupportSetFineTuner(nn.Flatten(), 64, steps=100, lr=0.1)
    sampler = EpisodeSampler(ds, n_way=3, n_shot=1, n_query=5, seed=0)
    assert evaluate(probe, sampler, n_episodes=10, progress=False).mean == 1.0


def test_fine_tuning_does_not_consume_the_global_random_state():
    ds = _blobs(n_classes=4)
    probe = SupportSetFineTuner(nn.Flatten(), 64, steps=3)
    episode = EpisodeSampler(ds, n_way=2, n_shot=1, n_query=1, seed=0).sample()
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    probe.predict(episode)
    assert torch.rand(1) == before


def test_fine_tuning_a_copy_leaves_the_encoder_untouched():
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    tuner = SupportSetFineTuner(encoder, 3, steps=5, finetune_encoder=True)
    ep = Episode(torch.randn(4, 1, 2, 2), torch.tensor([0, 0, 1, 1]), torch.randn(2, 1, 2, 2),
                 torch.tensor([0, 1]))
    assert tuner.predict(ep).shape == (2, 2)
    for k, v in encoder.state_dict().items():
        torch.testing.assert_close(v, before[k])


@pytest.mark.parametrize(("kwargs", "message"), [({"steps": 0}, "steps"), ({"lr": 0}, "lr")])
def test_fine_tuner_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SupportSetFineTuner(nn.Flatten(), 4, **kwargs)
