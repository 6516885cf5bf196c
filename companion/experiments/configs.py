"""Named experiment configurations: every number in a results table comes from one of these.

Each configuration is a frozen dataclass; all of its fields (and the seed) form the key of
the result file, so a changed hyperparameter can never be mistaken for a cached result.

Chapter: MAML (results of longer runs); later chapters add their own.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

__all__ = ["CONFIGS", "ExperimentConfig", "get_config", "same_experiment"]

METHODS = ("maml", "fomaml", "anil", "metasgd", "joint", "reptile", "protonet", "matching",
           "matching-fce", "relation")
METRIC_METHODS = ("protonet", "matching", "matching-fce", "relation")
DATASETS = ("omniglot", "sinusoid")


@dataclass(frozen=True)
class ExperimentConfig:
    """One reproducible experiment (defaults: MAML, Omniglot 5-way 1-shot, paper settings).

    For sinusoids, ``n_shot`` and ``n_query`` count points per task and ``test_shots`` lists
    the support sizes evaluated at test time.
    """

    name: str
    method: str  # one of METHODS
    dataset: str = "omniglot"  # omniglot (Vinyals split) | sinusoid
    n_way: int = 5  # classes per training episode
    n_shot: int = 1  # support examples per class (sinusoid: support points)
    n_query: int = 1  # query examples per class while meta-training (paper: 1 for 1-shot)
    test_n_way: int = 5
    test_n_shot: int = 1
    test_n_query: int = 15  # queries per class in test episodes
    test_shots: tuple[int, ...] = ()  # sinusoid: support sizes K evaluated at test time
    extra_tests: tuple[tuple[int, int], ...] = ()  # more (n_way, n_shot) test settings
    lr_halve_every: int = 0  # halve the outer learning rate every this many steps (0: never)
    meta_batch_size: int = 32  # tasks per outer step
    iterations: int = 3000  # outer steps
    outer_lr: float = 1e-3  # Adam
    inner_lr: float = 0.4  # alpha
    inner_steps: int = 1  # inner steps while meta-training
    inner_batch_size: int | None = None  # examples per inner step (None: the whole set)
    inner_optimizer: str = "sgd"  # "sgd" (MAML) or "adam" (Reptile's inner loop)
    final_outer_lr: float = 0.0  # Reptile: epsilon is annealed linearly to this
    eval_inner_steps: int = 3  # inner steps at test time
    eval_inner_batch_size: int | None = None  # examples per test-time step (None: all)
    val_every: int = 250  # outer steps between validations (0: none)
    val_episodes: int = 200
    test_episodes: int = 600
    checkpoint_every: int = 50

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        for name in ("n_way", "n_shot", "n_query", "test_n_way", "test_n_shot",
                     "test_n_query", "meta_batch_size", "iterations", "inner_steps",
                     "eval_inner_steps", "test_episodes", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.outer_lr <= 0 or self.inner_lr <= 0:
            raise ValueError("outer_lr and inner_lr must be > 0")
        if self.test_episodes < 2 or self.val_episodes < 2:
            raise ValueError("test_episodes and val_episodes must be >= 2 (for a confidence "
                             "interval)")
        for name in ("val_every", "lr_halve_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if self.dataset == "sinusoid":
            if not self.test_shots:
                raise ValueError("a sinusoid experiment needs test_shots (support sizes to test)")
            if self.method in METRIC_METHODS:
                raise ValueError(f"method {self.method!r} classifies; it cannot regress "
                                 "sinusoids")
        elif self.method == "joint":
            raise ValueError("method 'joint' is implemented for sinusoid regression only")

    def key(self, seed: int) -> dict[str, Any]:
        """The result-file key: the name, the method, the seed and every field that differs
        from its default (so adding a field with a default invalidates no stored result)."""
        return canonical({**asdict(self), "seed": seed})

    def with_iterations(self, iterations: int) -> ExperimentConfig:
        return replace(self, iterations=iterations)


_DEFAULTS = {f.name: f.default for f in fields(ExperimentConfig) if f.name not in ("name",
                                                                                   "method")}


def canonical(key: dict[str, Any]) -> dict[str, Any]:
    """A key in JSON form without the entries that equal the configuration defaults."""
    plain = json.loads(json.dumps(key, sort_keys=True))
    defaults = json.loads(json.dumps(_DEFAULTS))
    return {k: v for k, v in plain.items() if k not in defaults or defaults[k] != v}


def same_experiment(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two stored keys describe the same configuration and seed."""
    return canonical(a) == canonical(b)


def _omniglot(name: str, method: str, **kw: Any) -> ExperimentConfig:
    return ExperimentConfig(name=name, method=method, **kw)


# CPU budgets: the paper trains 60,000 outer steps (5-way); these runs take 20-60 minutes on
# two CPU cores. Pass --iterations to the command for the full schedule on a GPU.


