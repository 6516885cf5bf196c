"""The label-as-input encoding: one-hot where shown, zeros where hidden, shifted by one step
in Santoro et al.'s protocol (hand-written expectations)."""

from __future__ import annotations

import pytest
import torch

from companion.meta import HIDDEN, label_inputs


def test_concurrent_labels_are_one_hot_and_hidden_steps_are_zero():
    out = label_inputs(torch.tensor([2, 0, HIDDEN, 1]), 3)
    assert torch.equal(out, torch.tensor([[0.0, 0.0, 1.0],
                                          [1.0, 0.0, 0.0],
                                          [0.0, 0.0, 0.0],
                                          [0.0, 1.0, 0.0]]))


def test_shifted_labels_arrive_one_step_late():
    out = label_inputs(torch.tensor([2, 0, 1, HIDDEN]), 3, shift=True)
    assert torch.equal(out, torch.tensor([[0.0, 0.0, 0.0],  # step 0: nothing shown yet
                                          [0.0, 0.0, 1.0],  # y_0 = 2
                                          [1.0, 0.0, 0.0],  # y_1 = 0
                                          [0.0, 1.0, 0.0]]))  # y_2 = 1; y_3 is hidden
    # a hidden label stays hidden after the shift too
    shifted = label_inputs(torch.tensor([HIDDEN, 1]), 2, shift=True)
    assert torch.equal(shifted, torch.zeros(2, 2))


def test_batched_sequences_are_encoded_row_by_row():
    labels = torch.tensor([[0, 1, HIDDEN], [1, 1, 0]])
    out = label_inputs(labels, 2, shift=True, dtype=torch.float64)
    assert out.shape == (2, 3, 2) and out.dtype == torch.float64
    for row in range(2):
        assert torch.equal(out[row], label_inputs(labels[row], 2, shift=True,
                                                  dtype=torch.float64))


@pytest.mark.parametrize("labels", [torch.tensor([0, 3]), torch.tensor([0, -2])])
def test_labels_outside_0_to_n_way_minus_1_raise(labels):
    with pytest.raises(ValueError, match=r"labels must be in 0 \.\. 2"):
        label_inputs(labels, 3)


def test_bad_types_raise():
    with pytest.raises(ValueError, match="labels"):
        label_inputs(torch.tensor([0.0, 1.0]), 2)
    with pytest.raises(ValueError, match="n_way"):
        label_inputs(torch.tensor([0, 1]), 0)
