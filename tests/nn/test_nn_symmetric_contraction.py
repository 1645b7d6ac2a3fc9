import itertools

import pytest
import torch

from equivar.nn import SymmetricContraction, symmetric_contraction_basis
from equivar.o3 import Irrep, Irreps, rand_matrix
from equivar.testing import assert_equivariant

# dimensions of the symmetric equivariant spaces, checked against e3nn's ReducedTensorProducts
COUNTS = {
    ("0e", 1): 1,
    ("0e", 2): 4,
    ("0e", 3): 8,
    ("1o", 2): 3,
    ("1o", 3): 12,
    ("2e", 3): 14,
    ("3o", 3): 15,
    ("1e", 2): 0,
    ("1e", 3): 4,
    ("0o", 3): 0,
}


@pytest.mark.parametrize("ir_out,nu", sorted(COUNTS))
def test_basis_counts(ir_out, nu):
    assert symmetric_contraction_basis("0e+1o+2e+3o", ir_out, nu).shape[0] == COUNTS[(ir_out, nu)]


def test_basis_counts_match_e3nn():
    o3 = pytest.importorskip("e3nn.o3")
    r = o3.ReducedTensorProducts("ijk=jik=ikj", i="0e+1o+2e", filter_ir_out=["1o"])
    assert symmetric_contraction_basis("0e+1o+2e", "1o", 3).shape[0] == r.irreps_out.count("1o")


@pytest.mark.parametrize("ir_out,nu", [("0e", 3), ("1o", 3), ("2e", 2), ("1e", 3)])
def test_basis_orthonormal_symmetric_equivariant(ir_out, nu):
    irreps = Irreps("0e+1o+2e")
    U = torch.tensor(symmetric_contraction_basis(irreps, ir_out, nu))
    K = U.shape[0]
    flat = U.reshape(K, -1)
    torch.testing.assert_close(flat @ flat.T, torch.eye(K, dtype=torch.float64), atol=1e-12, rtol=0)
    for perm in itertools.permutations(range(nu)):
        torch.testing.assert_close(U.permute(0, 1, *[2 + p for p in perm]), U, atol=1e-12, rtol=0)
    gen = torch.Generator().manual_seed(0)
    for R in [rand_matrix(generator=gen, dtype=torch.float64), -rand_matrix(generator=gen, dtype=torch.float64)]:
        Din = irreps.D_from_matrix(R)
        Dout = Irrep(ir_out).D_from_matrix(R)
        # f(x) = U . (x (x) ... (x) x) must satisfy f(D_in x) = D_out f(x)
        T = U
        for k in range(nu):
            T = torch.movedim(torch.tensordot(T, Din, dims=([2 + k], [0])), -1, 2 + k)
        lhs = torch.einsum("mn,kn...->km...", Dout, U)
        torch.testing.assert_close(T, lhs, atol=1e-10, rtol=0)


def _brute_force(sc, x, idx):
    N, C = x.shape[0], sc.channels
    per = sc.per_channel_in
    xc = torch.cat([x[:, s].reshape(N, C, -1) for s in sc.irreps_in.slices()], -1)
    outs = []
    for o, (_, ir) in enumerate(sc.irreps_out):
        acc = x.new_zeros(N, C, ir.dim)
        for nu in range(1, sc.correlation + 1):
            U = torch.tensor(symmetric_contraction_basis(per, ir, nu), dtype=x.dtype) * ir.dim**0.5
            if U.shape[0] == 0:
                continue
            k = [i for i, p in enumerate(sc._paths) if p[0] == o and p[1] == nu][0]
            T = U
            for j in range(nu):
                T = torch.einsum("...i,nci->nc..." if j == 0 else "nc...i,nci->nc...", T, xc)
            acc = acc + torch.einsum("nckd,nkc->ncd", T, sc.weights[k][idx])
        outs.append(acc.reshape(N, -1))
    return torch.cat(outs, -1)


def _select(sc, path):
    """Pick the evaluation path: native kernels, the PyTorch custom Function ('analytic') or plain autograd."""
    sc.native = path == "native"
    sc.analytic_backward = path == "analytic"
    return sc


PATHS = ["native", "analytic", "autograd"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("num_elements", [3, 10])  # 10 > 8 takes the gather path without the Function
def test_contraction_matches_brute_force(num_elements, path, dtype, tol):
    sc = _select(SymmetricContraction("3x0e+3x1o+3x2e", "3x0e+3x1o", 3, num_elements).to(dtype), path)
    x = Irreps("3x0e+3x1o+3x2e").randn(5, -1, dtype=dtype)
    idx = torch.tensor([0, 1, 2, 1, 0])
    oh = torch.nn.functional.one_hot(idx, num_elements).to(dtype)
    ref = _brute_force(sc, x, idx)
    t = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(sc(x, oh), ref, rtol=t, atol=t)
    torch.testing.assert_close(sc(x, idx), ref, rtol=t, atol=t)


@pytest.mark.parametrize("path", PATHS)
def test_contraction_equivariant(path, dtype):
    irreps_in, irreps_out = "4x0e+4x1o+4x2e+4x3o", "4x0e+4x1o+4x1e"
    sc = _select(SymmetricContraction(irreps_in, irreps_out, 3, 2).to(dtype), path)
    x = Irreps(irreps_in).randn(6, -1, dtype=dtype)
    oh = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 0, 1, 0]), 2).to(dtype)
    assert_equivariant(lambda a, b: sc(a, b), [x, oh], [irreps_in, None], irreps_out)


