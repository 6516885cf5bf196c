"""Data requirements and meta-overfitting: meta-train on a fraction of Omniglot's characters.

Each run keeps a seeded random ``fraction`` of the 1028 training characters (all four
rotations of each, so a character never leaks into another fraction's held-out part), trains a
learner on 5-way 1-shot episodes of those classes only, and every ``eval_every`` steps measures
its accuracy on new episodes of the *meta-training* classes and of the *test* classes. The gap
between the two is meta-overfitting; the final test accuracy against the fraction is the data
requirement. The fractions nest (the 25% characters are among the 50%), and every run sees
the same evaluation episodes of the test classes. Results go to
``results/class-fraction-<method>.json``::

    python -m companion.experiments.class_fraction protonet --threads 1
    python -m companion.experiments.class_fraction maml --threads 2

Chapter: Applications (open problems: data and task requirements, meta-overfitting).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from companion.data import EpisodeSampler, load_omniglot
from companion.data.dataset import ImageClassDataset
from companion.engine.evaluation import evaluate, evaluate_all
from companion.engine.loop import fit
from companion.experiments.runner import results_dir
from companion.meta import MAML, BothProtocols, PrototypicalNetwork
from companion.models import Conv4
from companion.utils import read_record, write_record

__all__ = ["FractionConfig", "character_subset", "class_fraction_path", "run_fraction",
           "stored_class_fraction"]


@dataclass(frozen=True)
class FractionConfig:
    """One method's sweep over fractions of the meta-training characters."""

    method: str = "protonet"  # "protonet" or "maml" (second order)
    fractions: tuple[float, ...] = (0.01, 0.25, 0.5, 1.0)
    iterations: int = 600  # outer steps per fraction
    meta_batch_size: int = 1  # tasks per outer step (MAML: 32, its paper's)
    eval_every: int = 200
    eval_episodes: int = 100  # per split and checkpoint (5 queries per class)
    test_episodes: int = 600  # final test on the test classes (5 queries per class)
    subset_seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("protonet", "maml"):
            raise ValueError(f"method must be 'protonet' or 'maml', got {self.method!r}")
        if not self.fractions or any(not 0 < f <= 1 for f in self.fractions):
            raise ValueError(f"fractions must be in (0, 1], got {self.fractions!r}")


CONFIGS = {"protonet": FractionConfig(),
           # second-order MAML reaches about 90% in 250 steps of 32 tasks (the MAML chapter's
           # validation curve), where first-order MAML was still near 50% after 400 steps of 4
           "maml": FractionConfig(method="maml", fractions=(0.01, 0.25, 1.0), iterations=500,
                                  meta_batch_size=32, eval_every=100)}


def character_subset(dataset: ImageClassDataset, fraction: float, *,
                     seed: int = 0) -> ImageClassDataset:
    """The classes of a seeded random ``fraction`` of the characters (at least 5 characters,
    all their rotations). Class names must look like ``"Alphabet/characterNN/rotDDD"``.

    The characters are the first ``round(fraction * n)`` of one seeded permutation, so smaller
    fractions are subsets of larger ones.
    """
    if not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    characters = [name.rsplit("/", 1)[0] for name in dataset.class_names]
    if any("/" not in c for c in characters):
        raise ValueError("dataset class names must be 'Alphabet/character/rotation'")
    unique = sorted(set(characters))
    order = torch.randperm(len(unique), generator=torch.Generator().manual_seed(seed))
    n_keep = min(len(unique), max(5, round(fraction * len(unique))))
    keep = {unique[i] for i in order[:n_keep].tolist()}
    classes = [i for i, c in enumerate(characters) if c in keep]
    return dataset.subset(classes, name=f"{dataset.name}[{fraction:g} of characters]")


def _learner(method: str) -> nn.Module:
    if method == "protonet":
        return PrototypicalNetwork(Conv4(norm="batch"))
    return MAML(Conv4(n_classes=5, norm="batch_stats"), inner_lr=0.4, inner_steps=1,
                eval_inner_steps=3)


