"""The fields every experiment shares, typed construction from a dict, and result-file keys.

One frozen dataclass per method family (MAML, Reptile, metric methods, joint training)
extends :class:`ExperimentConfig`; the family's file under ``companion/experiments/methods/``
declares it. ``from_dict`` builds the right family from ``{"method": ..., ...}`` and refuses
fields the family does not have, so a setting that would be silently ignored is an error.

**Keys.** A result file stores ``cfg.key(seed)``: the name, the method, the seed and every
field whose value differs from its entry in :data:`KEY_DEFAULTS` (or, for a field that table
does not list, from the family's own default). :data:`KEY_DEFAULTS` is frozen: it holds the
defaults of the single flat configuration that wrote the first result files, so a
configuration keeps exactly the key it had before the families existed, and a new field
with a default invalidates no stored result. Families take these same defaults for the
fields they share (a test checks it). Two keys describe the same experiment when they agree
on the fields of the method's family (:func:`same_experiment`); a field that method never
read (an old key's ``inner_lr`` of joint training, say) cannot change its result.

Chapter: MAML (results of longer runs); later chapters add their own families.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, fields, replace
from typing import Any, ClassVar, Literal, TypeVar

__all__ = ["KEY_DEFAULTS", "AdamTrained", "ExperimentConfig", "canonical", "check_positive_int"]

Dataset = Literal["omniglot", "sinusoid"]

# Frozen (see the module docstring): never change a value, or stored keys change meaning.
KEY_DEFAULTS: dict[str, Any] = {
    "dataset": "omniglot", "n_way": 5, "n_shot": 1, "n_query": 1, "test_n_way": 5,
    "test_n_shot": 1, "test_n_query": 15, "test_shots": [], "extra_tests": [],
    "lr_halve_every": 0, "meta_batch_size": 32, "iterations": 3000, "outer_lr": 1e-3,
    "inner_lr": 0.4, "inner_steps": 1, "inner_batch_size": None, "inner_optimizer": "sgd",
    "final_outer_lr": 0.0, "eval_inner_steps": 3, "eval_inner_batch_size": None,
    "val_every": 250, "val_episodes": 200, "test_episodes": 600, "checkpoint_every": 50,
}
IDENTITY = ("name", "method", "seed")  # always in a key

C = TypeVar("C", bound="ExperimentConfig")


def check_positive_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def check_extra_tests(extra_tests: tuple[Any, ...]) -> None:
    """Each extra test setting must be an ``(n_way, n_shot)`` pair of positive ints."""
    for shape in extra_tests:
        if not (isinstance(shape, tuple) and len(shape) == 2):
            raise ValueError(f"extra_tests entries must be (n_way, n_shot) pairs, got "
                             f"{shape!r}")
        check_positive_int("extra_tests n_way", shape[0])
        check_positive_int("extra_tests n_shot", shape[1])


def _check_nonnegative_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """What every experiment has: data, episode shapes, test protocol, budget, checkpoints.

    For sinusoids, ``n_shot`` and ``n_query`` count points per task, ``n_way`` and
    ``test_n_way`` are 1, and ``test_shots`` lists the support sizes evaluated at test time.
    Build a family's configuration with its class or with :meth:`from_dict`.
    """

    METHODS: ClassVar[tuple[str, ...]] = ()  # the method names this family answers to
    DATASETS: ClassVar[tuple[str, ...]] = ("omniglot", "sinusoid")

    name: str
    method: str
    dataset: Dataset = "omniglot"  # omniglot (Vinyals split) | sinusoid
    n_way: int = 5  # classes per training episode
    n_shot: int = 1  # support examples per class (sinusoid: support points)
    n_query: int = 1  # query examples per class while meta-training
    test_n_way: int = 5
    test_n_shot: int = 1
    test_n_query: int = 15  # queries per class in test episodes
    test_shots: tuple[int, ...] = ()  # sinusoid: support sizes K evaluated at test time
    meta_batch_size: int = 32  # tasks per outer step
    iterations: int = 3000  # outer steps
    outer_lr: float = 1e-3  # the outer optimiser's learning rate
    val_every: int = 250  # outer steps between validations (0: none)
    val_episodes: int = 200
    test_episodes: int = 600
    checkpoint_every: int = 50

    def __post_init__(self) -> None:
        if not self.METHODS:
            raise ValueError(f"{type(self).__name__} is the shared base: build a family's "
                             "configuration (e.g. MAMLExperiment) or use "
                             "ExperimentConfig.from_dict({'method': ..., ...})")
        for f in fields(self):  # lists (as JSON gives them) become the declared tuples
            if isinstance(getattr(self, f.name), list):
                object.__setattr__(self, f.name, _tuples(getattr(self, f.name)))
        if self.method not in self.METHODS:
            raise ValueError(f"method must be one of {self.METHODS} for "
                             f"{type(self).__name__}, got {self.method!r}")
        if self.dataset not in self.DATASETS:
            raise ValueError(f"dataset must be one of {self.DATASETS} for method "
                             f"{self.method!r}, got {self.dataset!r}")
        for name in ("n_way", "n_shot", "n_query", "test_n_way", "test_n_shot",
                     "test_n_query", "meta_batch_size", "iterations", "test_episodes",
                     "checkpoint_every"):
            check_positive_int(name, getattr(self, name))
        _check_nonnegative_int("val_every", self.val_every)
        if not isinstance(self.outer_lr, (int, float)) or not self.outer_lr > 0:
            raise ValueError(f"outer_lr must be > 0, got {self.outer_lr!r}")
        if self.test_episodes < 2 or self.val_episodes < 2:
            raise ValueError("test_episodes and val_episodes must be >= 2 (for a confidence "
                             "interval)")
        if self.dataset == "sinusoid":
            if not self.test_shots:
                raise ValueError("a sinusoid experiment needs test_shots (support sizes to test)")
            if self.n_way != 1 or self.test_n_way != 1:
                raise ValueError("a sinusoid task has one output: n_way and test_n_way must "
                                 f"be 1, got {self.n_way} and {self.test_n_way}")
            if self.val_every:
                raise ValueError("sinusoid runs have no validation: val_every must be 0")
        elif self.test_shots:
            raise ValueError("test_shots applies to sinusoid experiments only")
        for k in self.test_shots:
            check_positive_int("test_shots entries", k)

    @classmethod
    def from_dict(cls: type[C], values: dict[str, Any]) -> C:
        """A configuration from plain values (e.g. parsed JSON): lists become tuples.

        On the base class the family is chosen by ``values["method"]``; on a family class
        the method must be one of its own.

        Raises:
            ValueError: ``method`` is missing or unknown, or ``values`` has fields this
                family does not have (they are named).
        """
        if cls is ExperimentConfig:
            from companion.experiments.registry import method_spec

            if "method" not in values:
                raise ValueError("values must name a method")
            return method_spec(values["method"]).config.from_dict(values)  # type: ignore[return-value]
        missing = [k for k in ("name", "method") if k not in values]
        if missing:
            raise ValueError(f"values must give {' and '.join(missing)}")
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise ValueError(f"fields that do not apply to method {values.get('method')!r} "
                             f"({cls.__name__}): {', '.join(unknown)}; its fields are "
                             f"{sorted(allowed)}")
        sinusoid = values.get("dataset") == "sinusoid"
        ignored = sorted(k for k in values if k in _OMNIGLOT_ONLY) if sinusoid else []
        if ignored:
            raise ValueError("fields that do not apply to sinusoid experiments: "
                             f"{', '.join(ignored)}")
        return cls(**values)

    def key(self, seed: int) -> dict[str, Any]:
        """The result-file key: the name, the method, the seed and every field that differs
        from its key default (see the module docstring)."""
        return canonical({**asdict(self), "seed": seed}, type(self))

    def with_iterations(self, iterations: int) -> ExperimentConfig:
        return replace(self, iterations=iterations)


@dataclass(frozen=True, kw_only=True)
class AdamTrained(ExperimentConfig):
    """A family trained with Adam at ``outer_lr``, optionally halved on a schedule."""

    lr_halve_every: int = 0  # halve the outer learning rate every this many steps (0: never)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_nonnegative_int("lr_halve_every", self.lr_halve_every)


_OMNIGLOT_ONLY = ("test_n_shot", "test_n_query", "val_episodes", "extra_tests")


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def key_defaults(family: type[ExperimentConfig] | None) -> dict[str, Any]:
    """The values a key leaves out: :data:`KEY_DEFAULTS`, then the family's own defaults
    for fields that table does not list (in JSON form)."""
    own = {} if family is None else {
        f.name: f.default for f in fields(family) if f.default is not MISSING}
    return json.loads(json.dumps({**own, **KEY_DEFAULTS}))


def canonical(key: dict[str, Any],
              family: type[ExperimentConfig] | None = None) -> dict[str, Any]:
    """A key in JSON form without the entries that equal their key defaults; with a
    ``family``, also without the fields that family does not have."""
    plain = json.loads(json.dumps(key, sort_keys=True))
    defaults = key_defaults(family)
    if family is not None:
        own = {f.name for f in fields(family)} | set(IDENTITY)
        plain = {k: v for k, v in plain.items() if k in own}
    return {k: v for k, v in plain.items() if k not in defaults or defaults[k] != v}
