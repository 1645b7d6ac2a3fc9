"""Plain message passing (GCL, GNN): the authors' concatenated equations, permutation equivariance, no more."""

import torch

from equivar.nn import GCL, GNN, uniform_degree


def _complete(n):
    i = torch.arange(n).repeat_interleave(n)
    j = torch.arange(n).repeat(n)
    keep = i != j
    return torch.stack([j[keep], i[keep]])


def test_gcl_matches_concatenated_equations():
    torch.manual_seed(0)
    layer = GCL(8, edge_attr_dim=2).double()
    n = 5
    h = torch.randn(n, 8, dtype=torch.float64)
    e = _complete(n)
    a = torch.randn(e.shape[1], 2, dtype=torch.float64)
    z = torch.cat([h[e[1]], h[e[0]], a], -1) @ layer.edge_in_weight().T + layer.edge_in_bias
    m = torch.nn.functional.silu(layer.edge_out(torch.nn.functional.silu(z)))
    agg = torch.zeros_like(h).index_add_(0, e[1], m)
    expect = h + layer.node_mlp(torch.cat([h, agg], -1))
    torch.testing.assert_close(layer(h, e, a), expect, rtol=1e-13, atol=1e-13)
    deg = uniform_degree(e[1], n)
    assert deg == n - 1
    torch.testing.assert_close(layer(h, e, a, degree=deg), expect, rtol=1e-13, atol=1e-13)
    perm = torch.randperm(e.shape[1])  # edge order does not matter without the reshape shortcut
    torch.testing.assert_close(layer(h, e[:, perm], a[perm]), expect, rtol=1e-13, atol=1e-13)


def test_gnn_is_permutation_equivariant_but_not_rotation_equivariant():
    torch.manual_seed(1)
    gnn = GNN(6, 12, 3, num_layers=2, edge_attr_dim=1).double()
    n = 6
    x = torch.randn(n, 6, dtype=torch.float64)
    e = _complete(n)
    a = torch.randn(n, n, 1, dtype=torch.float64)
    out = gnn(x, e, a[e[1], e[0]])
    p = torch.randperm(n)
    inv = torch.argsort(p)
    ap = a[p][:, p]
    torch.testing.assert_close(gnn(x[p], e, ap[e[1], e[0]]), out[p], rtol=1e-12, atol=1e-12)
    R = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0]
    rotated = torch.cat([x[:, :3] @ R.T, x[:, 3:] @ R.T], -1)
    assert (gnn(rotated, e, a[e[1], e[0]]) - out @ R.T).abs().max() > 1e-3  # a plain GNN: not equivariant
    assert inv.numel() == n
