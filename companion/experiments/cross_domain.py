"""Cross-domain few-shot evaluation: Omniglot-trained models on MNIST and on scikit-learn digits.

A stored model (a named experiment, loaded with :func:`load_trained`) is tested on 5-way
episodes of three domains under one protocol: the Omniglot test classes (the in-domain
reference), the MNIST test set and scikit-learn's 8x8 digits upsampled to 28x28
(:func:`companion.data.load_digits`). Every model sees the same episodes (one seeded sampler
per domain and shot count). The result goes to ``results/cross-domain-<experiment>.json`` (not
``-seed<k>``: it is an evaluation of a stored run, not a run of its own)::

    python -m companion.experiments.cross_domain protonet-omniglot-1shot maml-omniglot-5w1s

Chapter: Applications (few-shot learning beyond one data set). References:
:cite:t:`chen2019closer`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from companion._checks import check_positive_int
from companion.data import EpisodeSampler, load_mnist, load_omniglot
from companion.data.dataset import ImageClassDataset
from companion.data.digits import load_digits
from companion.engine.evaluation import evaluate_all
from companion.experiments.configs import get_config
from companion.experiments.registry import method_spec
from companion.experiments.runner import load_trained, results_dir
from companion.meta.protocols import BothProtocols
from companion.utils import describe_device, read_record, write_record

__all__ = ["DOMAINS", "cross_domain_key", "cross_domain_path", "episode_learner",
           "evaluate_cross_domain", "load_domain", "stored_cross_domain"]

DOMAINS: tuple[str, ...] = ("omniglot", "mnist", "digits")
EPISODE_SEED = 7_000  # + 10 * domain index + shots: the same episodes for every model


def load_domain(name: str) -> ImageClassDataset:
    """The test images of a domain: ``"omniglot"`` (Vinyals test classes), ``"mnist"`` (the
    10,000 test digits) or ``"digits"`` (scikit-learn's 1797, upsampled)."""
    if name == "omniglot":
        return load_omniglot("test", progress=False)
    if name == "mnist":
        return load_mnist("test", progress=False)
    if name == "digits":
        return load_digits()
    raise ValueError(f"name must be one of {DOMAINS}, got {name!r}")


def cross_domain_key(experiment: str, *, shots: Sequence[int] = (1, 5), n_way: int = 5,
                     n_query: int = 5, n_episodes: int = 600) -> dict[str, Any]:
    """The protocol a stored cross-domain result must match to be reused."""
    return {"experiment": experiment, "domains": list(DOMAINS), "shots": list(shots),
            "n_way": n_way, "n_query": n_query, "n_episodes": n_episodes,
            "episode_seed": EPISODE_SEED}


def cross_domain_path(experiment: str) -> Path:
    """Where the cross-domain result of a named experiment is stored."""
    return results_dir() / f"cross-domain-{experiment}.json"


def _metrics(learner: nn.Module, both_protocols: bool) -> nn.Module:
    """MAML/Reptile with ``both_protocols``: transductive and non-transductive accuracy from
    one adaptation; otherwise the learner as it is (MAML: transductive)."""
    return BothProtocols(learner) if both_protocols else learner


def evaluate_cross_domain(learner: nn.Module, *, domains: dict[str, ImageClassDataset],
                          shots: Sequence[int] = (1, 5), n_way: int = 5, n_query: int = 5,
                          n_episodes: int = 600, both_protocols: bool = False,
                          progress: bool = False) -> dict[str, Any]:
    """``{domain: {"<k>-shot": {metric: {mean, ci95, n_episodes}}}}`` for one learner.

    ``both_protocols`` (MAML, Reptile) adds ``accuracy_non_transductive`` (each query with the
    support set only, all queries at once under ``vmap``), from the same adaptation.

    Episodes are drawn with seed ``EPISODE_SEED + 10 * i + k`` for the ``i``-th domain of
    :data:`DOMAINS`, so two learners evaluated here see the same episodes.
    """
    check_positive_int("n_episodes", n_episodes)
    out: dict[str, Any] = {}
    for name, dataset in domains.items():
        if name not in DOMAINS:
            raise ValueError(f"domains keys must be among {DOMAINS}, got {name!r}")
        out[name] = {}
        for k in shots:
            sampler = EpisodeSampler(dataset, n_way=n_way, n_shot=k, n_query=n_query,
                                     seed=EPISODE_SEED + 10 * DOMAINS.index(name) + k)
            scores = evaluate_all(_metrics(learner, both_protocols), sampler, n_episodes=n_episodes,
                                  progress=progress, desc=f"{name} {k}-shot")
            out[name][f"{k}-shot"] = {m: r.to_dict() for m, r in scores.items()}
    return out


def stored_cross_domain(experiment: str, **protocol: Any) -> dict[str, Any] | None:
    """The stored result for ``experiment`` if it was computed under this protocol, else None."""
    path = cross_domain_path(experiment)
    if not path.is_file():
        return None
    record = read_record(path)
    return record["result"] if record.get("key") == cross_domain_key(experiment,
                                                                      **protocol) else None


def episode_learner(experiment: str, learner: nn.Module) -> nn.Module:
    """The learner that classifies an episode: the stored learner itself, or what its family's
    ``episode_learner(cfg, learner)`` makes of it (a pre-trained encoder with a new head per
    episode, for the transfer baselines)."""
    cfg = get_config(experiment)
    family = sys.modules[method_spec(cfg.method).build.__module__]
    wrap = getattr(family, "episode_learner", None)
    return wrap(cfg, learner) if callable(wrap) else learner


def run(experiment: str, *, progress: bool = True) -> dict[str, Any]:
    """Evaluate a stored model on every domain and write its result file."""
    start = time.time()
    learner = episode_learner(experiment, load_trained(experiment))
    domains = {name: load_domain(name) for name in DOMAINS}
    adapts = callable(getattr(learner, "evaluation_weights", None))  # MAML, Reptile
    result = evaluate_cross_domain(learner, domains=domains, both_protocols=adapts,
                                   progress=progress)
    result["protocol"] = {
        "device": describe_device("cpu"),
        "test": "metric learners and transfer baselines (a new head fine-tuned on each "
                "support set, encoder frozen): each query on its own (BatchNorm running "
                "statistics); MAML and Reptile: 'accuracy' transductive (batch statistics of "
                "the query set, MAML's paper's protocol) and 'accuracy_non_transductive' "
                "(each query in a batch with the support set only), from one adaptation"}
    write_record(cross_domain_path(experiment), key=cross_domain_key(experiment),
                 result=result, wall_time_s=time.time() - start)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion.experiments.cross_domain",
                                     description=__doc__)
    parser.add_argument("experiments", nargs="+", help="named experiments with stored weights")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in args.experiments:
        run(name, progress=not args.quiet)
        print(f"wrote {cross_domain_path(name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
