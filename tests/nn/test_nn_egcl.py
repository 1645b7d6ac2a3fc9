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


# ---- complete graphs of one size: dense pair tensors and the fused layer ----------------------------------------

import pytest  # noqa: E402

from equivar.nn import complete_graph_edges, complete_graph_size, egcl_dense_fused, off_diagonal  # noqa: E402


def test_off_diagonal_values_order_and_gradient():
    g = torch.Generator().manual_seed(0)
    for n in (2, 3, 5):
        t = torch.randn(2, n, n, 3, dtype=torch.float64, generator=g, requires_grad=True)
        i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        keep = i != j
        expect = t[:, keep].reshape(2, n, n - 1, 3)  # row-major: receiver i, then j ascending
        torch.testing.assert_close(off_diagonal(t), expect, rtol=0, atol=0)
        assert torch.autograd.gradcheck(lambda t: off_diagonal(t) ** 2, (t,))
    with pytest.raises(ValueError, match=r"expected \[..., N, N, C\], got shape \(4, 3, 2\)"):
        off_diagonal(torch.zeros(4, 3, 2))


def test_complete_graph_edges_and_detection():
    e = complete_graph_edges(2, 3)
    # graph 0 then graph 1; receivers grouped, senders ascending; row 0 = sender
    assert e.tolist() == [[1, 2, 0, 2, 0, 1, 4, 5, 3, 5, 3, 4], [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]]
    ptr = torch.tensor([0, 3, 6])
    assert complete_graph_size(e, 6, ptr) == 3
    assert complete_graph_size(e, 6, None) is None  # no graph boundaries: undecidable
    assert complete_graph_size(e[:, torch.randperm(12, generator=torch.Generator().manual_seed(1))], 6, ptr) is None
    assert complete_graph_size(e.flip(0), 6, ptr) is None  # senders and receivers swapped
    assert complete_graph_size(e[:, :-1], 6, ptr) is None  # an edge missing
    assert complete_graph_size(e, 6, torch.tensor([0, 2, 6])) is None  # graphs of different sizes
    assert complete_graph_size(torch.zeros(2, 0, dtype=torch.long), 3, torch.tensor([0, 1, 2, 3])) is None  # N = 1


def _layer(dtype, edge_attr_dim=2, velocity=True, coords_aggregation="mean", residual=True, seed=0):
    torch.manual_seed(seed)
    layer = EGCL(
        8, edge_attr_dim=edge_attr_dim, velocity=velocity, coords_aggregation=coords_aggregation, residual=residual
    ).to(dtype)
    with torch.no_grad():
        layer.coord_mlp[2].weight.mul_(300.0)  # non-trivial position messages
    return layer


