"""``cp`` backend: CP-decomposed tensor products (Tensor Decomposition Networks)."""

import glob
import os

import numpy as np
import pytest
import torch

import equivar.tp._cp as cpmod
from equivar.bench.cp import cp_error_table
from equivar.o3 import Irreps, wigner_3j_np
from equivar.testing import assert_equivariant, equivariance_error
from equivar.tp import TensorProduct, p_config, s_config


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EQUIVAR_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def rel(a, b):
    return float((a - b).norm() / b.norm())


def _inputs(i1, i2, nw, dtype=torch.float64, Z=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(Z, i1.dim, generator=g, dtype=dtype),
        torch.randn(Z, i2.dim, generator=g, dtype=dtype),
        torch.randn(Z, nw, generator=g, dtype=dtype),
    )


def test_exact_rank_matches_cg(dtype):
    i1, i2, io, ins = p_config(2, 3)  # includes odd paths (1o x 1o -> 1e)
    tp = TensorProduct(i1, i2, io, ins, backend="cp", rank="exact", shared_weights=False).to(dtype)
    cg = TensorProduct(i1, i2, io, ins, backend="cg", shared_weights=False).to(dtype)
    assert tp.backend.exact and tp.backend.approx_error == 0.0 and tp.weight_numel == cg.weight_numel
    x1, x2, w = _inputs(i1, i2, tp.weight_numel, dtype)
    assert rel(tp(x1, x2, w), cg(x1, x2, w)) < (1e-5 if dtype == torch.float32 else 1e-10)


def test_path_weight_sharing_exact_matches_cg_with_tied_weights():
    i1, i2, io, ins = s_config(2, 3)
    tp = TensorProduct(
        i1, i2, io, ins, backend="cp", rank="exact", path_weight_sharing=True, shared_weights=False
    ).double()
    cg = TensorProduct(i1, i2, io, ins, backend="cg", shared_weights=False).double()
    assert tp.weight_numel == 3  # one weight per channel for all paths
    x1, x2, w = _inputs(i1, i2, 3)
    tied = torch.cat([w for i in cg.instructions if i.has_weight], -1)
    assert rel(tp(x1, x2, w), cg(x1, x2, tied)) < 1e-10


def test_error_decreases_with_rank_and_als_reaches_exact():
    # the cross-product tensor (w3j(1,1,1), 6 non-zero fibres) has CP rank 5: ALS finds it
    T = wigner_3j_np(1, 1, 1)
    errs = [cpmod.cp_als(T, r, seed=0)[3] for r in (1, 2, 3, 4, 5)]
    assert all(b < a for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 1e-6 and errs[0] > 0.5
    i1, i2, io = Irreps("2x1o"), Irreps("1o"), Irreps("2x1e")
    ins = [(0, 0, 0, "uvu", True)]
    cg = TensorProduct(i1, i2, io, ins, backend="cg", shared_weights=False).double()
    x1, x2, w = _inputs(i1, i2, cg.weight_numel)
    out = []
    for r in (2, 4, 5):
        tp = TensorProduct(i1, i2, io, ins, backend="cp", rank=r, shared_weights=False).double()
        assert tp.backend.rank == r
        out.append(rel(tp(x1, x2, w), cg(x1, x2, w)))
    assert out[0] > out[1] > out[2] and out[2] < 1e-6


def test_cp_error_table_whole_tensor():
    i1, i2, io, ins = s_config(1, 2)
    rows = cp_error_table(i1, i2, io, ins, ranks=[1, 3, 6, "exact"], n_samples=16)
    assert [r["rank"] for r in rows] == [1, 3, 6, "exact"]
    approx = [r["approx_error"] for r in rows]
    assert all(b <= a + 1e-12 for a, b in zip(approx, approx[1:])) and approx[0] > 0.3
    assert rows[-1]["output_error"] < 1e-12 and rows[-1]["equivariance_error"] < 1e-10
    # an approximate factorization is measurably not equivariant, and the table says so
    assert rows[0]["equivariance_error"] > 1e-3 and rows[0]["output_error"] > 0.1


def test_factors_are_cached_atomically(_cache, monkeypatch):
    i1, i2, io, ins = s_config(1, 2)
    kw = dict(backend="cp", rank=3, path_weight_sharing=True)
    a = TensorProduct(i1, i2, io, ins, **kw)
    files = glob.glob(os.path.join(str(_cache), "cp", "*.npz"))
    assert len(files) == 1 and not glob.glob(os.path.join(str(_cache), "cp", "*.tmp"))

    def boom(*args, **kwargs):
        raise AssertionError("refitted instead of reading the cache")

    monkeypatch.setattr(cpmod, "cp_als", boom)
    b = TensorProduct(i1, i2, io, ins, **kw)
    assert torch.equal(a.backend._A, b.backend._A) and a.backend.approx_error == b.backend.approx_error
    # deterministic: the same factors without the cache
    monkeypatch.undo()
    monkeypatch.setenv("EQUIVAR_CACHE", str(_cache))
    c = TensorProduct(i1, i2, io, ins, use_cache=False, **kw)
    np.testing.assert_array_equal(a.backend._A.numpy(), c.backend._A.numpy())


def test_equivariance_and_gradients(dtype):
    i1, i2, io, ins = p_config(1, 2)
    tp = TensorProduct(i1, i2, io, ins, backend="cp").to(dtype)
    x1, x2, _ = _inputs(i1, i2, 0, dtype, Z=4)
    assert_equivariant(tp, [x1, x2], [i1, i2], io, tolerance=1e-5 if dtype == torch.float32 else 1e-10)
    if dtype == torch.float64:
        tp = TensorProduct(i1, i2, io, ins, backend="cp", rank=2, shared_weights=False).double()
        x1, x2, w = _inputs(i1, i2, tp.weight_numel, Z=2)
        args = [t.requires_grad_() for t in (x1, x2, w)]
        assert torch.autograd.gradcheck(tp, args, fast_mode=True)
        assert torch.autograd.gradgradcheck(tp, args, fast_mode=True)
        approx = TensorProduct(i1, i2, io, ins, backend="cp", rank=2).double()
        with torch.no_grad():
            assert equivariance_error(approx, [x1, x2], [i1, i2], io).max > 1e-3  # rank 2 < exact: approximate


def test_bad_rank_and_unsupported_paths():
    i1, i2, io, ins = s_config(1, 2)
    for bad in (0, -1, 2.5, "full", True):
        with pytest.raises(ValueError, match="rank"):
            TensorProduct(i1, i2, io, ins, backend="cp", rank=bad)
    with pytest.raises(ValueError, match="cannot express"):
        TensorProduct("2x0e", "2x0e", "2x0e", [(0, 0, 0, "uvw", True)], backend="cp")
