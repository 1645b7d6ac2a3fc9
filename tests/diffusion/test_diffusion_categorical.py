"""Categorical diffusion with a marginal prior: marginals, Bayes posterior by brute force, loss, pairs."""

import math

import pytest
import torch

from equivar.diffusion import CategoricalDiffusion, NoiseSchedule, NoiseSource, complete_graph_pairs, cosine_schedule

PRIOR = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)


def _step_matrices(sch, m):
    """Single-step Q_t = a_t I + (1 - a_t) 1 m^T, a_t = alpha_bar_t / alpha_bar_{t-1} (alpha_bar_{-1} = 1)."""
    ab = sch.alpha_bar_table
    prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
    k = m.numel()
    return [a * torch.eye(k, dtype=torch.float64) + (1 - a) * m.expand(k, k) for a in ab / prev]


def _qbar(Q, t):
    """Qbar_t = Q_0 Q_1 ... Q_t (rows: x_0; columns: x_t), by matrix products."""
    out = Q[0]
    for i in range(1, t + 1):
        out = out @ Q[i]
    return out


def _q_between(Q, s, t):
    out = torch.eye(Q[0].shape[0], dtype=torch.float64)
    for i in range(s + 1, t + 1):
        out = out @ Q[i]
    return out


def test_marginal_is_the_product_of_step_matrices():
    sch = cosine_schedule(6, nu=1.5, clip_min=0.05)
    cd = CategoricalDiffusion(PRIOR, sch)
    Q = _step_matrices(sch, PRIOR)
    x0 = torch.arange(4)
    for t in range(7):
        tt = torch.full((4,), t)
        torch.testing.assert_close(cd.marginal(x0, tt), _qbar(Q, t), rtol=1e-12, atol=1e-14)
        ab = float(sch.alpha_bar(tt[:1]))
        torch.testing.assert_close(cd.marginal(x0, tt), ab * torch.eye(4, dtype=torch.float64) + (1 - ab) * PRIOR)
    # q(x_t | x_s) is a row of Q_{s+1} ... Q_t
    s, t = torch.tensor([1, 2, 0, 3]), torch.tensor([4, 2, 6, 5])
    for i in range(4):
        torch.testing.assert_close(cd.transition(x0, s, t)[i], _q_between(Q, int(s[i]), int(t[i]))[i])


def test_forward_samples_have_the_stated_marginals():
    """Frequencies of x_t ~ q(x_t | x_0 = 1) against alpha_bar_t onehot + (1 - alpha_bar_t) m (5 sigma)."""
    sch = cosine_schedule(100, nu=1.0, clip_min=0.05)
    cd = CategoricalDiffusion(PRIOR, sch)
    n = 20000
    for level in (30, 60, 95):
        t = torch.full((n,), level)
        xt = cd.q_sample(torch.ones(n, dtype=torch.long), t, NoiseSource(level))
        freq = torch.bincount(xt, minlength=4).double() / n
        ab = float(sch.alpha_bar(t[:1]))
        want = (1 - ab) * PRIOR
        want[1] += ab
        se = (want * (1 - want) / n).sqrt()
        assert ((freq - want).abs() < 5 * se + 1e-12).all(), (level, freq, want)


def test_posterior_is_bayes_rule_by_brute_force():
    """q(x_s | x_t, x_0) = p(x_0, x_s, x_t) / p(x_0, x_t) with the joint built from step matrices; every x_0, x_t, s < t."""
    sch = cosine_schedule(4, nu=1.0, clip_min=0.05)
    m = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    cd = CategoricalDiffusion(m, sch)
    Q = _step_matrices(sch, m)
    k = 3
    for t in range(1, 5):
        for s in range(t):
            Qs, Qts = _qbar(Q, s), _q_between(Q, s, t)
            for x0 in range(k):
                for xt in range(k):
                    joint = Qs[x0, :] * Qts[:, xt]  # over x_s, given x_0
                    want = joint / joint.sum()
                    got = cd.posterior(torch.tensor([xt]), torch.tensor([x0]), torch.tensor([s]), torch.tensor([t]))[0]
                    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    # a distribution over x_0: the mixture sum_k p_k q(x_s | x_t, k) (D3PM eq. 4)
    p = torch.tensor([[0.2, 0.5, 0.3]], dtype=torch.float64)
    s, t, xt = torch.tensor([1]), torch.tensor([3]), torch.tensor([2])
    want = sum(p[0, j] * cd.posterior(xt, torch.tensor([j]), s, t)[0] for j in range(k))
    torch.testing.assert_close(cd.posterior(xt, p, s, t)[0], want, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="needs s < t"):
        cd.posterior(xt, p, t, t)


