"""MAML side by side with learn2learn 0.2.0 and higher 0.2.1: one table, ratios to learn2learn.

The workload of issue 16 (see ``benchmarks/maml_speed.py``, which does the work): Conv-4 with
batch-statistics BatchNorm, 5-way 1-shot, 15 queries per class (``--queries 1``: the MAML
paper's Omniglot shape), meta-batch 32, one inner SGD step, Adam outer step, random
Omniglot-shaped data. Each implementation runs in fresh processes (``--repeats``), its
float64 meta-gradient is checked against the plain per-task reference (1e-9), and the
machine must be idle (or the result is marked busy with ``--force``).

The peers live in a separate environment, never in the project's:

    bash benchmarks/peers_env.sh /tmp/peers-venv
    python benchmarks/peers.py --peers-python /tmp/peers-venv/bin/python \\
        --json benchmarks/results/peers_cpu_q15.json
    python benchmarks/peers.py --peers-python /tmp/peers-venv/bin/python --queries 1 \\
        --json benchmarks/results/peers_cpu_q1.json
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from maml_speed import main  # a sibling script, not a package

PEER_VARIANTS = [
    "learn2learn, 2nd order",
    "higher, 2nd order",
    "reference loop, 2nd order",
    "loop, 2nd order",
    "auto, 2nd order",
    "vmap, 2nd order",
    "loop, 2nd order, backward per task",
    "loop, 2nd order, batched first step",
    "learn2learn, 1st order",
    "loop, 1st order",
    "vmap, 1st order",
    "loop, 1st order, backward per task",
]

if __name__ == "__main__":
    main(defaults={"variants": PEER_VARIANTS, "baseline": "learn2learn, 2nd order"})