def _graphs(dtype, b=3, n=4, f=8, a=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(b, n, f, dtype=dtype, generator=g)
    x = torch.randn(b, n, 3, dtype=dtype, generator=g)
    vel = torch.randn(b, n, 3, dtype=dtype, generator=g)
    ea = torch.randn(b, n, n - 1, a, dtype=dtype, generator=g) if a else None
    return h, x, vel, ea


@pytest.mark.parametrize(
    "options",
    [{}, {"velocity": False}, {"coords_aggregation": "sum"}, {"edge_attr_dim": 0}, {"residual": False}],
)
def test_forward_dense_equals_the_general_layer(options):
    """The dense complete-graph layer is the scatter/gather layer on complete_graph_edges (float64, round-off)."""
    dtype = torch.float64
    layer = _layer(dtype, **options)
    b, n = 3, 4
    h, x, vel, ea = _graphs(dtype, b, n, a=layer.edge_attr_dim)
    vel = vel if layer.coord_mlp_vel is not None else None
    h_d, x_d = layer.forward_dense(h, x, ea, vel)
    ei = complete_graph_edges(b, n)
    flat_ea = ea.reshape(b * n * (n - 1), -1) if ea is not None else None
    h_s, x_s = layer(
        h.reshape(b * n, -1), x.reshape(b * n, 3), ei, flat_ea, None if vel is None else vel.reshape(-1, 3)
    )
    torch.testing.assert_close(h_d.reshape(b * n, -1), h_s, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(x_d.reshape(b * n, 3), x_s, rtol=1e-13, atol=1e-13)
    assert (x_s - x.reshape(b * n, 3)).abs().max() > 1e-2


def _node_major(t):
    return t.transpose(0, 1).reshape(-1, t.shape[-1])


def _edges_node_major(ea):
    return ea.permute(1, 2, 0, 3).reshape(-1, ea.shape[-1])


@pytest.mark.parametrize("update_h", [True, False])
@pytest.mark.parametrize(
    "options", [{}, {"velocity": False}, {"coords_aggregation": "sum"}, {"edge_attr_dim": 0}, {"residual": False}]
)
def test_fused_layer_equals_forward_dense_values_and_gradients(options, update_h):
    """egcl_dense_fused (hand-written backward) against autograd through forward_dense: outputs and the gradients
    of h, x and every parameter, float64."""
    dtype = torch.float64
    layer = _layer(dtype, **options)
    b, n = 3, 4
    h, x, vel, ea = _graphs(dtype, b, n, a=layer.edge_attr_dim)
    vel = vel if layer.coord_mlp_vel is not None else None
    g = torch.Generator().manual_seed(5)
    wh, wx = torch.randn(b, n, 8, dtype=dtype, generator=g), torch.randn(b, n, 3, dtype=dtype, generator=g)

    def run(fused):
        layer.zero_grad()
        hh, xx = h.clone().requires_grad_(), x.clone().requires_grad_()
        if fused:
            h_o, x_o = egcl_dense_fused(
                layer,
                _node_major(hh),
                _node_major(xx),
                None if ea is None else _edges_node_major(ea),
                None if vel is None else _node_major(vel),
                n,
                update_h=update_h,
            )
            h_o, x_o = h_o.view(n, b, -1).transpose(0, 1), x_o.view(n, b, 3).transpose(0, 1)
        else:
            h_o, x_o = layer.forward_dense(hh, xx, ea, vel, update_h=update_h)
        loss = (x_o * wx).sum() + ((h_o * wh).sum() if update_h else 0.0)
        loss.backward()
        grads = {
            k: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for k, p in layer.named_parameters()
        }
        return h_o.detach(), x_o.detach(), hh.grad, xx.grad, grads

    fused, ref = run(True), run(False)
    for a, r in zip(fused[:4], ref[:4]):
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-12)
    for k in ref[4]:
        torch.testing.assert_close(fused[4][k], ref[4][k], rtol=1e-12, atol=1e-12, msg=k)
    assert ref[3].abs().max() > 1e-3 and ref[4]["edge_out.weight"].abs().max() > 1e-3  # non-trivial gradients


def test_fused_layer_gradcheck_against_finite_differences():
    """The hand-written backward against finite differences: inputs h, x and a parameter of every block."""
    from torch.func import functional_call

    dtype = torch.float64
    layer = _layer(dtype)
    with torch.no_grad():
        layer.coord_mlp[2].weight.div_(30.0)
    b, n = 2, 3
    module = _Fused(layer, n)
    h, x, vel, ea = _graphs(dtype, b, n)
    h, x = _node_major(h).requires_grad_(), _node_major(x).requires_grad_()
    assert torch.autograd.gradcheck(lambda h, x: module(h, x, ea, vel), (h, x))
    params = {k: v.detach() for k, v in module.named_parameters()}
    for name in [
        "layer.edge_in_nodes",
        "layer.edge_in_pairs",
        "layer.edge_in_bias",
        "layer.edge_out.weight",
        "layer.coord_mlp.0.bias",
        "layer.coord_mlp.2.weight",
        "layer.coord_mlp_vel.0.weight",
        "layer.coord_mlp_vel.2.bias",
        "layer.node_mlp.0.weight",
        "layer.node_mlp.2.bias",
    ]:
        p = params[name].clone().requires_grad_()

        def f(p, name=name):
            return functional_call(module, {**params, name: p}, (h.detach(), x.detach(), ea, vel))

        assert torch.autograd.gradcheck(f, (p,)), name


class _Fused(torch.nn.Module):
    def __init__(self, layer, n):
        super().__init__()
        self.layer = layer
        self.n = n

    def forward(self, h, x, ea, vel):
        return egcl_dense_fused(self.layer, h, x, _edges_node_major(ea), _node_major(vel), self.n)


def test_fused_layer_refuses_what_it_cannot_compute():
    layer = EGCL(8, edge_attr_dim=2, activation="relu")
    h, x, vel, ea = _graphs(torch.float32, 2, 3)
    with pytest.raises(ValueError, match="must use SiLU without norm_diff"):
        egcl_dense_fused(layer, _node_major(h), _node_major(x), _edges_node_major(ea), _node_major(vel), 3)
    layer = EGCL(8, edge_attr_dim=2, velocity=True)
    with pytest.raises(ValueError, match="needs vel"):
        egcl_dense_fused(layer, _node_major(h), _node_major(x), _edges_node_major(ea), None, 3)
    with pytest.raises(ValueError, match="edge_attr has 1 features, the layer was built for 2"):
        egcl_dense_fused(layer, _node_major(h), _node_major(x), _edges_node_major(ea)[:, :1], _node_major(vel), 3)