def test_posterior_with_a_zero_prior_class():
    """A class the prior never reaches: x_t = that class pins x_0 to it; the rows stay distributions."""
    sch = cosine_schedule(5)
    cd = CategoricalDiffusion([0.7, 0.3, 0.0], sch)
    p = torch.tensor([[0.0, 1.0, 0.0], [0.2, 0.3, 0.5]], dtype=torch.float64)
    post = cd.posterior(torch.tensor([2, 2]), p, torch.tensor([2, 2]), torch.tensor([3, 3]))
    assert torch.isfinite(post).all()
    torch.testing.assert_close(post.sum(-1), torch.ones(2, dtype=torch.float64))
    # second row: only x_0 = 2 reaches x_t = 2, so the posterior is q(x_s | x_t = 2, x_0 = 2)
    torch.testing.assert_close(
        post[1], cd.posterior(torch.tensor([2]), torch.tensor([2]), torch.tensor([2]), torch.tensor([3]))[0]
    )


def test_exact_reverse_chain_recovers_the_data_marginal():
    """With the exact p(x_0 | x_t) the categorical ancestral chain is exact: level 0 has alpha_bar_0 p + (1 - alpha_bar_0) m."""
    sch = cosine_schedule(25, nu=1.0, clip_min=0.05)
    cd = CategoricalDiffusion(PRIOR, sch)
    p_data = torch.tensor([0.05, 0.1, 0.25, 0.6], dtype=torch.float64)  # far from the prior
    n = 20000
    src = NoiseSource(21)
    x = cd.prior_sample(n, src)
    for level in range(25, 0, -1):
        t, s = torch.full((n,), level), torch.full((n,), level - 1)
        post0 = p_data * cd.marginal(torch.arange(4), t[:4])[:, x].T  # p(x_0 = k) Qbar_t[k, x_t]
        x = cd.step(x, post0 / post0.sum(-1, keepdim=True), s, t, src)
    freq = torch.bincount(x, minlength=4).double() / n
    ab0 = float(sch.alpha_bar(torch.tensor([0])))
    want = ab0 * p_data + (1 - ab0) * PRIOR
    se = (want * (1 - want) / n).sqrt()
    assert ((freq - want).abs() < 5 * se).all(), (freq, want)


def test_cross_entropy_loss_per_graph():
    cd = CategoricalDiffusion(PRIOR, cosine_schedule(5))
    index = torch.tensor([0, 0, 2, 2, 2])
    x0 = torch.tensor([0, 3, 1, 1, 2])
    loss = cd.loss(torch.zeros(5, 4), x0, index, 3)
    torch.testing.assert_close(loss, torch.tensor([math.log(4), 0.0, math.log(4)]))  # graph 1 has no items
    logits = torch.full((5, 4), -30.0).scatter(1, x0[:, None], 30.0)
    assert cd.loss(logits, x0, index, 3).max() < 1e-20
    w = torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(
        cd.loss(torch.zeros(5, 4), x0, index, 3, w), torch.tensor([2 * math.log(4), 0, 0.5 * math.log(4)])
    )


def test_categorical_errors():
    sch = cosine_schedule(5)
    with pytest.raises(ValueError, match="prior must sum to 1, got 0.9"):
        CategoricalDiffusion([0.5, 0.4], sch)
    with pytest.raises(ValueError, match=r"prior\[1\] = -0.5 is not a probability"):
        CategoricalDiffusion([1.5, -0.5], sch)
    cd = CategoricalDiffusion([0.5, 0.5], sch)
    with pytest.raises(ValueError, match=r"classes must be in 0..1, got 0..2"):
        cd.marginal(torch.tensor([0, 2]), torch.tensor([1, 1]))
    with pytest.raises(TypeError, match="NoiseSchedule"):
        CategoricalDiffusion([0.5, 0.5], [0.9, 0.5])
    assert isinstance(sch, NoiseSchedule)


def test_complete_graph_pairs():
    batch = torch.tensor([1, 0, 1, 2, 1, 0])  # graph sizes 2, 3, 1, nodes interleaved
    pairs = complete_graph_pairs(batch, 3)
    got = sorted(map(tuple, pairs.T.tolist()))
    assert got == [(0, 2), (0, 4), (1, 5), (2, 4)]
    assert (pairs[0] < pairs[1]).all() and (batch[pairs[0]] == batch[pairs[1]]).all()
    assert batch[pairs[0]].tolist() == sorted(batch[pairs[0]].tolist())
    assert complete_graph_pairs(torch.tensor([0, 1]), 2).shape == (2, 0)