def _metric(name: str, method: str, shots: int) -> ExperimentConfig:
    """Metric methods: Adam at 1e-3 (Snell et al. halve it every 2000 episodes; these CPU
    runs stop at 2000), tested 5-way and 20-way. Prototypical and Matching networks train on
    20-way episodes with 5 queries per class; Relation networks on 5-way episodes with 15
    queries (their paper's shape; 20-way episodes compare 2000 query-class pairs and are five
    times slower)."""
    ways, queries = (5, 15) if method == "relation" else (20, 5)
    return ExperimentConfig(name=name, method=method, n_way=ways, n_shot=shots, n_query=queries,
                            test_n_way=5, test_n_shot=shots, extra_tests=((20, shots),),
                            meta_batch_size=1, iterations=2000, lr_halve_every=2000,
                            val_every=1000, checkpoint_every=250)

CONFIGS: dict[str, ExperimentConfig] = {c.name: c for c in [
    *(_metric(f"{m}-omniglot-{k}shot", m, k) for m in METRIC_METHODS if m != "matching-fce"
      for k in (1, 5)),
    _omniglot("maml-omniglot-5w1s", "maml"),
    _omniglot("fomaml-omniglot-5w1s", "fomaml"),
    _omniglot("anil-omniglot-5w1s", "anil"),
    _omniglot("metasgd-omniglot-5w1s", "metasgd"),
    _omniglot("maml-omniglot-5w5s", "maml", n_shot=5, n_query=5, test_n_shot=5,
              iterations=1500),
    _omniglot("maml-omniglot-20w1s", "maml", n_way=20, test_n_way=20, meta_batch_size=16,
              inner_lr=0.1, inner_steps=5, eval_inner_steps=5, test_n_query=5,
              iterations=1500),
    _omniglot("fomaml-omniglot-5w5s", "fomaml", n_shot=5, n_query=5, test_n_shot=5,
              iterations=1500),
    # Reptile, the paper's Omniglot settings (its Table 3): 10 examples per class per task
    # (here 5 support + 5 query, all used for training), 5 inner Adam steps (beta1 = 0) on
    # minibatches of 10, epsilon = 1 annealed to 0, meta-batch 5, 50 steps at test time.
    _omniglot("reptile-omniglot-5w1s", "reptile", n_shot=5, n_query=5, meta_batch_size=5,
              iterations=5000, inner_lr=1e-3, inner_steps=5, inner_batch_size=10,
              inner_optimizer="adam", outer_lr=1.0, eval_inner_steps=50,
              eval_inner_batch_size=5, val_every=1000, val_episodes=100,
              checkpoint_every=200),
    _omniglot("reptile-omniglot-5w5s", "reptile", n_shot=5, n_query=5, test_n_shot=5,
              meta_batch_size=5, iterations=5000, inner_lr=1e-3, inner_steps=5,
              inner_batch_size=10, inner_optimizer="adam", outer_lr=1.0, eval_inner_steps=50,
              eval_inner_batch_size=15, val_every=1000, val_episodes=100,
              checkpoint_every=200),
    ExperimentConfig(name="maml-sinusoid", method="maml", dataset="sinusoid", n_shot=10,
                     n_query=10, test_shots=(5, 10), meta_batch_size=25, iterations=70000,
                     inner_lr=0.01, eval_inner_steps=10, val_every=0, test_episodes=600,
                     checkpoint_every=1000, n_way=1, test_n_way=1),
    # Reptile on sinusoids: 50 points per task, 5 inner SGD steps on minibatches of 10
    # (one pass), inner step 0.02, epsilon 0.1 annealed to 0; tested with SGD steps of 0.02.
    ExperimentConfig(name="reptile-sinusoid", method="reptile", dataset="sinusoid", n_shot=10,
                     n_query=40, test_shots=(5, 10), meta_batch_size=1, iterations=30000,
                     inner_lr=0.02, inner_steps=5, inner_batch_size=10, outer_lr=0.1,
                     eval_inner_steps=32, val_every=0, test_episodes=600,
                     checkpoint_every=1000, n_way=1, test_n_way=1),
    ExperimentConfig(name="joint-sinusoid", method="joint", dataset="sinusoid", n_shot=10,
                     n_query=10, test_shots=(5, 10), meta_batch_size=25, iterations=70000,
                     inner_lr=0.01, eval_inner_steps=10, val_every=0, test_episodes=600,
                     checkpoint_every=1000, n_way=1, test_n_way=1),
]}


def get_config(name: str) -> ExperimentConfig:
    """The registered configuration called ``name``."""
    if name not in CONFIGS:
        raise ValueError(f"unknown experiment {name!r}; choose from {sorted(CONFIGS)}")
    return CONFIGS[name]
