"""Argument checks shared by the whole package: one wording, one strictness."""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

TASKS = ("classification", "regression")


def check_positive_int(name: str, value: object) -> int:
    """``value`` as an int >= 1 (bools are rejected), else a ValueError naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def check_non_negative_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return value


def check_positive_float(name: str, value: object) -> float:
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not math.isfinite(value) or value <= 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def check_seed(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"seed must be a non-negative int, got {value!r}")
    return value


def generator_from(generator: torch.Generator | None, seed: int | None) -> torch.Generator:
    """Exactly one source of randomness: a CPU ``torch.Generator`` or a seed for a new one."""
    if generator is None and seed is None:
        raise ValueError("pass generator= or seed=: sampling never uses the global RNG")
    if generator is not None and seed is not None:
        raise ValueError("pass either generator= or seed=, not both")
    if generator is not None:
        return check_generator(generator)
    return torch.Generator().manual_seed(check_seed(seed))


def check_generator(generator: object) -> torch.Generator:
    """``generator`` if it is a CPU ``torch.Generator``, else a ValueError."""
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator (e.g. "
                         f"torch.Generator().manual_seed(0)), got {generator!r}; or pass "
                         "seed= where it is accepted")
    if generator.device.type != "cpu":
        raise ValueError("generator must be a CPU torch.Generator")
    return generator


def task_loss(task: str) -> Callable[[Tensor, Tensor], Tensor]:
    """Cross-entropy for ``"classification"``, mean squared error for ``"regression"``."""
    if task == "classification":
        return F.cross_entropy
    if task == "regression":
        return F.mse_loss
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def check_tensor(name: str, value: object) -> Tensor:
    if not isinstance(value, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_finite(name: str, x: Tensor) -> None:
    """A ValueError unless every entry of a floating-point ``x`` is finite (one reduction;
    integer tensors are always finite)."""
    if (x.is_floating_point() or x.is_complex()) and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} holds NaN or infinite values; clean the inputs (a non-finite "
                         "input would give non-finite scores)")


def check_finite_output(name: str, out: Tensor) -> Tensor:
    """``out`` unchanged if finite; else a ValueError: finite inputs gave non-finite outputs."""
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"{name} are NaN or infinite although the inputs are finite: the "
                         "model's weights hold NaN/inf, or adaptation diverged (lower the "
                         "learning rate)")
    return out


def check_same_kind(a_name: str, a: Tensor, b_name: str, b: Tensor) -> None:
    """The same dtype and device for two inputs that go through one model."""
    if a.dtype != b.dtype:
        raise ValueError(f"{a_name} and {b_name} must have the same dtype, got {a.dtype} and "
                         f"{b.dtype}; convert one with .to({a.dtype})")
    if a.device != b.device:
        raise ValueError(f"{a_name} and {b_name} must be on the same device, got {a.device} "
                         f"and {b.device}")


def check_inputs_and_labels(x_name: str, x: object, y_name: str, y: object, *,
                            classification: bool) -> tuple[Tensor, Tensor]:
    """Inputs ``x`` ``[n, ...]`` and their ``n`` targets: tensors, one device, matching counts,
    finite inputs, and int64 class labels >= 0 (classification) or finite float targets."""
    x, y = check_tensor(x_name, x), check_tensor(y_name, y)
    if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"{x_name} and {y_name} must have one target per example (the same "
                         f"first dimension), got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    if x.device != y.device:
        raise ValueError(f"{x_name} and {y_name} must be on the same device, got {x.device} "
                         f"and {y.device}")
    check_finite(x_name, x)
    if classification:
        if y.dtype != torch.int64 or y.ndim != 1:
            raise ValueError(f"{y_name} must be int64 class labels of shape [n], got {y.dtype} "
                             f"with shape {tuple(y.shape)} (use .long() on integer labels)")
        if y.numel() and int(y.min()) < 0:
            raise ValueError(f"{y_name} must be >= 0, got {int(y.min())}")
    else:
        if not y.is_floating_point():
            raise ValueError(f"{y_name} must be floating-point regression targets, got {y.dtype}")
        check_finite(y_name, y)
    return x, y


_SHAPES: weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple, torch.Size | None]] = (
    weakref.WeakKeyDictionary())


def output_shape(model: torch.nn.Module, x: Tensor) -> torch.Size | None:
    """The shape of ``model(x)``, found by a forward pass on the ``meta`` device (shapes
    only: no arithmetic, no memory, no random numbers drawn). None if the model cannot run on
    ``meta`` tensors or its output is not a tensor.

    Remembered per model, input shape and dtype, parameter shapes and train/eval mode, so a
    training loop pays for the meta forward pass once."""
    from torch.func import functional_call

    tensors = [*model.named_parameters(), *model.named_buffers()]
    key = (tuple(x.shape), x.dtype, model.training,
           tuple((k, tuple(v.shape)) for k, v in tensors))
    known = _SHAPES.setdefault(model, {})
    if key not in known:
        state = {k: torch.empty_like(v, device="meta") for k, v in tensors}
        try:
            out = functional_call(model, state, (torch.empty_like(x, device="meta"),))
            known[key] = out.shape if isinstance(out, Tensor) else None
        except Exception:  # an op without a meta kernel (or any other failure): no check
            known[key] = None
    return known[key]


def output_width(model: torch.nn.Module, x: Tensor) -> int | None:
    """Size of the last dimension of ``model(x)`` (see :func:`output_shape`), or None."""
    shape = output_shape(model, x)
    return int(shape[-1]) if shape is not None and len(shape) >= 1 else None


def check_labels_fit(name: str, labels: Tensor, n_outputs: int | None) -> None:
    """Class labels must index the model's ``n_outputs`` logits (skipped if unknown)."""
    if n_outputs is None or labels.numel() == 0:
        return
    top = int(labels.max())
    if top >= n_outputs:
        raise ValueError(f"{name} has class label {top}, but the model has only {n_outputs} "
                         f"outputs (labels 0 .. {n_outputs - 1}): build it for at least "
                         f"{top + 1} ways (e.g. Conv4(n_classes={top + 1})) or sample "
                         f"{n_outputs}-way episodes")


