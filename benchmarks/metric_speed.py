"""Metric methods: episodes per second for training and evaluation, against an inline reference.

Setting: Conv-4 (64 channels, nn.BatchNorm2d), 5-way 1-shot, 15 queries per class, one
episode per step. A training step is the library's real path (EpisodeBatch, meta_loss,
backward, Adam step); an evaluation step is ``predict`` in eval mode. The reference is a
minimal ProtoNet written inline on raw tensors (class means + ``torch.cdist``): the ratio
``library ProtoNet / reference`` is the cost of the library's abstractions (target: >= 0.9).
Methods are timed in interleaved rounds so that drift affects all alike; medians over rounds.
Inputs are random images (speed does not depend on pixel values).

    python benchmarks/metric_speed.py
    python benchmarks/metric_speed.py --device cuda --rounds 10
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from companion.data import Episode, EpisodeBatch
from companion.meta import MatchingNetwork, PrototypicalNetwork, RelationNetwork
from companion.models import Conv4


class InlineProtoNet(nn.Module):
    """The minimal reference: embed, average per class, negative squared distances."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = Conv4(norm="batch")

    def forward(self, sx: torch.Tensor, qx: torch.Tensor, n_way: int, n_shot: int):
        z = self.encoder(torch.cat([sx, qx]))
        protos = z[: n_way * n_shot].view(n_way, n_shot, -1).mean(1)
        return -torch.cdist(z[n_way * n_shot:], protos) ** 2


def _episodes(n: int, args: argparse.Namespace, device: torch.device) -> list[Episode]:
    g = torch.Generator().manual_seed(0)
    return [Episode(torch.rand(args.ways * args.shots, 1, 28, 28, generator=g),
                    torch.arange(args.ways).repeat_interleave(args.shots),
                    torch.rand(args.ways * args.queries, 1, 28, 28, generator=g),
                    torch.arange(args.ways).repeat_interleave(args.queries)).to(device)
            for _ in range(n)]


def _steps(args: argparse.Namespace, device: torch.device) -> dict[str, dict[str, Callable]]:
    """For each method: a training step and an evaluation step on the next episode."""
    torch.manual_seed(0)
    episodes = _episodes(8, args, device)
    learners = {
        "ProtoNet (library)": PrototypicalNetwork(Conv4(norm="batch")),
        "Matching": MatchingNetwork(Conv4(norm="batch")),
        "Matching + FCE": MatchingNetwork(Conv4(norm="batch"), embedding_dim=64, fce=True),
        "Relation": RelationNetwork(),
    }
    reference = InlineProtoNet().to(device)
    steps: dict[str, dict[str, Callable]] = {}
    ref_opt = torch.optim.Adam(reference.parameters(), lr=1e-3)
    counter = {"i": 0}

    def next_episode() -> Episode:
        counter["i"] += 1
        return episodes[counter["i"] % len(episodes)]

    def ref_train() -> None:
        ep = next_episode()
        reference.train()
        loss = F.cross_entropy(reference(ep.support_x, ep.query_x, args.ways, args.shots),
                               ep.query_y)
        ref_opt.zero_grad(set_to_none=True)
        loss.backward()
        ref_opt.step()

    @torch.no_grad()
    def ref_eval() -> None:
        ep = next_episode()
        reference.eval()
        reference(ep.support_x, ep.query_x, args.ways, args.shots).argmax(1)

    steps["ProtoNet (inline reference)"] = {"train": ref_train, "eval": ref_eval}
    for name, learner in learners.items():
        learner.to(device)
        opt = torch.optim.Adam(learner.parameters(), lr=1e-3)

        def train(learner: nn.Module = learner, opt: torch.optim.Optimizer = opt) -> None:
            learner.train()
            loss, _ = learner.meta_loss(EpisodeBatch.stack([next_episode()]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        def evaluate(learner: nn.Module = learner) -> None:
            learner.eval()
            learner.predict(next_episode()).argmax(1)

        steps[name] = {"train": train, "eval": evaluate}
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ways", type=int, default=5)
    parser.add_argument("--shots", type=int, default=1)
    parser.add_argument("--queries", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="episodes per method per round")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    device = torch.device(args.device)
    steps = _steps(args, device)
    timings: dict[str, dict[str, list[float]]] = {n: {"train": [], "eval": []} for n in steps}
    for fns in steps.values():  # warm-up
        for mode in ("train", "eval"):
            for _ in range(2):
                fns[mode]()
    for _ in range(args.rounds):
        for name, fns in steps.items():
            for mode in ("train", "eval"):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                for _ in range(args.steps):
                    fns[mode]()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                timings[name][mode].append(args.steps / (time.perf_counter() - start))
    results = {name: {mode: statistics.median(v) for mode, v in t.items()}
               for name, t in timings.items()}
    base = results["ProtoNet (inline reference)"]
    where = (torch.cuda.get_device_name() if device.type == "cuda"
             else f"CPU, {torch.get_num_threads()} threads, {platform.machine()}")
    print(f"Metric methods, Conv-4, {args.ways}-way {args.shots}-shot, {args.queries} "
          f"queries/class; {where}; torch {torch.__version__}; median of {args.rounds} rounds "
          f"of {args.steps} episodes")
    print(f"{'method':<30}{'train ep/s':>11}{'ratio':>8}{'eval ep/s':>11}{'ratio':>8}")
    for name, r in results.items():
        print(f"{name:<30}{r['train']:>11.1f}{r['train'] / base['train']:>8.2f}"
              f"{r['eval']:>11.1f}{r['eval'] / base['eval']:>8.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"setting": vars(args), "results": results, "torch": torch.__version__,
                       "threads": torch.get_num_threads(), "machine": platform.machine()},
                      f, indent=2)


if __name__ == "__main__":
    main()
