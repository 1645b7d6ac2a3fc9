"""EGCL building blocks: the one-pass pair gather (to second order), receiver-grouped sums, the authors' weight layout."""

import torch

from equivar.nn import EGCL, aggregate, egcl_params_from_concatenated, gather_add, scatter_sum, uniform_degree


def test_gather_add_values_and_derivatives_to_second_order():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    recv = torch.tensor([0, 0, 1, 3, 4, 4, 2])
    send = torch.tensor([1, 2, 0, 4, 3, 0, 2])
    torch.testing.assert_close(gather_add(a, b, recv, send), a[recv] + b[send], rtol=0, atol=0)

    def f(a, b):
        return (gather_add(a, b, recv, send) ** 3).sum()

    assert torch.autograd.gradcheck(f, (a, b))
    assert torch.autograd.gradgradcheck(f, (a, b))


def test_uniform_degree_and_aggregate():
    recv = torch.tensor([0, 0, 1, 1, 2, 2])
    assert uniform_degree(recv, 3) == 2
    assert uniform_degree(torch.tensor([0, 1, 0, 1, 2, 2]), 3) is None  # not grouped by receiver
    assert uniform_degree(torch.tensor([0, 0, 0, 1, 2, 2]), 3) is None  # degrees differ
    assert uniform_degree(torch.tensor([0, 0, 1, 1]), 3) is None  # node 2 has no edge
    src = torch.randn(6, 4, dtype=torch.float64)
    torch.testing.assert_close(aggregate(src, recv, 3, degree=2), scatter_sum(src, recv, 3), rtol=1e-15, atol=1e-15)


def test_authors_layout_round_trip():
    torch.manual_seed(0)
    layer = EGCL(8, edge_attr_dim=2, velocity=True)
    w = torch.randn(8, 2 * 8 + 1 + 2)
    state = {"edge_mlp.0.weight": w, "edge_mlp.0.bias": torch.randn(8), "edge_mlp.2.weight": torch.randn(8, 8)}
    state["edge_mlp.2.bias"] = torch.randn(8)
    for k, v in layer.state_dict().items():
        if k.startswith(("node_mlp", "coord_mlp")):
            state[k] = torch.randn_like(v)
    layer.load_state_dict(egcl_params_from_concatenated(state))
    torch.testing.assert_close(layer.edge_in_weight(), w, rtol=0, atol=0)
    torch.testing.assert_close(layer.edge_out.weight, state["edge_mlp.2.weight"], rtol=0, atol=0)
    # the per-node split computes the concatenated layer: one edge, by hand
    h = torch.randn(2, 8, dtype=torch.float64)
    x = torch.randn(2, 3, dtype=torch.float64)
    a = torch.randn(2, 2, dtype=torch.float64)
    layer = layer.double()
    ei = torch.tensor([[1, 0], [0, 1]])
    h_out, _ = layer(h, x, ei, a, torch.zeros_like(x))
    r = ((x[0] - x[1]) ** 2).sum()
    z = (
        torch.cat([h[1], h[0], r[None], a[1]]) @ w.double().T + layer.edge_in_bias
    )  # edge 0 -> 1 (ei[:, 1]): [h_i, h_j, r, a]
    m = torch.nn.functional.silu(layer.edge_out(torch.nn.functional.silu(z)))
    expect = h[1] + layer.node_mlp(torch.cat([h[1], m]))
    torch.testing.assert_close(h_out[1], expect, rtol=1e-12, atol=1e-12)
