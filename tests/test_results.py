"""Committed results still match the configurations that claim to have produced them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from companion.experiments import (
    get_config,
    load_or_run_experiment,
    load_trained,
    run_command,
    stored_result,
)
from companion.experiments.base import canonical
from companion.experiments.configs import config_from_key, same_experiment
from companion.experiments.registry import method_spec
from companion.utils import read_record

RESULTS = Path(__file__).resolve().parents[1] / "results"
FILES = sorted(RESULTS.glob("*-seed*.json"))


def test_there_are_results():
    assert FILES, "results/ holds no result files"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_result_matches_its_registered_configuration(path):
    match = re.fullmatch(r"(.+)-seed(\d+)\.json", path.name)
    assert match, path.name
    name, seed = match.group(1), int(match.group(2))
    record = read_record(path)
    assert same_experiment(record["key"], get_config(name).key(seed)), (
        f"{path.name} is stale: rerun `python -m companion.experiments run {name}`")
    assert record["git_revision"], "results must record the code revision"
    weights = torch.load(path.with_suffix(".pt"), map_location="cpu", weights_only=True)
    assert same_experiment(weights["key"], record["key"]), "the weights are this run's"
    assert load_or_run_experiment(name, seed=seed) == record["result"]
    learner = load_trained(name, seed=seed)
    assert not learner.training and sum(p.numel() for p in learner.parameters()) > 0


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_stored_keys_rebuild_their_registered_configuration(path):
    """Under the per-family dataclasses, each stored key still describes its registered
    configuration: rebuilt with ``from_dict`` it equals it, and the key the configuration
    writes today is the stored one, less the fields its method never read (see
    companion/experiments/base.py)."""
    name, seed = re.fullmatch(r"(.+)-seed(\d+)\.json", path.name).groups()  # type: ignore[union-attr]
    cfg = get_config(name)
    stored = read_record(path)["key"]
    assert stored["seed"] == int(seed) and stored["name"] == name
    assert type(config_from_key(stored)) is type(cfg) and config_from_key(stored) == cfg
    family = method_spec(stored["method"]).config
    assert canonical(stored, family) == cfg.key(int(seed))
    dropped = set(canonical(stored)) - set(cfg.key(int(seed)))
    assert dropped <= {"inner_lr"} and (not dropped or stored["method"] == "joint"), dropped


def test_missing_results_name_the_command(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(tmp_path))
    command = re.escape("python -m companion.experiments run maml-omniglot-5w1s --seed 0")
    with pytest.raises(FileNotFoundError, match=command):
        load_or_run_experiment("maml-omniglot-5w1s")


def test_stored_result_is_none_when_missing_and_the_record_otherwise(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(tmp_path))
    assert stored_result("maml-omniglot-5w1s") is None
    if FILES:
        monkeypatch.setenv("COMPANION_RESULTS_DIR", str(RESULTS))
        name = re.fullmatch(r"(.+)-seed0\.json", FILES[0].name).group(1)
        assert stored_result(name) == read_record(FILES[0])["result"]


def test_run_command_rejects_unknown_experiments():
    assert run_command("maml-omniglot-5w1s", seed=3).endswith("maml-omniglot-5w1s --seed 3")
    with pytest.raises(ValueError, match="unknown experiment"):
        run_command("maml-omniglot-3w1s")
