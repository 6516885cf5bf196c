"""The shared loop: confidence intervals, evaluation, training, exact resume from checkpoints."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from companion import Conv4, EpisodeSampler, PrototypicalNetwork, evaluate, fit, mean_ci95
from companion.data import Episode, EpisodeBatch
from companion.training import accuracy
from tests.conftest import make_dataset


def test_mean_ci95_by_hand():
    values = [0.2, 0.4, 0.6, 0.8]
    mean = 0.5
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 3)
    result = mean_ci95(values)
    assert result.mean == pytest.approx(mean)
    assert result.ci95 == pytest.approx(1.959963984540054 * std / 2)
    assert result.n_episodes == 4
    assert str(result) == f"50.00 ± {100 * result.ci95:.2f}% (4 episodes)"
    with pytest.raises(ValueError, match="at least 2"):
        mean_ci95([1.0])
    with pytest.raises(ValueError, match="finite"):
        mean_ci95([1.0, float("nan")])


def test_accuracy():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, 0.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1])).item() == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="expected"):
        accuracy(logits, torch.tensor([0, 1]))


class _Oracle:
    def predict(self, episode: Episode) -> torch.Tensor:
        return nn.functional.one_hot(episode.query_y, episode.n_way).float()


def test_evaluate_perfect_and_chance_learners(tiny_dataset):
    sampler = EpisodeSampler(tiny_dataset, n_way=5, n_shot=1, n_query=1, seed=0)
    perfect = evaluate(_Oracle(), sampler, n_episodes=20, progress=False)
    assert perfect.mean == 1.0 and perfect.ci95 == 0.0
    chance = evaluate(lambda ep: torch.zeros(len(ep.query_y), ep.n_way), sampler,
                      n_episodes=50, progress=False)
    assert chance.mean == pytest.approx(0.2)  # arg-max of ties is label 0: 1 of 5 queries
    with pytest.raises(ValueError, match="n_episodes"):
        evaluate(_Oracle(), sampler, n_episodes=1)


def test_evaluate_restores_training_mode(tiny_dataset):
    net = PrototypicalNetwork(nn.Flatten())
    sampler = EpisodeSampler(tiny_dataset, n_way=2, n_shot=1, n_query=1, seed=0)
    net.train()
    evaluate(net, sampler, n_episodes=2, progress=False)
    assert net.training


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    dataset = make_dataset([20] * 8, image_size=16)
    dataset = type(dataset)(torch.randint(0, 256, dataset.images.shape, dtype=torch.uint8,
                                          generator=torch.Generator().manual_seed(1)),
                            dataset.labels, dataset.class_names, "noise")
    net = PrototypicalNetwork(Conv4(image_size=16, hidden_channels=8))
    sampler = EpisodeSampler(dataset, n_way=3, n_shot=2, n_query=3, seed=seed)
    return net, sampler, torch.optim.Adam(net.parameters(), lr=1e-2)


def test_fit_records_history_and_learns(tiny_dataset):
    net, sampler, opt = _setup()
    history = fit(net, sampler, opt, iterations=30, meta_batch_size=2, progress=False)
    assert history.iteration == list(range(1, 31)) and len(history.loss) == 30
    assert len(history.metrics["accuracy"]) == 30 and history.seconds > 0
    # memorising 8 fixed noise classes is easy: the loss must drop
    assert sum(history.loss[-5:]) < sum(history.loss[:5])


def test_fit_validates_periodically():
    net, sampler, opt = _setup()
    val = EpisodeSampler(sampler.dataset, n_way=3, n_shot=1, n_query=1, seed=9)
    history = fit(net, sampler, opt, iterations=6, progress=False, validate_every=3,
                  validate=lambda: evaluate(net, val, n_episodes=4, progress=False))
    assert [v["iteration"] for v in history.validation] == [3, 6]


def test_resume_from_checkpoint_equals_an_uninterrupted_run(tmp_path):
    net, sampler, opt = _setup()
    full = fit(net, sampler, opt, iterations=12, meta_batch_size=2, progress=False)
    reference = {k: v.clone() for k, v in net.state_dict().items()}

    ckpt = tmp_path / "run.pt"
    net, sampler, opt = _setup()
    fit(net, sampler, opt, iterations=7, meta_batch_size=2, progress=False, checkpoint=ckpt,
        checkpoint_every=7)
    net, sampler, opt = _setup(seed=0)  # a fresh process: new objects, same configuration
    resumed = fit(net, sampler, opt, iterations=12, meta_batch_size=2, progress=False,
                  checkpoint=ckpt, checkpoint_every=5)
    assert resumed.loss == pytest.approx(full.loss)
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, reference[k])
    # each call that trained is one segment, kept in the checkpoint
    threads = torch.get_num_threads()
    assert [(s["first"], s["last"], s["threads"], s["processes"], s["device"])
            for s in resumed.segments] == [(1, 7, threads, 1, "cpu"), (8, 12, threads, 1, "cpu")]
    assert sum(s["seconds"] for s in resumed.segments) == pytest.approx(resumed.seconds, abs=0.01)
    again = fit(net, sampler, opt, iterations=12, meta_batch_size=2, progress=False,
                checkpoint=ckpt)  # nothing left to train: no new segment
    assert again.segments == resumed.segments


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"iterations": 0}, "iterations"),
    ({"meta_batch_size": 0}, "meta_batch_size"),
    ({"validate_every": 5}, "validate_every"),
])
def test_fit_bad_arguments(kwargs, message):
    net, sampler, opt = _setup()
    with pytest.raises(ValueError, match=message):
        fit(net, sampler, opt, **{"iterations": 1, **kwargs})


def test_fit_stops_on_a_non_finite_loss():
    net, sampler, _ = _setup()
    opt = torch.optim.SGD(net.parameters(), lr=1e30)  # diverges at once
    with pytest.raises(RuntimeError, match="became"):
        fit(net, sampler, opt, iterations=20, progress=False)


def test_resume_refuses_inconsistent_checkpoints(tmp_path):
    net, sampler, opt = _setup()
    fit(net, sampler, opt, iterations=4, progress=False, checkpoint=tmp_path / "c.pt",
        checkpoint_every=4)
    with pytest.raises(ValueError, match="beyond"):
        fit(net, sampler, opt, iterations=2, progress=False, checkpoint=tmp_path / "c.pt")
    scheduler = torch.optim.lr_scheduler.StepLR(opt, 1)
    with pytest.raises(ValueError, match="no scheduler state"):
        fit(net, sampler, opt, iterations=6, scheduler=scheduler, progress=False,
            checkpoint=tmp_path / "c.pt")


def test_fit_needs_a_meta_loss():
    _, sampler, opt = _setup()
    with pytest.raises(ValueError, match="meta_loss"):
        fit(nn.Linear(2, 2), sampler, opt, iterations=1)


def test_protonet_meta_loss_on_a_batch_is_the_mean_over_tasks(tiny_dataset):
    net, sampler, _ = _setup()
    batch = sampler.sample_batch(3)
    loss, _ = net.meta_loss(batch)
    singles = [net.meta_loss(EpisodeBatch.stack([ep]))[0] for ep in batch]
    torch.testing.assert_close(loss, torch.stack(singles).mean())
