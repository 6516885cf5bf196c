"""Argument checks shared by the multi-task package: task names, per-task losses, modules.

Chapter: Multi-task learning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

TASK_KINDS = ("classification", "regression")


def check_tasks(tasks: Iterable[object], name: str = "tasks") -> tuple[str, ...]:
    """Task names as a tuple: non-empty, distinct, non-empty strings without dots."""
    names = tuple(tasks)
    if not names:
        raise ValueError(f"{name} must name at least one task, got an empty collection")
    for t in names:
        if not isinstance(t, str) or not t or "." in t:
            raise ValueError(f"{name}: task names must be non-empty strings without '.', "
                             f"got {t!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{name} must hold distinct task names, got {list(names)}")
    return tuple(str(t) for t in names)


def check_same_tasks(given: Iterable[str], expected: tuple[str, ...], name: str) -> None:
    """``given`` must be exactly the tasks ``expected`` (in any order)."""
    given = tuple(given)
    if set(given) != set(expected) or len(given) != len(expected):
        raise ValueError(f"{name} must have exactly one entry per task {list(expected)}, "
                         f"got {list(given)}")


def check_task_losses(losses: object, *, tasks: tuple[str, ...] | None = None,
                      name: str = "losses") -> dict[str, Tensor]:
    """Scalar, finite losses keyed by task name (ordered as ``tasks`` when given).

    Raises:
        ValueError: not a mapping, no tasks, other tasks than ``tasks``, a loss that is not a
            scalar tensor, or a loss that is NaN or infinite.
    """
    if not isinstance(losses, Mapping):
        raise ValueError(f"{name} must be a dict task name -> scalar loss tensor, "
                         f"got {type(losses).__name__}")
    names = check_tasks(losses.keys(), name)
    if tasks is not None:
        check_same_tasks(names, tasks, name)
        names = tasks
    out: dict[str, Tensor] = {}
    for t in names:
        loss = losses[t]
        if not isinstance(loss, Tensor) or loss.ndim != 0:
            raise ValueError(f"{name}[{t!r}] must be a scalar tensor, got "
                             f"{getattr(loss, 'shape', type(loss).__name__)}")
        if not bool(torch.isfinite(loss.detach())):
            raise ValueError(f"{name}[{t!r}] is not finite ({loss.detach().item()}); the "
                             "step is refused rather than spreading NaN/inf into the weights")
        out[t] = loss
    return out


def check_kinds(kinds: Mapping[str, str], tasks: tuple[str, ...], name: str = "kinds") -> dict[
        str, str]:
    """One kind per task, each ``"classification"`` or ``"regression"``."""
    if not isinstance(kinds, Mapping):
        raise ValueError(f"{name} must be a dict task name -> kind, got {type(kinds).__name__}")
    check_same_tasks(kinds.keys(), tasks, name)
    for t in tasks:
        if kinds[t] not in TASK_KINDS:
            raise ValueError(f"{name}[{t!r}] must be one of {TASK_KINDS}, got {kinds[t]!r}")
    return {t: kinds[t] for t in tasks}


def module_dict(modules: Mapping[str, nn.Module], name: str) -> nn.ModuleDict:
    """An ``nn.ModuleDict`` keyed by task name, with the failure modes as ValueErrors."""
    if not isinstance(modules, Mapping):
        raise ValueError(f"{name} must be a dict task name -> nn.Module, "
                         f"got {type(modules).__name__}")
    check_tasks(modules.keys(), name)
    for t, m in modules.items():
        if not isinstance(m, nn.Module):
            raise ValueError(f"{name}[{t!r}] must be an nn.Module, got {type(m).__name__}")
    try:
        return nn.ModuleDict(dict(modules))
    except KeyError as err:  # a name clashing with an nn.Module attribute, e.g. "train"
        raise ValueError(f"{name}: a task name clashes with an nn.Module attribute ({err}); "
                         "rename the task") from err


def select_tasks(tasks: tuple[str, ...], selected: Iterable[str] | None) -> tuple[str, ...]:
    """``selected`` (default: all of ``tasks``) after checking each is a known task."""
    if selected is None:
        return tasks
    chosen = check_tasks(selected, "tasks")
    unknown = [t for t in chosen if t not in tasks]
    if unknown:
        raise ValueError(f"tasks: unknown task(s) {unknown}; the model has {list(tasks)}")
    return chosen
