"""The attention-based in-context learner: the mask, attention against PyTorch's reference,
regression episodes, and a tiny trained model approaching least squares."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from companion.data import LinearRegressionTasks, least_squares_predict
from companion.meta import InContextLearner, MaskedSelfAttention, episode_attention_mask


def test_mask_lets_everyone_read_the_support_and_a_query_only_itself():
    expected = torch.tensor([[1, 1, 0, 0, 0],
                             [1, 1, 0, 0, 0],
                             [1, 1, 1, 0, 0],
                             [1, 1, 0, 1, 0],
                             [1, 1, 0, 0, 1]], dtype=torch.bool)
    assert torch.equal(episode_attention_mask(2, 3), expected)


def test_masked_attention_matches_pytorchs_scaled_dot_product_attention():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        attention = MaskedSelfAttention(8, 2).double()
        x = torch.randn(3, 6, 8, dtype=torch.float64)
    mask = episode_attention_mask(4, 2)
    q, k, v = attention.qkv(x).chunk(3, dim=-1)
    q, k, v = (z.view(3, 6, 2, 4).transpose(1, 2) for z in (q, k, v))
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # [3, 2, 6, 4]
    reference = attention.proj(reference.transpose(1, 2).reshape(3, 6, 8))
    torch.testing.assert_close(attention(x, mask), reference, rtol=1e-12, atol=1e-12)


def test_heads_must_divide_the_width():
    with pytest.raises(ValueError, match="n_heads"):
        MaskedSelfAttention(10, 3)


def _regressor(dim: int, **kw: int) -> InContextLearner:
    return InContextLearner(nn.Identity(), embedding_dim=dim, task="regression",
                            max_support=16, **kw)


def test_regression_episodes_give_one_prediction_per_query_and_no_peeking():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = _regressor(3, d_model=16, n_heads=2).double()
    batch, _ = LinearRegressionTasks(3).sample(2, n_support=5, n_query=4, dtype=torch.float64,
                                               generator=torch.Generator().manual_seed(0))
    episode = batch[0]
    out = net.predict(episode)
    assert out.shape == (4, 1)
    query_x = episode.query_x.clone()
    query_x[2] += 1.0
    changed = net(episode.support_x, episode.support_y, query_x)
    keep = torch.tensor([True, True, False, True])
    assert torch.equal(changed[keep], out[keep])
    loss, metrics = net.meta_loss(batch)
    torch.testing.assert_close(loss, F.mse_loss(torch.stack([net.predict(e) for e in batch]),
                                                batch.query_y), rtol=1e-12, atol=0)
    assert set(metrics) == {"query_mse"}
    torch.testing.assert_close(net.evaluation_metrics(episode)["query_mse"],
                               F.mse_loss(out, episode.query_y))
    with pytest.raises(ValueError, match="support_y contains NaN"):
        net(episode.support_x, episode.support_y * float("nan"), episode.query_x)
    with pytest.raises(ValueError, match="task='regression'"):
        net(episode.support_x, torch.zeros(5, dtype=torch.int64), episode.query_x)


@pytest.mark.slow
def test_a_tiny_trained_model_approaches_least_squares_on_noiseless_data():
    """d = 2, 6 examples in context: after a short training (250 steps) the model's predictions
    are close to the least-squares ones (which are exact here): their mean squared gap is below
    15% of E[y^2], the error of ignoring the context (measured: 7%; 22% after 100 steps)."""
    dim, n_support = 2, 6
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = _regressor(dim, d_model=32, n_heads=2, n_layers=2)
    sampler = LinearRegressionTasks(dim).sampler(n_support=n_support, n_query=32, seed=0)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(250):
        loss, _ = net.meta_loss(sampler.sample_batch(32))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    test, _ = LinearRegressionTasks(dim).sample(200, n_support=n_support, n_query=8,
                                                generator=torch.Generator().manual_seed(99))
    with torch.no_grad():
        predicted = net._outputs(test.support_x, test.support_y, test.query_x)
    reference = least_squares_predict(test.support_x, test.support_y, test.query_x)
    torch.testing.assert_close(reference, test.query_y, rtol=0, atol=1e-4)  # LS is exact here
    gap = (predicted - reference).pow(2).mean()
    no_context = test.query_y.pow(2).mean()  # error of predicting 0 = E[y^2] = dim
    assert gap < 0.15 * no_context, (gap, no_context)
