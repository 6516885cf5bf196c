"""The shared loop with every kind of learner and batch; checkpoints that are data only."""

from __future__ import annotations

import os
import pickle
import signal
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from companion import fit
from companion.data import BatchSampler, LabelledBatch, MultiTaskSource, PairedSource
from companion.engine import CheckpointError
from companion.supervised import SupervisedLearner
from companion.transfer import train_classifier
from tests.conftest import make_dataset


def _xy(n: int = 64, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] > 0).long()


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    learner = SupervisedLearner(nn.Linear(4, 2))
    return learner, BatchSampler(_xy(), seed=1), torch.optim.SGD(learner.parameters(), lr=0.5)


def test_supervised_learner_on_a_batch_sampler_learns():
    learner, source, opt = _setup()
    history = fit(learner, source, opt, iterations=40, batch_size=16, progress=False)
    assert history.metrics["accuracy"][-1] > 0.8 and history.loss[-1] < history.loss[0]


def test_batch_sampler_draws_distinct_rows_and_checks_its_input():
    x, y = _xy(10)
    batch = BatchSampler((x, y), seed=0).sample_batch(10)
    assert sorted(batch.x[:, 0].tolist()) == sorted(x[:, 0].tolist())
    with pytest.raises(ValueError, match="exceeds"):
        BatchSampler((x, y), seed=0).sample_batch(11)
    with pytest.raises(ValueError, match="data must be"):
        BatchSampler(x, seed=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="leading example dimension"):
        LabelledBatch(x, y[:3])


def test_train_classifier_is_fit_of_a_supervised_learner():
    dataset = make_dataset([6] * 4, image_size=8)

    def model() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 4))

    a, b = model(), model()
    h1 = train_classifier(a, dataset, torch.optim.SGD(a.parameters(), lr=0.1), steps=5,
                          batch_size=8, generator=torch.Generator().manual_seed(3),
                          progress=False)
    source = BatchSampler(dataset, generator=torch.Generator().manual_seed(3))
    h2 = fit(SupervisedLearner(b), source, torch.optim.SGD(b.parameters(), lr=0.1),
             iterations=5, batch_size=8, progress=False)
    assert h1.loss == h2.loss and h1.metrics == h2.metrics


class _Pair(nn.Module):
    """A learner on (source, target) pairs: fits the source, pulls the target means together."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 2)

    def training_loss(self, batch: tuple[LabelledBatch, LabelledBatch]):
        source, target = batch
        align = (self.net(source.x).mean(0) - self.net(target.x).mean(0)).square().sum()
        loss = F.cross_entropy(self.net(source.x), source.y) + align
        return loss, {"align": align.detach()}


def test_paired_and_multi_task_sources():
    x, y = _xy()
    pair = PairedSource(BatchSampler((x, y), seed=0), BatchSampler((x + 3, y), seed=1))
    s, t = pair.sample_batch(5)
    assert len(s) == len(t) == 5 and len(pair.generators) == 2
    learner = _Pair()
    history = fit(learner, pair, torch.optim.SGD(learner.parameters(), lr=0.1), iterations=3,
                  batch_size=8, progress=False)
    assert len(history.metrics["align"]) == 3
    tasks = MultiTaskSource({"a": BatchSampler((x, y), seed=0), "b": BatchSampler((x, y), seed=2)})
    assert set(tasks.sample_batch(4)) == {"a", "b"} and len(tasks.generators) == 2
    with pytest.raises(ValueError, match="non-empty mapping"):
        MultiTaskSource({})
    with pytest.raises(ValueError, match=r"sources\['a'\]"):
        MultiTaskSource({"a": object()})


class _TwoOptimisers(nn.Module):
    """Owns its step: two parts, two optimisers, one backward each (as GradNorm does)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 2), nn.Linear(4, 2)
        self.calls = 0

    def training_step(self, batch: LabelledBatch, optimizers):
        opt_a, opt_b = optimizers
        self.calls += 1
        for net, opt in ((self.a, opt_a), (self.b, opt_b)):
            opt.zero_grad()
            loss = F.cross_entropy(net(batch.x), batch.y)
            loss.backward()
            opt.step()
        return loss.detach(), {}


def _two(seed: int = 0):
    torch.manual_seed(seed)
    learner = _TwoOptimisers()
    opts = (torch.optim.Adam(learner.a.parameters(), lr=0.1),
            torch.optim.Adam(learner.b.parameters(), lr=0.01))
    return learner, BatchSampler(_xy(), seed=1), opts


