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


def test_query_batching_loop_and_vmap_agree_and_each_query_is_on_its_own():
    from companion.meta.functional import predict_queries

    torch.manual_seed(0)
    model = Conv4(n_classes=3, norm="batch_stats", image_size=16, hidden_channels=8, seed=0)
    params = dict(model.named_parameters())
    support, queries = torch.rand(6, 1, 16, 16), torch.rand(5, 1, 16, 16)
    out = {mode: predict_queries(model, params, support, queries, transductive=False,
                                 query_batching=mode) for mode in ("auto", "vmap", "loop")}
    torch.testing.assert_close(out["vmap"], out["loop"], rtol=1e-5, atol=1e-6)
    assert torch.equal(out["auto"], out["loop"]), "on a CPU auto is the loop"
    alone = predict_queries(model, params, support, queries[2:3], transductive=False)
    torch.testing.assert_close(alone[0], out["loop"][2])  # the other queries do not matter
    together = predict_queries(model, params, support, queries, transductive=True)
    assert not torch.allclose(together, out["loop"]), "transductive differs (batch statistics)"


def test_query_batching_must_be_known():
    from companion.meta.functional import predict_queries

    model = Conv4(n_classes=3, norm="batch_stats", image_size=16, hidden_channels=8, seed=0)
    with pytest.raises(ValueError, match="query_batching"):
        predict_queries(model, dict(model.named_parameters()), torch.rand(3, 1, 16, 16),
                        torch.rand(2, 1, 16, 16), transductive=False, query_batching="batch")
