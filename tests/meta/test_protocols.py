"""One adaptation, both test protocols: equal to calling predict once per protocol."""

from __future__ import annotations

import pytest
import torch

from companion import MAML, Conv4, EpisodeSampler, evaluate_all
from companion.meta import BothProtocols, Reptile
from companion.metrics import accuracy
from tests.conftest import make_dataset


@pytest.mark.parametrize("kind", ["maml", "reptile"])
def test_both_protocols_equal_two_predict_calls(kind):
    tiny_dataset = make_dataset([6] * 10, image_size=16)
    model = Conv4(n_classes=3, norm="batch_stats", image_size=16, hidden_channels=8, seed=0)
    learner = (MAML(model, inner_lr=0.3, eval_inner_steps=2) if kind == "maml" else
               Reptile(model, eval_inner_steps=3, eval_inner_batch_size=2))
    sampler = EpisodeSampler(tiny_dataset, n_way=3, n_shot=2, n_query=2, seed=4)
    both = BothProtocols(learner)
    for _ in range(3):
        episode = sampler.sample()
        got = both.evaluation_metrics(episode)
        for name, transductive in (("accuracy", True), ("accuracy_non_transductive", False)):
            expected = accuracy(learner.predict(episode, transductive=transductive),
                                episode.query_y)
            assert got[name].item() == expected.item()
    results = evaluate_all(both, EpisodeSampler(tiny_dataset, n_way=3, n_shot=2, n_query=2,
                                                seed=4), n_episodes=3, progress=False)
    assert set(results) == {"accuracy", "accuracy_non_transductive"}


def test_both_protocols_needs_an_adapting_learner():
    with pytest.raises(ValueError, match="evaluation_weights"):
        BothProtocols(torch.nn.Linear(2, 2))
