"""The label-as-input encoding of black-box meta-learners (Santoro et al., 2016; CS330 HW1).

A black-box learner reads an episode as a sequence of ``(input, label input)`` pairs. The
label input is a one-hot vector for a step whose label is shown and the zero vector for a
step whose label is hidden (:data:`HIDDEN`). Two conventions exist:

* **concurrent** (``shift=False``, Stanford CS330's first homework): support item ``t`` is
  shown with its own label ``y_t``; queries get the zero vector.
* **shifted** (``shift=True``, Santoro et al.): step ``t`` is shown with the label of the
  *previous* step, ``y_{t-1}`` (step 0 with zeros), so the network must predict ``y_t`` before
  it is told; the answer arrives one step later.

Chapter: Model-based meta-learning. Reference: :cite:t:`santoro2016meta`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from companion._checks import check_positive_int

__all__ = ["HIDDEN", "label_inputs"]

HIDDEN = -1  # the label value of a step whose label is not shown (a query)


def label_inputs(labels: Tensor, n_way: int, *, shift: bool = False,
                 dtype: torch.dtype = torch.float32) -> Tensor:
    """One-hot label inputs of a sequence, zeros where the label is hidden.

    Args:
        labels: ``[..., T]`` integer labels in ``0 .. n_way-1``, or :data:`HIDDEN` (-1) for a
            step whose label the network must not see.
        n_way: size of the one-hot vectors.
        shift: step ``t`` gets the label of step ``t-1`` (step 0 gets zeros): Santoro et al.'s
            protocol. Otherwise step ``t`` gets its own label (CS330's).
        dtype: floating dtype of the result.

    Returns:
        ``[..., T, n_way]``.

    Raises:
        ValueError: non-integer labels, or labels outside ``0 .. n_way-1`` other than -1.

    Example:
        >>> label_inputs(torch.tensor([1, 0, HIDDEN]), 2, shift=True)
        tensor([[0., 0.], [0., 1.], [1., 0.]])
    """
    check_positive_int("n_way", n_way)
    if not isinstance(labels, Tensor) or labels.dtype.is_floating_point or labels.ndim == 0:
        raise ValueError("labels must be an integer tensor [..., T]")
    bad = (labels < HIDDEN) | (labels >= n_way)
    if bad.any():
        raise ValueError(f"labels must be in 0 .. {n_way - 1} (or {HIDDEN} for a hidden label), "
                         f"got {sorted(set(labels[bad].tolist()))}")
    shown = labels != HIDDEN  # [..., T]
    one_hot = F.one_hot(labels.clamp_min(0), n_way).to(dtype)  # [..., T, n_way]
    one_hot = one_hot * shown[..., None].to(dtype)
    if shift:
        one_hot = torch.cat([torch.zeros_like(one_hot[..., :1, :]), one_hot[..., :-1, :]],
                            dim=-2)  # step t shows y_{t-1}
    return one_hot
