"""Turn every result file in results/ into the reproduction appendix's table.

One row per test setting of each ``results/*-seed*.json``: the method, the setting (ways and
shots, data set), our mean with its 95% confidence interval, the test protocol (transductive or
not, number of test episodes), the device and threads, the training time and iterations, the
command that wrote the file and the code revision, and the paper's number with its citation
where one exists (``tools/paper_numbers.json``). A result file missing a field, or a paper
number whose citation key is not in references.bib, is an error (``ValueError``): the page is
never built from incomplete records.

`make book` and `make book-check` run this before jupyter-book; the page
``book/appendix_reproduction.md`` includes the table it writes.

Usage: python tools/reproduction_table.py OUT.md [--results DIR] [--papers JSON] [--bib BIB]

Chapter: Appendix, reproduction.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from companion.experiments.runner import describe_threads

ROOT = Path(__file__).resolve().parents[1]
KEY_PREFIX = "repro-"  # the appendix page's bibliography :keyprefix:

METHOD_NAMES = {
    "maml": "MAML",
    "fomaml": "first-order MAML",
    "anil": "ANIL",
    "reptile": "Reptile",
    "protonet": "Prototypical networks",
    "matching": "Matching networks",
    "relation": "Relation network",
    "joint": "Joint training + fine-tuning",
}

# Fields every result file must carry, as paths into its JSON.
COMMON_FIELDS = (
    ("git_revision",),
    ("result", "command"),
    ("result", "device"),
    ("result", "threads"),
    ("result", "train_seconds"),
    ("result", "iterations"),
    ("result", "method"),
    ("result", "protocol", "dataset"),
)
CLASSIFICATION_FIELDS = (
    ("result", "protocol", "n_way"),
    ("result", "protocol", "n_shot"),
    ("result", "protocol", "test"),
    ("result", "test", "mean"),
    ("result", "test", "ci95"),
    ("result", "test", "n_episodes"),
)
REGRESSION_FIELDS = (
    ("result", "protocol", "support_sizes"),
    ("result", "protocol", "steps"),
    ("result", "protocol", "test_tasks"),
)
PAPER_FIELDS = ("method", "n_way", "n_shot", "mean", "ci95", "cite", "table", "verified")


@dataclass(frozen=True)
class Row:
    """One line of the table (all cells already formatted as MyST Markdown)."""

    method: str
    setting: str
    ours: str
    protocol: str
    paper: str
    run: str


@dataclass(frozen=True)
class Run:
    """How one result file was produced."""

    run: str
    command: str
    revision: str
    device: str
    training: str


def _get(record: Mapping[str, Any], path: Sequence[str], source: str) -> Any:
    node: Any = record
    for part in path:
        if not isinstance(node, Mapping) or part not in node or node[part] in (None, ""):
            raise ValueError(f"{source}: result file lacks the field {'.'.join(path)!r}; "
                             "rerun the command that wrote it")
        node = node[part]
    return node


PaperKey = tuple[str, int, int, bool | None]


def load_paper_numbers(papers: Path, bib: Path) -> dict[PaperKey, dict[str, Any]]:
    """The published numbers, keyed by (method, ways, shots, transductive); each cites a bib entry.

    A paper may report one setting under both test protocols (Nichol et al.'s Reptile with and
    without transduction): the fourth key part tells them apart (``None``: not stated).

    Args:
        papers: the JSON file of paper numbers (``tools/paper_numbers.json``).
        bib: the bibliography (``references.bib``) whose keys the numbers cite.

    Returns:
        ``{(method, n_way, n_shot, transductive): entry}``.

    Raises:
        ValueError: if an entry lacks a field, cites a key missing from ``bib``, or repeats a
            setting and protocol.
    """
    keys = set(re.findall(r"^@\w+\{([^,\s]+),", bib.read_text(encoding="utf-8"), re.M))
    table: dict[PaperKey, dict[str, Any]] = {}
    for i, entry in enumerate(json.loads(papers.read_text(encoding="utf-8"))["numbers"]):
        missing = [f for f in PAPER_FIELDS if f not in entry]
        if missing or not entry.get("cite"):
            raise ValueError(f"{papers.name}: number {i} lacks {missing or ['cite']}: every "
                             "paper number needs a citation key and the table it comes from")
        if entry["cite"] not in keys:
            raise ValueError(f"{papers.name}: number {i} cites {entry['cite']!r}, which is not "
                             f"in {bib.name}")
        transductive = entry.get("transductive")
        if transductive not in (True, False, None):
            raise ValueError(f"{papers.name}: number {i} has transductive={transductive!r}; "
                             "allowed: true, false or null")
        setting = (entry["method"], int(entry["n_way"]), int(entry["n_shot"]), transductive)
        if setting in table:
            raise ValueError(f"{papers.name}: two numbers for {setting}")
        table[setting] = entry
    return table


def paper_number_for(papers: Mapping[PaperKey, dict[str, Any]], method: str, n_way: int,
                     n_shot: int, transductive: bool) -> dict[str, Any] | None:
    """The paper's number for a row: the same protocol if the paper has it, else the other one
    (its cell says which protocol it is), else ``None``."""
    for protocol in (transductive, None, not transductive):
        entry = papers.get((method, n_way, n_shot, protocol))
        if entry is not None:
            return entry
    return None


def _paper_cell(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "-"
    # str() keeps the paper's decimals (96.0 stays 96.0; 97.68 stays 97.68)
    number = str(float(entry["mean"])) + (
        f" ± {float(entry['ci95'])}" if entry["ci95"] is not None else "")
    cell = f"{number} {{cite:p}}`{KEY_PREFIX}{entry['cite']}`, {entry['table']}"
    if entry.get("transductive") is True:
        cell += ", transductive"
    elif entry.get("transductive") is False:
        cell += ", non-transductive"
    if not entry["verified"]:
        cell += " (**unverified**)"
    return cell


def _revision(record: Mapping[str, Any]) -> str:
    rev = str(record["git_revision"])
    dirty = rev.endswith("+dirty")
    short = rev.removesuffix("+dirty")[:10]
    return f"`{short}`" + (" (uncommitted changes)" if dirty else "")


def _training(result: Mapping[str, Any]) -> str:
    minutes = float(result["train_seconds"]) / 60
    return f"{minutes:.0f} min, {int(result['iterations'])} it."


def _classification_rows(record: Mapping[str, Any], source: str, run: str,
                         papers: dict[PaperKey, dict[str, Any]]) -> list[Row]:
    for path in CLASSIFICATION_FIELDS:
        _get(record, path, source)
    result = record["result"]
    protocol = result["protocol"]
    method = str(result["method"])
    dataset = str(protocol["dataset"]).split(" (")[0]
    transductive = str(protocol["test"]).startswith("transductive")
    tests: list[tuple[int, int, Mapping[str, Any], bool]] = [
        (int(protocol["n_way"]), int(protocol["n_shot"]), result["test"], transductive)]
    if "test_non_transductive" in result:
        tests.append((int(protocol["n_way"]), int(protocol["n_shot"]),
                      result["test_non_transductive"], False))
    for name, value in sorted(result.get("extra_tests", {}).items()):
        match = re.fullmatch(r"(\d+)-way (\d+)-shot", name)
        if not match:
            raise ValueError(f"{source}: extra test {name!r} is not named 'N-way K-shot'")
        tests.append((int(match.group(1)), int(match.group(2)), value, transductive))
    rows = []
    for n_way, n_shot, test, trans in tests:
        for field in ("mean", "ci95", "n_episodes"):
            _get(test, (field,), source)
        ours = f"{100 * test['mean']:.1f} ± {100 * test['ci95']:.1f}"
        kind = "transductive" if trans else "non-transductive"
        paper = (paper_number_for(papers, method, n_way, n_shot, trans)
                 if dataset == "omniglot" else None)
        rows.append(Row(method=METHOD_NAMES.get(method, method),
                        setting=f"{n_way}-way {n_shot}-shot, {dataset}",
                        ours=ours, protocol=f"{kind}, {test['n_episodes']} episodes",
                        paper=_paper_cell(paper), run=run))
    return rows


def _regression_rows(record: Mapping[str, Any], source: str, run: str) -> list[Row]:
    for path in REGRESSION_FIELDS:
        _get(record, path, source)
    result = record["result"]
    protocol = result["protocol"]
    steps = list(protocol["steps"])
    rows = []
    for support in protocol["support_sizes"]:
        curve = _get(record, ("result", "mse_vs_steps", str(support)), source)
        if len(curve) != len(steps):
            raise ValueError(f"{source}: mse_vs_steps[{support}] has {len(curve)} points for "
                             f"{len(steps)} steps")
        for step in sorted({1, steps[-1]}):
            point = curve[steps.index(step)]
            for field in ("mean", "ci95", "n_episodes"):
                _get(point, (field,), source)
            rows.append(Row(
                method=METHOD_NAMES.get(str(result["method"]), str(result["method"])),
                setting=f"sinusoid, K={support}, MSE after {step} step{'s' * (step != 1)}",
                ours=f"{point['mean']:.3f} ± {point['ci95']:.3f}",
                protocol=f"{point['n_episodes']} test tasks, {point.get('n_diverged', 0)} "
                         "diverged",
                paper="-", run=run))
    return rows


def rows_for(path: Path, papers: dict[PaperKey, dict[str, Any]]
             ) -> tuple[Run, list[Row]]:
    """How one result file was produced, and its rows of the results table.

    Args:
        path: a ``results/<experiment>-seed<k>.json`` file.
        papers: the output of :func:`load_paper_numbers`.

    Returns:
        The run, and one row per test setting (classification) or per support size and step
        (regression).

    Raises:
        ValueError: if the file lacks a field the table needs.
    """
    record = json.loads(path.read_text(encoding="utf-8"))
    for field_path in COMMON_FIELDS:
        _get(record, field_path, path.name)
    result = record["result"]
    name = path.stem
    run = Run(run=f"`{name}`", command=f"`{result['command']}`", revision=_revision(record),
              device=_device(result),
              training=_training(result))
    if "test" in result:
        return run, _classification_rows(record, path.name, name, papers)
    if "mse_vs_steps" in result:
        return run, _regression_rows(record, path.name, name)
    raise ValueError(f"{path.name}: result file lacks the field 'result.test' (classification) "
                     "or 'result.mse_vs_steps' (regression)")


def _device(result: Mapping[str, Any]) -> str:
    """The device, with the threads of every part of a run resumed on other hardware (e.g.
    ``cpu (2 threads, x86_64); trained with 1 thread (415 steps), then 2 threads (1085
    steps)``)."""
    device = str(result["device"])
    threads = describe_threads(result)
    if "thread" not in device:
        return f"{device}, {threads}"
    last_only = describe_threads({"threads": result["threads"],
                                  "processes": result.get("processes", 1)})
    return device if threads == last_only else f"{device}; trained with {threads}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render(runs: Sequence[Run], rows: Sequence[Row]) -> str:
    """Two MyST Markdown tables: the results (one row per setting), then how each run was made."""
    results = _table(("Method", "Setting", "Ours (mean ± 95% CI)", "Paper", "Protocol", "Run"),
                     [(r.method, r.setting, r.ours, r.paper, r.protocol, f"`{r.run}`")
                      for r in rows])
    made = _table(("Run", "Command", "Revision", "Device", "Training"),
                  [(r.run, r.command, r.revision, r.device, r.training) for r in runs])
    return (results + "\n**How each run was produced** (training time is wall time of the "
            "training loop; `it.` counts outer iterations):\n\n" + made)


def build(results: Path, papers: Path, bib: Path) -> str:
    """The appendix table for every ``*-seed*.json`` in ``results``.

    Args:
        results: the folder of result files.
        papers: the paper numbers (``tools/paper_numbers.json``).
        bib: the bibliography the paper numbers cite.

    Returns:
        The table as MyST Markdown (citations use the ``repro-`` key prefix).

    Raises:
        ValueError: if ``results`` holds no result file, a file lacks a field, or a paper
            number lacks a citation.
    """
    files = sorted(results.glob("*-seed*.json"))
    if not files:
        raise ValueError(f"results={results} holds no *-seed*.json result file")
    paper_numbers = load_paper_numbers(papers, bib)
    runs, rows = [], []
    for path in files:
        run, file_rows = rows_for(path, paper_numbers)
        runs.append(run)
        rows += file_rows
    note = (f"<!-- generated by tools/reproduction_table.py from {len(files)} files in "
            "results/; do not edit -->\n\n")
    return note + render(runs, rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--papers", type=Path, default=ROOT / "tools" / "paper_numbers.json")
    parser.add_argument("--bib", type=Path, default=ROOT / "references.bib")
    args = parser.parse_args(argv)
    text = build(args.results, args.papers, args.bib)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"reproduction_table: wrote the table of {args.results} to {args.out}")


if __name__ == "__main__":
    main()