def test_contraction_zero_input_gives_zero_and_errors():
    sc = SymmetricContraction("2x0e+2x1o", "2x0e", 2, 1)
    assert torch.all(sc(torch.zeros(3, 8), torch.zeros(3, dtype=torch.long)) == 0)
    with pytest.raises(ValueError, match="multiplicity"):
        SymmetricContraction("2x0e+3x1o", "2x0e", 2, 1)
    with pytest.raises(ValueError, match="no symmetric product"):
        SymmetricContraction("2x0e+2x1o", "2x0o", 2, 1)


def _small(num_elements=2, irreps_out="2x0e+2x1o", correlation=3):
    torch.manual_seed(0)
    sc = SymmetricContraction("2x0e+2x1o+2x2e", irreps_out, correlation, num_elements).double()
    sc.analytic_backward = True  # the custom autograd Function under test (the native kernels have their own tests)
    sc.native = False
    return sc


def test_contraction_backward_choice():
    """The analytic backward is used where it is cheaper (vector outputs), plain autograd for scalar outputs."""
    assert SymmetricContraction("4x0e+4x1o+4x2e+4x3o", "4x0e+4x1o", 3, 3).analytic_backward
    assert not SymmetricContraction("4x0e+4x1o+4x2e+4x3o", "4x0e", 3, 3).analytic_backward


@pytest.mark.parametrize("idx", [[0, 1, 1, 0, 1], [1, 1, 1, 1, 1]])  # both elements / element 0 absent
@pytest.mark.parametrize("correlation", [1, 2, 3])
def test_contraction_gradcheck_gradgradcheck(idx, correlation):
    sc = _small(correlation=correlation)
    idx = torch.tensor(idx)
    x = Irreps("2x0e+2x1o+2x2e").randn(5, -1, dtype=torch.float64).requires_grad_(True)
    inputs = (x, *[w.detach().clone().requires_grad_(True) for w in sc.weights])
    f = lambda x, *w: _apply_with_weights(sc, x, idx, w)  # noqa: E731
    assert torch.autograd.gradcheck(f, inputs)
    assert torch.autograd.gradgradcheck(f, inputs)


def _apply_with_weights(sc, x, idx, ws):
    """``sc(x, idx)`` with its weight parameters replaced by the tensors ``ws`` (differentiable in them)."""
    saved = dict(sc.weights._parameters)
    try:
        for k, w in zip(list(saved), ws):
            sc.weights._parameters[k] = w
        return sc(x, idx)
    finally:
        sc.weights._parameters.update(saved)


def test_contraction_force_loss_gradients_match_brute_force():
    """Forward -> create_graph backward -> backward (a force loss) gives the brute-force autograd gradients."""
    sc = _small(num_elements=3)
    idx = torch.tensor([0, 2, 2, 0, 1, 2])
    x0 = Irreps("2x0e+2x1o+2x2e").randn(6, -1, dtype=torch.float64)
    r = torch.randn(6, sc.irreps_out.dim, dtype=torch.float64)
    f = torch.randn_like(x0)
    grads = []
    for fn in (lambda x: sc(x, torch.nn.functional.one_hot(idx, 3).double()), lambda x: _brute_force(sc, x, idx)):
        sc.zero_grad()
        x = x0.clone().requires_grad_(True)
        e = (fn(x) * r).sum()
        (g,) = torch.autograd.grad(e, x, create_graph=True)
        ((g * f).sum() + e).backward()
        grads.append([x.grad] + [w.grad.clone() for w in sc.weights])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_contraction_forces_pass_skips_weight_gradient_but_stays_exact():
    """``autograd.grad`` w.r.t. inputs only, then w.r.t. weights through the graph, both match brute force."""
    sc = _small()
    idx = torch.tensor([0, 1, 1, 0])
    x = Irreps("2x0e+2x1o+2x2e").randn(4, -1, dtype=torch.float64).requires_grad_(True)
    out = []
    for fn in (lambda: sc(x, idx), lambda: _brute_force(sc, x, idx)):
        (g,) = torch.autograd.grad(fn().square().sum(), x, create_graph=True)
        out.append(torch.autograd.grad(g.square().sum(), [x, *sc.weights]))
    for a, b in zip(*out):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_compiled_second_derivatives_match_eager():
    """Under torch.compile the contraction takes its plain-autograd path (no custom Function)."""
    from equivar.nn import SymmetricContraction

    sc = SymmetricContraction("4x0e+4x1o+4x2e", "4x0e+4x1o", 3, 2).double()
    assert sc.analytic_backward and sc.native
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, sc.irreps_in.dim, generator=g, dtype=torch.float64, requires_grad=True)
    attrs = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 0, 1, 0]), 2).double()
    res = []
    for m in (sc, torch.compile(sc, backend="eager", fullgraph=True)):
        (gx,) = torch.autograd.grad((m(x, attrs) ** 2).sum(), x, create_graph=True)
        res.append(torch.autograd.grad((gx**2).sum(), [x, *sc.weights]))
    for a, b in zip(*res):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
