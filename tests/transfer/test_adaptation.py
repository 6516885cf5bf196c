"""The domain-adaptation learner: each method's loss by hand, warm-up, bad input, learning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from companion.transfer import (
    DomainAdaptation,
    DomainAdaptationConfig,
    DomainBatch,
    DomainPairSampler,
    coral_loss,
    dann_coefficient,
    mmd2_unbiased,
)


def _learner(method: str, **overrides) -> DomainAdaptation:
    torch.manual_seed(0)  # module initialisation only; restored by the fixture below
    return DomainAdaptation(nn.Sequential(nn.Linear(3, 4), nn.Tanh()), nn.Linear(4, 2),
                            feature_dim=4, method=method, **overrides)


def _pair(n_s: int = 6, n_t: int = 5, seed: int = 0) -> tuple[DomainBatch, DomainBatch]:
    g = torch.Generator().manual_seed(seed)
    source = DomainBatch(torch.randn(n_s, 3, generator=g), torch.arange(n_s) % 2)
    target = DomainBatch(torch.randn(n_t, 3, generator=g) + 1.0)
    return source, target


def _ce(learner: DomainAdaptation, batch: DomainBatch) -> torch.Tensor:
    return F.cross_entropy(learner(batch.x), batch.y)


def test_source_only_is_plain_cross_entropy_and_ignores_the_target():
    da = _learner("source_only")
    source, target = _pair()
    loss, metrics = da.training_loss((source, target))
    torch.testing.assert_close(loss, _ce(da, source))
    other = DomainBatch(torch.full((2, 3), 100.0))
    torch.testing.assert_close(da.training_loss((source, other))[0], loss)
    assert set(metrics) >= {"source_loss", "source_accuracy", "alignment", "coefficient"}


@pytest.mark.parametrize(("method", "align"), [("coral", coral_loss), ("mmd", mmd2_unbiased)])
def test_alignment_methods_add_weight_times_the_loss_on_features(method, align):
    da = _learner(method, alignment_weight=0.7)
    source, target = _pair()
    loss, metrics = da.training_loss((source, target))
    z_s, z_t = da.encoder(source.x), da.encoder(target.x)
    torch.testing.assert_close(loss, _ce(da, source) + 0.7 * align(z_s, z_t))
    torch.testing.assert_close(metrics["alignment"], align(z_s, z_t).detach())


def test_dann_reverses_the_domain_gradient_in_the_encoder_only():
    da = _learner("dann", alignment_weight=0.5)
    source, target = _pair()
    loss, metrics = da.training_loss((source, target))
    assert 0 <= metrics["domain_accuracy"].item() <= 1
    enc = list(da.encoder.parameters())
    disc = list(da.adversary.discriminator.parameters())
    g_loss = torch.autograd.grad(loss, enc + disc)
    # reference: the same terms without reversal
    z_s, z_t = da.encoder(source.x), da.encoder(target.x)
    dom = da.adversary.loss_from_logits(da.adversary.discriminator(z_s),
                                        da.adversary.discriminator(z_t))
    g_ce = torch.autograd.grad(_ce(da, source), enc)
    g_dom = torch.autograd.grad(dom, enc + disc)
    for got, ce, d in zip(g_loss[:len(enc)], g_ce, g_dom[:len(enc)], strict=True):
        torch.testing.assert_close(got, ce - 0.5 * d)  # features: reversed
    for got, d in zip(g_loss[len(enc):], g_dom[len(enc):], strict=True):
        torch.testing.assert_close(got, 0.5 * d)  # discriminator: plain descent


def test_importance_with_precomputed_weights_and_flattening():
    source, target = _pair()
    w = torch.tensor([1.0, 3.0, 0.0, 2.0, 1.0, 1.0])
    weighted = DomainBatch(source.x, source.y, w)
    for exponent in (1.0, 0.5, 0.0):
        da = _learner("importance", alignment_weight=exponent)
        _, metrics = da.training_loss((weighted, target))
        ce = F.cross_entropy(da(source.x), source.y, reduction="none")
        wf = w ** exponent
        torch.testing.assert_close(metrics["source_loss"], (wf * ce).sum() / wf.sum())


def test_importance_online_weights_use_the_domain_classifier_odds():
    da = _learner("importance", weight_clip=None)
    with torch.no_grad():
        da.domain_classifier.weight.zero_()
        da.domain_classifier.bias.copy_(torch.tensor([0.0, 0.0]))
    source, target = _pair(n_s=6, n_t=3)
    loss, metrics = da.training_loss((source, target))
    # constant odds 1 -> every weight is n_s / n_t: the weighted mean is the plain mean
    torch.testing.assert_close(metrics["source_loss"], _ce(da, source))
    torch.testing.assert_close(loss - metrics["source_loss"], torch.tensor(2.0).log())
    # the domain classifier's loss does not reach the encoder (its features are detached)
    enc = list(da.encoder.parameters())
    for got, ce in zip(torch.autograd.grad(loss, enc), torch.autograd.grad(_ce(da, source), enc),
                       strict=True):
        torch.testing.assert_close(got, ce)


def test_warm_up_schedule_counts_training_steps_and_is_saved():
    da = _learner("coral", alignment_weight=2.0, warmup_steps=4)
    pair = _pair()
    seen = [da.training_loss(pair)[1]["coefficient"].item() for _ in range(6)]
    expected = [dann_coefficient(min(t / 4, 1.0), max_value=2.0) for t in range(6)]
    assert seen == pytest.approx(expected)
    da.eval()
    da.training_loss(pair)
    assert int(da.steps_done) == 6  # evaluation-mode calls do not advance the schedule
    clone = _learner("coral", alignment_weight=2.0, warmup_steps=4)
    clone.load_state_dict(da.state_dict())
    assert clone.alignment_coefficient() == pytest.approx(da.alignment_coefficient())


def test_evaluation_metrics_on_a_labelled_batch():
    da = _learner("dann")
    source, _ = _pair()
    metrics = da.evaluation_metrics(source)
    expected = (da(source.x).argmax(1) == source.y).float().mean()
    torch.testing.assert_close(metrics["accuracy"], expected)
    with pytest.raises(ValueError, match="labels"):
        da.evaluation_metrics(DomainBatch(source.x))


@pytest.mark.parametrize("method", ["importance", "coral", "mmd", "dann"])
def test_bad_batches(method):
    da = _learner(method)
    source, target = _pair()
    with pytest.raises(ValueError, match="pair"):
        da.training_loss(source)
    with pytest.raises(ValueError, match="target_batch"):
        da.training_loss((source, DomainBatch.__new__(DomainBatch)))
    with pytest.raises(ValueError, match="labels"):
        da.training_loss((DomainBatch(source.x), target))
    with pytest.raises(ValueError, match="input shape"):
        da.training_loss((source, DomainBatch(torch.randn(4, 5))))
    empty = type("Empty", (), {"x": torch.zeros(0, 3)})()
    with pytest.raises(ValueError, match="target_batch is empty"):
        da.training_loss((source, empty))


def test_encoder_of_the_wrong_size_is_reported():
    da = DomainAdaptation(nn.Linear(3, 5), nn.Linear(5, 2), feature_dim=4, method="coral")
    with pytest.raises(ValueError, match="feature_dim"):
        da.training_loss(_pair())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"method": "adabn"}, "method"), ({"alignment_weight": -1.0}, "alignment_weight"),
    ({"warmup_steps": -1}, "warmup_steps"), ({"gamma": 0.0}, "gamma"),
    ({"weight_clip": 0.0}, "weight_clip"), ({"discriminator_hidden": (0,)}, "hidden"),
    ({"mmd_multipliers": ()}, "mmd_multipliers"),
])
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DomainAdaptationConfig(**kwargs)


def test_domain_batch_checks():
    with pytest.raises(ValueError, match="empty"):
        DomainBatch(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="y must be int64"):
        DomainBatch(torch.zeros(2, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="weight"):
        DomainBatch(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), torch.tensor([1.0, -1]))
    with pytest.raises(ValueError, match="floating-point"):
        DomainBatch(torch.zeros(2, 3, dtype=torch.long))


def test_pair_sampler_is_seeded_and_never_leaks_target_labels():
    xs, ys = torch.randn(20, 3), torch.arange(20) % 2
    xt, yt = torch.randn(15, 3), torch.arange(15) % 2
    a = DomainPairSampler(xs, ys, xt, target_y=yt, seed=3)
    b = DomainPairSampler(xs, ys, xt, target_y=yt, seed=3)
    (sa, ta), (sb, tb) = a.sample_batch(8), b.sample_batch(8)
    torch.testing.assert_close(sa.x, sb.x)
    torch.testing.assert_close(ta.x, tb.x)
    assert ta.y is None and sa.y is not None
    assert len(torch.unique(sa.x, dim=0)) == 8  # without replacement
    assert a.sample_target(5).y is not None
    with pytest.raises(ValueError, match="exceeds"):
        a.sample_batch(16)
    with pytest.raises(ValueError, match="input"):
        DomainPairSampler(xs, ys, torch.randn(5, 4), seed=0)
    with pytest.raises(ValueError, match="seed"):
        DomainPairSampler(xs, ys, xt)


@pytest.mark.slow
def test_mmd_ignores_a_spurious_feature_that_source_only_relies_on():
    """Source: the label is in x1 (noisy) and x2 (clean, spurious); target: x2 is a constant
    3 (+ noise) unrelated to the label. Source-only leans on x2 and fails on the target;
    aligning the feature distributions (MMD) must drop x2, which gives the domain away, and
    use x1. (Target accuracy over seeds 1-3: 0.90-0.95. DANN solves this toy too, but only
    for some seeds and learning rates, so it is not a reliable test.)"""
    g = torch.Generator().manual_seed(0)
    n = 400
    y_s, y_t = torch.arange(n) % 2, torch.arange(n) % 2
    sign_s, sign_t = 2.0 * y_s - 1, 2.0 * y_t - 1
    x_s = torch.stack([sign_s + 0.6 * torch.randn(n, generator=g),
                       2 * sign_s + 0.1 * torch.randn(n, generator=g)], 1)
    x_t = torch.stack([sign_t + 0.6 * torch.randn(n, generator=g),
                       3 + 0.1 * torch.randn(n, generator=g)], 1)
    results = {}
    for method in ("source_only", "mmd"):
        torch.manual_seed(0)
        da = DomainAdaptation(nn.Sequential(nn.Linear(2, 8), nn.ReLU()), nn.Linear(8, 2),
                              feature_dim=8, method=method, alignment_weight=1.0,
                              discriminator_hidden=(16,), warmup_steps=100)
        sampler = DomainPairSampler(x_s, y_s, x_t, target_y=y_t, seed=0)
        opt = torch.optim.Adam(da.parameters(), lr=1e-2)
        for _ in range(300):
            loss, _ = da.training_loss(sampler.sample_batch(64))
            opt.zero_grad()
            loss.backward()
            opt.step()
        results[method] = da.evaluation_metrics(DomainBatch(x_t, y_t))["accuracy"].item()
    assert results["source_only"] < 0.7
    assert results["mmd"] > 0.85
