"""Prototypes: device and dtype, arbitrary class ids, squared vs unsquared distance."""

from __future__ import annotations

import pytest
import torch

from companion.clinic import protonet_prototypes as clinic

EMB = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [2.0, 4.0]], dtype=torch.float64)
LABELS = torch.tensor([7, 7, 3, 3])  # the episode's original class ids


@pytest.mark.parametrize("version, is_right", [(clinic.correct_buffer, True),
                                               (clinic.mistaken_buffer, False)])
def test_buffer_follows_the_embeddings_device_and_dtype(version, is_right):
    meta = torch.empty(5, 3, device="meta", dtype=torch.float64)
    buffer = version(meta, 4)
    assert (buffer.device == meta.device and buffer.dtype == meta.dtype) is is_right


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_prototypes_stay_on_the_gpu():
    emb = EMB.cuda()
    assert clinic.correct_prototypes(emb, LABELS.cuda())[1].device == emb.device


def _means_of_original_classes(prototypes: torch.Tensor) -> bool:
    expected = torch.tensor([[1.0, 4.0], [1.0, 0.0]], dtype=torch.float64)  # classes 3, 7
    return bool(torch.isfinite(prototypes).all()) and torch.allclose(
        prototypes.to(expected.dtype), expected)


def test_labels_that_are_not_0_to_n_minus_1():
    classes, prototypes = clinic.correct_prototypes(EMB, LABELS)
    assert classes.tolist() == [3, 7] and _means_of_original_classes(prototypes)
    wrong = clinic.mistaken_prototypes(EMB, LABELS, 2)
    assert not _means_of_original_classes(wrong) and torch.isnan(wrong).all()


def _is_linear_classifier(logits_fn) -> bool:
    """Snell et al. Sec. 2.4: softmax(-|q - c|^2) = softmax(2 c.q - |c|^2)."""
    query = torch.tensor([[0.5, 1.0], [3.0, -1.0], [1.0, 2.5]], dtype=torch.float64)
    _, prototypes = clinic.correct_prototypes(EMB, LABELS)
    linear = 2 * query @ prototypes.T - (prototypes**2).sum(1)
    return torch.allclose(logits_fn(query, prototypes).softmax(1), linear.softmax(1))


@pytest.mark.parametrize("version, is_right", [(clinic.correct_logits, True),
                                               (clinic.mistaken_logits, False)])
def test_distance_is_the_papers_squared_euclidean(version, is_right):
    assert _is_linear_classifier(version) is is_right


def test_unsquared_distance_changes_probabilities_not_the_argmax():
    query = torch.tensor([[0.5, 1.0]], dtype=torch.float64)
    prototypes = torch.tensor([[1.0, 4.0], [1.0, 0.0]], dtype=torch.float64)
    # distances sqrt(9.25) ~ 3.04 and sqrt(1.25) ~ 1.12: p = sigmoid(1.92) vs sigmoid(8)
    right = clinic.correct_logits(query, prototypes).softmax(1)
    wrong = clinic.mistaken_logits(query, prototypes).softmax(1)
    assert right.argmax() == wrong.argmax() == 1
    assert right[0, 1].item() == pytest.approx(torch.sigmoid(torch.tensor(8.0)).item())
    assert wrong[0, 1].item() == pytest.approx(
        torch.sigmoid(torch.tensor(9.25**0.5 - 1.25**0.5)).item())