def test_a_learner_that_owns_its_step_and_two_optimisers_resumes_exactly(tmp_path):
    learner, source, opts = _two()
    fit(learner, source, opts, iterations=6, batch_size=8, progress=False)
    assert learner.calls == 6
    reference = {k: v.clone() for k, v in learner.state_dict().items()}
    learner, source, opts = _two()
    fit(learner, source, opts, iterations=3, batch_size=8, progress=False,
        checkpoint=tmp_path / "c.pt")
    learner, source, opts = _two()
    fit(learner, source, opts, iterations=6, batch_size=8, progress=False,
        checkpoint=tmp_path / "c.pt")
    assert learner.calls == 3  # resumed at step 3
    for k, v in learner.state_dict().items():
        assert torch.equal(v, reference[k]), k
    with pytest.raises(CheckpointError, match="2 optimizers, this run has 1"):
        fit(learner, source, opts[0], iterations=7, batch_size=8, progress=False,
            checkpoint=tmp_path / "c.pt")


def test_a_learner_without_an_objective_is_refused():
    _, source, opt = _setup()
    with pytest.raises(ValueError, match="training_loss"):
        fit(nn.Linear(4, 2), source, opt, iterations=1)
    with pytest.raises(ValueError, match="optimizer"):
        fit(SupervisedLearner(nn.Linear(4, 2)), source, "adam", iterations=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not both"):
        fit(SupervisedLearner(nn.Linear(4, 2)), source, opt, iterations=1, batch_size=2,
            meta_batch_size=2)


def test_another_runs_checkpoint_is_refused_and_kept(tmp_path):
    learner, source, opt = _setup()
    ckpt = tmp_path / "c.pt"
    fit(learner, source, opt, iterations=2, batch_size=4, progress=False, checkpoint=ckpt,
        identity={"experiment": "maml", "lr": 0.1})
    with pytest.raises(CheckpointError, match=r"another run .*\['lr'\].*start afresh"):
        fit(learner, source, opt, iterations=4, batch_size=4, progress=False, checkpoint=ckpt,
            identity={"experiment": "maml", "lr": 0.2})
    other = SupervisedLearner(nn.Sequential(nn.Linear(4, 2)))  # same weights, other layout
    with pytest.raises(CheckpointError, match="another run"):
        fit(other, source, torch.optim.SGD(other.parameters(), lr=0.1), iterations=4,
            batch_size=4, progress=False, checkpoint=ckpt,
            identity={"experiment": "maml", "lr": 0.1})
    assert ckpt.is_file()  # never deleted


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", b"\x80\x04 not a zip"])
def test_corrupt_checkpoints_name_the_file(tmp_path, content):
    ckpt = tmp_path / "c.pt"
    ckpt.write_bytes(content)
    learner, source, opt = _setup()
    with pytest.raises(CheckpointError, match=r"c\.pt is corrupt.*start afresh"):
        fit(learner, source, opt, iterations=2, progress=False, checkpoint=ckpt)
    assert ckpt.read_bytes() == content


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_checkpoint_never_executes_code(tmp_path):
    marker = tmp_path / "executed"
    ckpt = tmp_path / "c.pt"
    torch.save({"format": 2, "payload": _Payload(str(marker))}, ckpt)
    with open(tmp_path / "plain.pkl", "wb") as f:  # the same payload does run when unpickled
        pickle.dump(_Payload(str(tmp_path / "control")), f)
    with open(tmp_path / "plain.pkl", "rb") as f:
        pickle.load(f)
    assert (tmp_path / "control").exists()
    learner, source, opt = _setup()
    with pytest.raises(CheckpointError, match="corrupt"):
        fit(learner, source, opt, iterations=2, progress=False, checkpoint=ckpt)
    assert not marker.exists()


class _Interrupting(SupervisedLearner):
    """Sends itself Ctrl-C during step ``at`` (as a user would, mid-step)."""

    at = 0
    steps = 0

    def training_loss(self, batch):
        type(self).steps += 1
        if type(self).steps == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return super().training_loss(batch)


def test_ctrl_c_finishes_the_step_saves_and_resumes_bit_identically(tmp_path):
    def setup():
        torch.manual_seed(0)
        learner = _Interrupting(nn.Linear(4, 2))
        return learner, BatchSampler(_xy(), seed=1), torch.optim.Adam(learner.parameters())

    learner, source, opt = setup()
    straight = fit(learner, source, opt, iterations=8, batch_size=8, progress=False)
    reference = {k: v.clone() for k, v in learner.state_dict().items()}
    _Interrupting.steps, _Interrupting.at = 0, 3
    learner, source, opt = setup()
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN under `cmd &`
    with pytest.raises(KeyboardInterrupt, match="after iteration 3"):
        fit(learner, source, opt, iterations=8, batch_size=8, progress=False,
            checkpoint=tmp_path / "c.pt", checkpoint_every=100)
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler restored
    _Interrupting.at = 0
    learner, source, opt = setup()
    resumed = fit(learner, source, opt, iterations=8, batch_size=8, progress=False,
                  checkpoint=tmp_path / "c.pt")
    assert resumed.loss == straight.loss
    for k, v in learner.state_dict().items():
        assert torch.equal(v, reference[k])
