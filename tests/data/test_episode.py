"""Episode and EpisodeBatch: validation, stacking, moving between devices."""

from __future__ import annotations

import pytest
import torch

from companion.data import Episode, EpisodeBatch


def _episode(n_way: int = 3, shots: int = 2, queries: int = 2, d: int = 5) -> Episode:
    return Episode(
        support_x=torch.randn(n_way * shots, d),
        support_y=torch.arange(n_way).repeat_interleave(shots),
        query_x=torch.randn(n_way * queries, d),
        query_y=torch.arange(n_way).repeat_interleave(queries),
    )


def test_valid_episode_properties():
    ep = _episode()
    assert ep.n_way == 3 and ep.is_classification and ep.device.type == "cpu"


def test_regression_episode():
    ep = Episode(torch.randn(5, 1), torch.randn(5, 1), torch.randn(7, 1), torch.randn(7, 1))
    assert not ep.is_classification
    with pytest.raises(ValueError, match="classification"):
        _ = ep.n_way


@pytest.mark.parametrize(("change", "message"), [
    ({"support_y": torch.tensor([0, 0, 1, 1, 3, 3])}, "exactly 0 .. n_way-1"),
    ({"support_y": torch.tensor([1, 1, 2, 2, 3, 3])}, "exactly 0 .. n_way-1"),
    ({"support_y": torch.tensor([0, 0, 1, 1, 2, -1])}, "non-negative"),
    ({"query_y": torch.tensor([0, 1, 2, 3, 0, 1])}, "one of the support labels"),
    ({"query_x": torch.randn(6, 4)}, "differ in shape"),
    ({"query_x": torch.randn(5, 5)}, "number of examples"),
    ({"support_x": torch.randn(0, 5), "support_y": torch.zeros(0, dtype=torch.long)}, "empty"),
    ({"query_y": torch.zeros(6)}, "dtype"),
    ({"support_y": torch.zeros(6, 1, dtype=torch.long),
      "query_y": torch.zeros(6, 1, dtype=torch.long)}, "shape \\[n\\]"),
    ({"classes": torch.tensor([4, 5])}, "classes"),
    ({"classes": [4, 5, 6]}, "classes must be a"),
    ({"query_x": torch.randn(6, 5, dtype=torch.float64)},
     "support_x and query_x must have the same dtype"),
    ({"support_y": torch.tensor([0, 0, 1, 1, 2, 2], dtype=torch.int32),
      "query_y": torch.tensor([0, 1, 2, 0, 1, 2], dtype=torch.int32)}, "must be int64"),
    ({"support_y": torch.tensor([0, 0, 1, 1, 1, 1]) > 0,
      "query_y": torch.tensor([0, 1, 1, 0, 1, 1]) > 0}, "must be int64"),
])
def test_invalid_episodes_raise(change, message):
    ep = _episode()
    fields = {k: getattr(ep, k) for k in ("support_x", "support_y", "query_x", "query_y")}
    with pytest.raises(ValueError, match=message):
        Episode(**{**fields, **change})


def test_stack_and_index():
    eps = [_episode() for _ in range(4)]
    batch = EpisodeBatch.stack(eps)
    assert len(batch) == 4 and batch.support_x.shape == (4, 6, 5)
    assert torch.equal(batch[2].query_x, eps[2].query_x)
    assert [e.n_way for e in batch] == [3, 3, 3, 3]


def test_stack_rejects_different_shapes_and_empty_lists():
    with pytest.raises(ValueError, match="same sizes"):
        EpisodeBatch.stack([_episode(), _episode(n_way=4)])
    with pytest.raises(ValueError, match="empty"):
        EpisodeBatch.stack([])


def test_shared_labels_equal_stacked_per_task_labels():
    labels = torch.arange(3).repeat_interleave(2)  # [6]
    sx, qx = torch.randn(4, 6, 5), torch.randn(4, 6, 5)
    batch = EpisodeBatch.from_shared_labels(sx, labels, qx, labels)
    per_task = EpisodeBatch(sx, labels.repeat(4, 1), qx, labels.repeat(4, 1))
    assert torch.equal(batch.support_y, per_task.support_y)
    assert torch.equal(batch.query_y, per_task.query_y)
    assert batch.support_y.data_ptr() == labels.data_ptr()  # a view, not a copy


def test_batch_with_unbatched_labels_names_the_shared_label_constructor():
    labels = torch.arange(3).repeat_interleave(2)
    with pytest.raises(ValueError, match="no task dimension.*from_shared_labels"):
        EpisodeBatch(torch.randn(4, 6, 5), labels, torch.randn(4, 6, 5), labels)


@pytest.mark.parametrize(("sx", "sy", "message"), [
    (torch.randn(6, 5), torch.arange(6), "n_tasks, n, "),  # no task dimension on the inputs
    (torch.randn(4, 6, 5), torch.arange(5), r"shape \[6, ...\]"),  # one label short
])
def test_shared_labels_refuse_mismatched_shapes(sx, sy, message):
    with pytest.raises(ValueError, match=message):
        EpisodeBatch.from_shared_labels(sx, sy, torch.randn(4, 6, 5), torch.arange(6) % 3)


def test_batch_validates_each_task():
    batch = EpisodeBatch.stack([_episode(), _episode()])
    bad_y = batch.query_y.clone()
    bad_y[1, 0] = 7
    with pytest.raises(ValueError, match="one of the support labels"):
        EpisodeBatch(batch.support_x, batch.support_y, batch.query_x, bad_y)


def test_to_converts_inputs_but_never_labels():
    ep = _episode().to(dtype=torch.float64)
    assert ep.support_x.dtype == torch.float64 and ep.support_y.dtype == torch.int64
    reg = Episode(torch.randn(2, 1), torch.randn(2, 1), torch.randn(2, 1), torch.randn(2, 1))
    assert reg.to(dtype=torch.float64).query_y.dtype == torch.float64


def test_mixed_devices_rejected():
    ep = _episode()
    meta = ep.query_x.to("meta")
    with pytest.raises(ValueError, match="one device"):
        Episode(ep.support_x, ep.support_y, meta, ep.query_y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_to_cuda_and_back():
    ep = _episode().to("cuda")
    assert ep.device.type == "cuda" and ep.support_y.device.type == "cuda"
    assert ep.to("cpu").device.type == "cpu"


def test_batch_rejects_mixed_input_dtypes_and_non_episodes():
    ep = _episode()
    with pytest.raises(ValueError, match="support_x and query_x must have the same dtype"):
        EpisodeBatch(ep.support_x[None], ep.support_y[None], ep.query_x[None].double(),
                     ep.query_y[None])
    with pytest.raises(ValueError, match="episodes must be Episode objects, got Tensor"):
        EpisodeBatch.stack([ep.support_x])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="classes must be a"):
        EpisodeBatch(ep.support_x[None], ep.support_y[None], ep.query_x[None],
                     ep.query_y[None], classes=[[0, 1, 2]])  # type: ignore[arg-type]