def _accuracy(learner: nn.Module, data: ImageClassDataset, *, seed: int,
              episodes: int) -> dict[str, Any]:
    learner.eval()
    result = evaluate(learner, EpisodeSampler(data, n_way=5, n_shot=1, n_query=5,
                                              seed=seed), n_episodes=episodes, progress=False)
    learner.train()
    return result.to_dict()


def run_fraction(cfg: FractionConfig, fraction: float, train: ImageClassDataset,
                 test: ImageClassDataset, *, seed: int = 0) -> dict[str, Any]:
    """Train on one fraction; the train/test accuracy curve and the final test accuracy."""
    subset = character_subset(train, fraction, seed=cfg.subset_seed)
    torch.manual_seed(seed)  # the network's initialisation, the same for every fraction
    learner = _learner(cfg.method)
    optimizer = torch.optim.Adam(learner.parameters(), lr=1e-3)
    source = EpisodeSampler(subset, n_way=5, n_shot=1, n_query=5 if cfg.method == "protonet"
                            else 1, seed=seed)
    curve, done, start = [], 0, time.process_time()
    while done < cfg.iterations:
        steps = min(cfg.eval_every, cfg.iterations - done)
        fit(learner, source, optimizer, iterations=steps, progress=False,
            meta_batch_size=cfg.meta_batch_size)
        done += steps
        curve.append({"iteration": done,
                      "train": _accuracy(learner, subset, seed=1, episodes=cfg.eval_episodes),
                      "test": _accuracy(learner, test, seed=2, episodes=cfg.eval_episodes)})
    return {"fraction": fraction, "classes": subset.num_classes, "curve": curve,
            **_final_test(learner, test, episodes=cfg.test_episodes),
            "cpu_seconds": round(time.process_time() - start, 1)}


def _final_test(learner: nn.Module, test: ImageClassDataset, *,
                episodes: int) -> dict[str, Any]:
    """``test``; for MAML (transductive) also ``test_non_transductive``, same episodes and
    adaptations."""
    if not isinstance(learner, MAML):
        return {"test": _accuracy(learner, test, seed=3, episodes=episodes)}
    learner.eval()
    both = evaluate_all(BothProtocols(learner), EpisodeSampler(
        test, n_way=5, n_shot=1, n_query=5, seed=3), n_episodes=episodes, progress=False)
    return {"test": both["accuracy"].to_dict(),
            "test_non_transductive": both["accuracy_non_transductive"].to_dict()}


def class_fraction_path(method: str) -> Path:
    return results_dir() / f"class-fraction-{method}.json"


def stored_class_fraction(method: str) -> dict[str, Any] | None:
    """The stored sweep of ``method`` if it was run with today's configuration, else None."""
    path = class_fraction_path(method)
    if not path.is_file():
        return None
    record = read_record(path)
    return record["result"] if record.get("key") == _key(CONFIGS[method]) else None


def _key(cfg: FractionConfig) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion.experiments.class_fraction",
                                     description=__doc__)
    parser.add_argument("method", choices=sorted(CONFIGS))
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg, start = CONFIGS[args.method], time.time()
    train, test = load_omniglot("train", progress=False), load_omniglot("test", progress=False)
    runs = []
    for fraction in cfg.fractions:
        runs.append(run_fraction(cfg, fraction, train, test))
        print(f"{cfg.method} fraction {fraction}: test {runs[-1]['test']}", flush=True)
    result = {"runs": runs, "protocol": (
        "5-way 1-shot; curve: 5 queries per class on seeded episodes of the meta-training "
        "classes (train) and of the Vinyals test classes (test); final test: 600 episodes, "
        "5 queries per class; ProtoNet non-transductive (BatchNorm running statistics); MAML "
        "(second order) 'test' and the curve transductive (batch statistics of the query "
        "set), 'test_non_transductive' each query with the support set only; CPU")}
    write_record(class_fraction_path(cfg.method), key=_key(cfg), result=result,
                 wall_time_s=time.time() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
