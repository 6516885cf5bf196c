"""The applications chapter's stored evaluations: character subsets, cross-domain protocol."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.data.dataset import ImageClassDataset
from companion.experiments import class_fraction, cross_domain
from companion.meta import PrototypicalNetwork


def _characters(n_characters: int = 20, per_class: int = 4) -> ImageClassDataset:
    """``n_characters`` characters x 4 rotations, ``per_class`` images each; pixel = class."""
    names = tuple(f"A{c % 3}/character{c:02d}/rot{r:03d}" for c in range(n_characters)
                  for r in (0, 90, 180, 270))
    labels = torch.arange(len(names)).repeat_interleave(per_class)
    images = (labels % 256).to(torch.uint8)[:, None, None, None].expand(-1, 1, 4, 4).clone()
    return ImageClassDataset(images, labels, names, name="toy")


def _character_set(data: ImageClassDataset) -> set[str]:
    return {n.rsplit("/", 1)[0] for n in data.class_names}


def test_subsets_keep_whole_characters_and_nest():
    data = _characters()
    quarter = class_fraction.character_subset(data, 0.25)
    half = class_fraction.character_subset(data, 0.5)
    assert quarter.num_classes == 4 * 5 and half.num_classes == 4 * 10  # every rotation kept
    assert _character_set(quarter) <= _character_set(half)
    assert len(_character_set(class_fraction.character_subset(data, 0.01))) == 5  # at least 5
    assert class_fraction.character_subset(data, 1.0).num_classes == data.num_classes
    other_seed = class_fraction.character_subset(data, 0.25, seed=1)
    assert _character_set(other_seed) != _character_set(quarter)


@pytest.mark.parametrize("fraction", [0, 1.5, "half"])
def test_bad_fraction_names_the_argument(fraction):
    with pytest.raises(ValueError, match="fraction"):
        class_fraction.character_subset(_characters(), fraction)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fractions"):
        class_fraction.FractionConfig(fractions=(0.0,))
    with pytest.raises(ValueError, match="method"):
        class_fraction.FractionConfig(method="fomaml")  # second-order MAML only


def test_cross_domain_scores_every_domain_and_shot_on_shared_episodes():
    data = _characters(per_class=6)
    # an embedding that reads the class off the pixel value: every query is classified right
    perfect = PrototypicalNetwork(nn.Flatten())
    result = cross_domain.evaluate_cross_domain(
        perfect, domains={"mnist": data, "digits": data}, shots=(1, 2), n_query=2,
        n_episodes=4)
    assert set(result) == {"mnist", "digits"} and set(result["mnist"]) == {"1-shot", "2-shot"}
    assert result["mnist"]["1-shot"]["accuracy"]["mean"] == pytest.approx(1.0)
    assert result["digits"]["2-shot"]["accuracy"]["n_episodes"] == 4
    with pytest.raises(ValueError, match="domains keys"):
        cross_domain.evaluate_cross_domain(perfect, domains={"cifar": data}, n_episodes=2)
    with pytest.raises(ValueError, match="name must be one of"):
        cross_domain.load_domain("cifar")


def test_stored_results_count_only_under_their_protocol(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(tmp_path))
    assert cross_domain.stored_cross_domain("protonet-omniglot-1shot") is None
    from companion.utils import write_record

    write_record(cross_domain.cross_domain_path("protonet-omniglot-1shot"),
                 key=cross_domain.cross_domain_key("protonet-omniglot-1shot"),
                 result={"x": 1}, wall_time_s=0.0, revision="test")
    assert cross_domain.stored_cross_domain("protonet-omniglot-1shot") == {"x": 1}
    assert cross_domain.stored_cross_domain("protonet-omniglot-1shot", n_query=15) is None
    assert class_fraction.stored_class_fraction("protonet") is None


@pytest.mark.parametrize("method", ["protonet", "maml"])
def test_run_fraction_records_curve_and_each_protocol(method):
    data = _characters(per_class=6)
    data = ImageClassDataset(data.images[:, :, :1, :1].expand(-1, 1, 28, 28).clone(), data.labels,
                             data.class_names, name="toy28")
    cfg = class_fraction.FractionConfig(method=method, fractions=(0.5,), iterations=2,
                                        meta_batch_size=2, eval_every=1, eval_episodes=2,
                                        test_episodes=3)
    run = class_fraction.run_fraction(cfg, 0.5, data, data)
    assert [p["iteration"] for p in run["curve"]] == [1, 2]
    assert run["test"]["n_episodes"] == 3 and 0 <= run["test"]["mean"] <= 1
    # MAML's batch statistics make its test transductive; the non-transductive one is added
    assert ("test_non_transductive" in run) == (method == "maml")
