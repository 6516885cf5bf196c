"""Parameter-based transfer, the practical knobs: which layers train, and how fast.

* :func:`layers_of` lists a network's layers from input to output (its depth order).
* :func:`apply_strategy` freezes parameters for a fine-tuning strategy:

  - ``"linear_probe"``: the pre-trained encoder is frozen; only the (new) head trains;
  - ``"last_layer"``: the encoder's last layer and the head train, everything below is
    frozen (partial fine-tuning, Yosinski et al., 2014);
  - ``"full"``: every parameter trains.

* :func:`layerwise_param_groups` gives each layer its own learning rate, decaying with depth
  below the top: layer ``i`` of ``L`` (0 = nearest the input) gets ``lr * decay^(L - 1 - i)``,
  so early, generic layers move less than late, task-specific ones.

Chapter: Transfer learning (parameter-based transfer, fine-tuning).
Reference: :cite:t:`yosinski2014transferable`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

from torch import nn

from companion._checks import check_positive_float

__all__ = ["STRATEGIES", "Strategy", "apply_strategy", "layers_of", "layerwise_param_groups",
           "set_trainable"]

Strategy = Literal["linear_probe", "last_layer", "full"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)


def set_trainable(module: nn.Module, trainable: bool) -> None:
    """Set ``requires_grad`` of all of ``module``'s parameters (freeze with ``False``)."""
    for p in module.parameters():
        p.requires_grad_(trainable)


def _with_params(module: nn.Module) -> list[nn.Module]:
    return [c for c in module.children() if next(c.parameters(), None) is not None]


def layers_of(module: nn.Module) -> list[nn.Module]:
    """The layers of ``module`` in depth order: its children that hold parameters, looking
    through wrappers with a single such child (e.g. ``Conv4().features`` -> its 4 blocks;
    an ``MLP`` -> its ``nn.Linear`` layers). A module with parameters but no such children
    is one layer."""
    layers = _with_params(module)
    while len(layers) == 1 and _with_params(layers[0]):
        layers = _with_params(layers[0])
    if not layers and next(module.parameters(), None) is not None:
        layers = [module]
    return layers


def apply_strategy(encoder: nn.Module, head: nn.Module, strategy: Strategy,
                   layers: Sequence[nn.Module] | None = None) -> None:
    """Freeze ``encoder`` (and unfreeze ``head``) according to ``strategy``.

    Args:
        encoder: the pre-trained body.
        head: the classifier on top (always trainable).
        strategy: ``"linear_probe"``, ``"last_layer"`` or ``"full"``.
        layers: the encoder's layers in depth order (default :func:`layers_of`), used by
            ``"last_layer"``.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    set_trainable(encoder, strategy == "full")
    set_trainable(head, True)
    if strategy == "last_layer":
        layers = list(layers) if layers is not None else layers_of(encoder)
        if not layers:
            raise ValueError("strategy='last_layer' needs an encoder with parameters")
        set_trainable(layers[-1], True)


def layerwise_param_groups(layers: Sequence[nn.Module], *, lr: float,
                           decay: float = 1.0) -> list[dict[str, Any]]:
    """Optimiser parameter groups with a learning rate decaying with depth below the top.

    Args:
        layers: modules from input (index 0) to output (last; e.g. the head).
        lr: learning rate of the last layer (> 0).
        decay: factor in ``(0, 1]`` per layer below the top (1: one learning rate for all).

    Returns:
        One group ``{"params", "lr", "depth"}`` per layer that has trainable parameters
        (frozen parameters are left out), ready for ``torch.optim.SGD(groups, ...)``.
    """
    lr = check_positive_float("lr", lr)
    if not isinstance(decay, (int, float)) or not 0 < decay <= 1:
        raise ValueError(f"decay must lie in (0, 1], got {decay!r}")
    groups: list[dict[str, Any]] = []
    seen: set[int] = set()
    n = len(layers)
    for depth, layer in enumerate(layers):
        params = [p for p in layer.parameters() if p.requires_grad and id(p) not in seen]
        seen.update(id(p) for p in params)
        if params:
            groups.append({"params": params, "lr": lr * decay ** (n - 1 - depth),
                           "depth": depth})
    if not groups:
        raise ValueError("layers hold no trainable parameters")
    return groups
