"""The multi-task learners: one training step against a manual computation, and bad input."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from companion.data import MultiTaskBatch
from companion.multitask import (
    GradientMultiTaskLearner,
    HardSharing,
    L2CoupledTowers,
    MultiTaskConfig,
    MultiTaskLearner,
    min_norm_weights,
    multitask_learner,
    project_conflicting,
    task_gradients,
)
from tests.multitask._helpers import randn, reinit


def _model() -> HardSharing:
    return reinit(HardSharing(nn.Sequential(nn.Linear(4, 6), nn.Tanh()),
                              {"a": nn.Linear(6, 3), "b": nn.Linear(6, 1)}), seed=1)


def _batch() -> MultiTaskBatch:
    x = randn(8, 4, seed=2)
    return MultiTaskBatch.shared(x, {"a": torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]),
                                     "b": randn(8, 1, seed=3)})


KINDS = {"a": "classification", "b": "regression"}


def _losses(model: nn.Module, batch: MultiTaskBatch) -> dict[str, torch.Tensor]:
    out = model(batch.x["a"])
    return {"a": F.cross_entropy(out["a"], batch.y["a"]), "b": F.mse_loss(out["b"], batch.y["b"])}


def test_factory_picks_the_class_and_loss_methods_use_training_loss():
    assert type(multitask_learner(_model(), KINDS, method="dwa")) is MultiTaskLearner
    assert type(multitask_learner(_model(), KINDS, method="pcgrad")) is GradientMultiTaskLearner
    learner = multitask_learner(_model(), KINDS)
    assert not hasattr(learner, "training_step")
    loss, metrics = learner.training_loss(_batch())
    expected = _losses(learner.model, _batch())
    torch.testing.assert_close(loss, expected["a"] + expected["b"])
    torch.testing.assert_close(metrics["loss/a"], expected["a"].detach())


def test_uncertainty_parameters_are_part_of_the_learner():
    learner = multitask_learner(_model(), KINDS, method="uncertainty")
    names = [n for n, _ in learner.named_parameters()]
    assert "weighting.log_variance" in names
    loss, metrics = learner.training_loss(_batch())
    expected = _losses(learner.model, _batch())  # log-variances start at 0
    torch.testing.assert_close(loss, expected["a"] + 0.5 * expected["b"])
    assert float(metrics["weight/b"]) == pytest.approx(0.5)


def test_pcgrad_step_equals_the_manual_computation():
    learner = multitask_learner(_model(), KINDS, method="pcgrad", pcgrad_seed=4)
    reference = _model()
    batch = _batch()
    losses = _losses(reference, batch)
    shared = reference.shared_parameters()
    grads = task_gradients(losses, shared)
    projected = project_conflicting(grads, generator=torch.Generator().manual_seed(4))
    expected = {n: projected["a"][n] + projected["b"][n] for n in shared}
    (losses["a"] + losses["b"]).backward()  # heads: their own task's gradient
    opt = torch.optim.SGD(learner.parameters(), lr=0.1)
    loss, _ = learner.training_step(batch, opt)
    torch.testing.assert_close(loss, (losses["a"] + losses["b"]).detach())
    for name, p in learner.model.named_parameters():
        ref = dict(reference.named_parameters())[name]
        step = expected[name] if name in shared else ref.grad
        torch.testing.assert_close(p.detach(), ref.detach() - 0.1 * step)


@pytest.mark.parametrize("method", ["mgda", "mgda_ub"])
def test_mgda_steps_use_the_min_norm_weights(method):
    learner = multitask_learner(_model(), KINDS, method=method)
    reference = _model()
    batch = _batch()
    if method == "mgda":
        losses = _losses(reference, batch)
        grads = task_gradients(losses, reference.shared_parameters())
    else:
        z = reference.encode(batch.x["a"])
        out = reference.decode(z)
        losses = {"a": F.cross_entropy(out["a"], batch.y["a"]),
                  "b": F.mse_loss(out["b"], batch.y["b"])}
        grads = task_gradients(losses, {"z": z})
    gram = torch.stack([torch.stack([(grads[i][n] * grads[j][n]).sum() for n in grads[i]]).sum()
                        for i in ("a", "b") for j in ("a", "b")]).reshape(2, 2)
    alpha = min_norm_weights(gram).float()
    (alpha[0] * losses["a"] + alpha[1] * losses["b"]).backward()
    opt = torch.optim.SGD(learner.parameters(), lr=0.5)
    _, metrics = learner.training_step(batch, opt)
    assert float(metrics["weight/a"]) == pytest.approx(float(alpha[0]), abs=1e-6)
    for name, p in learner.model.named_parameters():
        ref = dict(reference.named_parameters())[name]
        torch.testing.assert_close(p.detach(), ref.detach() - 0.5 * ref.grad)


def test_gradnorm_step_and_its_optimisers():
    learner = multitask_learner(_model(), KINDS, method="gradnorm", gradnorm_layer="trunk.0")
    assert isinstance(learner, GradientMultiTaskLearner)
    model_opt = torch.optim.SGD(learner.model_parameters(), lr=0.1)
    weight_opt = torch.optim.SGD(learner.gradnorm.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="optimizers"):
        learner.training_step(_batch(), model_opt)
    with pytest.raises(ValueError, match=r"optimizers\[0\]"):
        learner.training_step(_batch(), (torch.optim.SGD(learner.parameters(), lr=0.1),
                                         weight_opt))
    before = learner.gradnorm.weights.detach().clone()
    learner.training_step(_batch(), (model_opt, weight_opt))
    after = learner.gradnorm.weights.detach()
    assert not torch.equal(before, after)
    assert float(after.sum()) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="gradnorm_layer"):
        multitask_learner(_model(), KINDS, method="gradnorm", gradnorm_layer="heads")


def test_evaluation_metrics():
    learner = multitask_learner(_model(), KINDS)
    batch = _batch()
    metrics = learner.evaluation_metrics(batch)
    out = learner.model(batch.x["a"])
    acc = (out["a"].argmax(1) == batch.y["a"]).float().mean()
    torch.testing.assert_close(metrics["accuracy/a"], acc)
    torch.testing.assert_close(metrics["mse/b"], F.mse_loss(out["b"], batch.y["b"]))
    torch.testing.assert_close(metrics["accuracy/mean"], acc)


def test_per_task_inputs_are_routed_to_their_task():
    learner = multitask_learner(_model(), {"a": "classification", "b": "classification"})
    learner.model.heads["b"] = nn.Linear(6, 2)
    xa, xb = randn(5, 4, seed=5), randn(3, 4, seed=6)
    batch = MultiTaskBatch({"a": xa, "b": xb}, {"a": torch.zeros(5, dtype=torch.long),
                                                "b": torch.ones(3, dtype=torch.long)})
    out = learner.outputs(batch)
    torch.testing.assert_close(out["a"], learner.model(xa)["a"])
    torch.testing.assert_close(out["b"], learner.model(xb)["b"])


def test_l2_coupling_enters_the_loss():
    towers = {t: reinit(nn.Linear(4, 1), i) for i, t in enumerate(("a", "b"))}
    learner = multitask_learner(L2CoupledTowers(towers), dict.fromkeys("ab", "regression"),
                                coupling=0.3)
    x = randn(6, 4)
    batch = MultiTaskBatch.shared(x, {"a": randn(6, 1, seed=1), "b": randn(6, 1, seed=2)})
    loss, _ = learner.training_loss(batch)
    expected = (F.mse_loss(towers["a"](x), batch.y["a"]) + F.mse_loss(towers["b"](x), batch.y["b"])
                + 0.3 * learner.model.coupling_penalty())
    torch.testing.assert_close(loss, expected)
    with pytest.raises(ValueError, match="shares no parameters"):
        multitask_learner(L2CoupledTowers(towers), dict.fromkeys("ab", "regression"),
                          method="pcgrad")


def test_bad_configuration_and_input():
    with pytest.raises(ValueError, match="method"):
        MultiTaskConfig(method="sum")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="coupling"):
        MultiTaskConfig(coupling=-1.0)
    with pytest.raises(ValueError, match="dwa_temperature"):
        MultiTaskConfig(dwa_temperature=0.0)
    with pytest.raises(ValueError, match=r"config\.method"):
        MultiTaskLearner(_model(), KINDS, method="pcgrad")
    with pytest.raises(ValueError, match="kinds must have exactly one entry per task"):
        multitask_learner(_model(), {"a": "classification"})
    with pytest.raises(ValueError, match="coupling"):
        multitask_learner(_model(), KINDS, coupling=1.0)
    with pytest.raises(ValueError, match="mgda_ub"):
        multitask_learner(L2CoupledTowers({"a": nn.Linear(2, 1), "b": nn.Linear(2, 1)}),
                          method="mgda_ub")
    learner = multitask_learner(_model(), KINDS, method="pcgrad")
    opt = torch.optim.SGD(learner.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="batch has tasks"):
        learner.training_step(MultiTaskBatch.shared(randn(2, 4), {"a": torch.zeros(2).long()}),
                              opt)
    bad = _batch()
    bad_x = bad.x["a"].clone()
    bad_x[0, 0] = math.nan
    with pytest.raises(ValueError, match=r"losses\['a'\] is not finite"):
        learner.training_step(MultiTaskBatch.shared(bad_x, bad.y), opt)
    with pytest.raises(ValueError, match="optimizers"):
        learner.training_step(_batch(), (opt, opt))
    with pytest.raises(ValueError, match=r"batch.y\['b'\]"):
        multitask_learner(_model(), KINDS).training_loss(
            MultiTaskBatch.shared(randn(8, 4), {"a": _batch().y["a"], "b": randn(8)}))


def test_pcgrad_order_survives_a_checkpoint(tmp_path):
    learner = multitask_learner(_model(), KINDS, method="pcgrad", pcgrad_seed=1)
    learner.gradient_method.generator.manual_seed(99)  # as if some steps had been taken
    path = tmp_path / "learner.pt"
    torch.save(learner.state_dict(), path)
    fresh = multitask_learner(_model(), KINDS, method="pcgrad", pcgrad_seed=1)
    fresh.load_state_dict(torch.load(path, weights_only=True))
    assert torch.equal(fresh.gradient_method.generator.get_state(),
                       torch.Generator().manual_seed(99).get_state())


@pytest.mark.parametrize("method", ["pcgrad", "mgda", "gradnorm"])
def test_fit_trains_gradient_methods_and_resumes_from_a_checkpoint(tmp_path, method):
    """fit's checkpoint identity reads every state_dict entry's shape (extra state included)."""
    from companion import fit
    from companion.data import MultiTaskSampler

    x = randn(32, 4, seed=5)
    source = MultiTaskSampler.from_arrays({"a": x, "b": x}, {"a": torch.arange(32) % 3,
                                                               "b": randn(32, 1, seed=6)}, seed=0)
    learner = multitask_learner(_model(), KINDS, method=method, pcgrad_seed=2)
    params = learner.model_parameters() if method == "gradnorm" else learner.parameters()
    opt = torch.optim.SGD(params, lr=0.05)
    opts = (opt, torch.optim.SGD(learner.gradnorm.parameters(), lr=0.05)) \
        if method == "gradnorm" else opt
    before = {n: p.detach().clone() for n, p in learner.named_parameters()}
    history = fit(learner, source, opts, iterations=4, batch_size=8, checkpoint=tmp_path / "c.pt",
                  checkpoint_every=2, progress=False)
    assert len(history.loss) == 4 and (tmp_path / "c.pt").exists()
    assert any(not torch.equal(before[n], p) for n, p in learner.named_parameters())
    state = learner.state_dict()
    fresh = multitask_learner(_model(), KINDS, method=method, pcgrad_seed=2)
    fresh.load_state_dict(state)
    for (n, p), q in zip(learner.named_parameters(), fresh.parameters(), strict=True):
        assert torch.equal(p, q), n
