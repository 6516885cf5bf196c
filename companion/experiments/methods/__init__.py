"""The method families; importing this package registers them and their named experiments.

Adding a method: write ``methods/<family>.py`` (its configuration dataclass, ``build``,
``evaluate``, and the calls to ``register_method`` and ``register_experiments``), then import
it here.
"""

from companion.experiments.methods import blackbox, joint, maml, metric, reptile, transfer

__all__ = ["blackbox", "joint", "maml", "metric", "reptile", "transfer"]