def check_task_data(model: torch.nn.Module, task: str, x_name: str, x: object, y_name: str,
                    y: object) -> None:
    """One task's examples for ``model``: :func:`check_inputs_and_labels`, and for
    classification class labels that index the model's outputs (:func:`output_width`)."""
    classification = task == "classification"
    x, y = check_inputs_and_labels(x_name, x, y_name, y, classification=classification)
    if classification:
        check_labels_fit(y_name, y, output_width(model, x))
    else:
        check_targets_fit(model, x_name, x, y_name, y)


def check_targets_fit(model: torch.nn.Module, x_name: str, x: Tensor, y_name: str,
                      y: Tensor) -> None:
    """Regression targets must have the shape of the predictions (no silent broadcasting)."""
    shape = output_shape(model, x)
    if shape is not None and shape != y.shape:
        raise ValueError(f"{y_name} has shape {tuple(y.shape)} but the model's predictions for "
                         f"{x_name} have shape {tuple(shape)}; give one target per output")


def check_overrides(config_type: type, overrides: dict[str, object]) -> None:
    """Keyword overrides of a config dataclass must name its fields."""
    import dataclasses

    allowed = sorted(f.name for f in dataclasses.fields(config_type))
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {config_type.__name__} field(s) {unknown}; allowed: {allowed}")


def check_batch_data(model: torch.nn.Module, task: str, support_x: Tensor, support_y: Tensor,
                     query_x: Tensor, query_y: Tensor) -> None:
    """A validated batch of tasks (``[n_tasks, n, ...]``, e.g. an ``EpisodeBatch``'s fields)
    for ``model``: finite inputs (and targets), and labels or targets that fit the model's
    outputs (checked on the first task; query labels are among the support's)."""
    check_finite("batch.support_x", support_x)
    check_finite("batch.query_x", query_x)
    if task == "classification":
        check_labels_fit("batch.support_y", support_y, output_width(model, support_x[0]))
    else:
        check_finite("batch.support_y", support_y)
        check_finite("batch.query_y", query_y)
        check_targets_fit(model, "batch.support_x", support_x[0], "batch.support_y",
                          support_y[0])
