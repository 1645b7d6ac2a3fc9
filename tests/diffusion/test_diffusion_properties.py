"""Properties for all inputs (hypothesis): the CoM projection and the categorical posterior against Bayes' rule."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from equivar.diffusion import CategoricalDiffusion, NoiseSchedule, graph_mean, remove_mean, subspace_dim


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=12), st.integers(0, 2**31 - 1))
def test_remove_mean_is_a_projection_onto_zero_com(assignment, seed):
    """Any ragged, unsorted batch: zero mean per graph, idempotent, and translations of a graph vanish."""
    batch = torch.tensor(assignment)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(assignment), 3, generator=g, dtype=torch.float64)
    y = remove_mean(x, batch, 4)
    assert graph_mean(y, batch, 4).abs().max() < 1e-12
    torch.testing.assert_close(remove_mean(y, batch, 4), y, rtol=0, atol=1e-12)
    shift = torch.randn(4, 3, generator=g, dtype=torch.float64)[batch]
    torch.testing.assert_close(remove_mean(x + shift, batch, 4), y, rtol=0, atol=1e-12)
    counts = torch.bincount(batch, minlength=4)
    assert subspace_dim(x, batch, 4).tolist() == [max(3 * (int(n) - 1), 0) for n in counts]


@settings(max_examples=40, deadline=None)
@given(
    # prior entries are 0 or at least 1e-6: conditioning on an x_t whose probability is subnormal (a prior of
    # 5e-324) compares two roundings of numbers with a few significant bits, not Bayes' rule
    st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 1.0)), min_size=2, max_size=5).filter(lambda p: sum(p) > 0.1),
    st.lists(st.floats(0.02, 0.98), min_size=3, max_size=3),
    st.data(),
)
def test_categorical_posterior_is_bayes_rule(prior, decay, data):
    """Random prior (zeros allowed) and schedule: q(x_s | x_t, x_0) from products of step matrices."""
    m = torch.tensor(prior, dtype=torch.float64)
    m = m / m.sum()
    ab = torch.cumprod(torch.tensor([0.99] + decay, dtype=torch.float64), 0)
    cd = CategoricalDiffusion(m, NoiseSchedule(ab))
    k = m.numel()
    steps = [
        a * torch.eye(k, dtype=torch.float64) + (1 - a) * m.expand(k, k)
        for a in ab / torch.cat([ab.new_ones(1), ab[:-1]])
    ]
    t = data.draw(st.integers(1, 3))
    s = data.draw(st.integers(0, t - 1))
    x0 = data.draw(st.integers(0, k - 1))
    qs = steps[0]
    for i in range(1, s + 1):
        qs = qs @ steps[i]
    qts = torch.eye(k, dtype=torch.float64)
    for i in range(s + 1, t + 1):
        qts = qts @ steps[i]
    reachable = [j for j in range(k) if float((qs[x0] @ qts)[j]) > 0]
    xt = data.draw(st.sampled_from(reachable))
    joint = qs[x0] * qts[:, xt]
    got = cd.posterior(torch.tensor([xt]), torch.tensor([x0]), torch.tensor([s]), torch.tensor([t]))[0]
    torch.testing.assert_close(got, joint / joint.sum(), rtol=1e-10, atol=1e-12)
