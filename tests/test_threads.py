"""equivar._threads: the thread policy (torch ops on one thread, native kernels on all) and thread-count invariance."""

import dataclasses

import pytest
import torch

from equivar import _threads
from equivar import tp as T
from equivar.tp import _cg_fused, _cg_native


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_policy_runs_torch_on_one_thread_and_kernels_on_all(two_threads, monkeypatch):
    monkeypatch.delenv("EQUIVAR_SMALL_WORK", raising=False)
    assert _threads.kernel_threads() == 2
    with _threads.thread_policy(360):
        assert torch.get_num_threads() == 1
        assert _threads.kernel_threads() == 2
        with _threads.thread_policy(10):  # nested: unchanged
            assert torch.get_num_threads() == 1
            assert _threads.kernel_threads() == 2
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    assert _threads.kernel_threads() == 2
    with pytest.raises(RuntimeError, match="boom"):
        with _threads.thread_policy(360):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == 2 and _threads._kernel_threads is None
    for work in (None, _threads.SMALL_WORK, 10 * _threads.SMALL_WORK):  # no size, or large work: unchanged
        with _threads.thread_policy(work):
            assert torch.get_num_threads() == 2
    torch.set_num_threads(1)
    with _threads.thread_policy(360):
        assert torch.get_num_threads() == 1 and _threads.kernel_threads() == 1


def test_threshold_from_environment(two_threads, monkeypatch):
    monkeypatch.setenv("EQUIVAR_SMALL_WORK", "100")
    with _threads.thread_policy(99):
        assert torch.get_num_threads() == 1
    with _threads.thread_policy(100):
        assert torch.get_num_threads() == 2
    monkeypatch.setenv("EQUIVAR_SMALL_WORK", "0")  # never
    with _threads.thread_policy(1):
        assert torch.get_num_threads() == 2
    for bad in ("many", "-3", "1.5"):
        monkeypatch.setenv("EQUIVAR_SMALL_WORK", bad)
        with pytest.raises(ValueError, match="EQUIVAR_SMALL_WORK"):
            with _threads.thread_policy(1):
                pass
    assert torch.get_num_threads() == 2


def _native_case(dtype, shared, Z=600):
    i1, i2, io = "12x0e+12x1o", "0e+1o+2e", "12x0e+12x1o+12x2e+12x1e+12x2o"
    tp = T.TensorProduct(
        i1,
        i2,
        io,
        [
            (0, 0, 0, "uvu", True),
            (0, 1, 1, "uvu", True),
            (1, 0, 1, "uvu", True),
            (1, 1, 3, "uvu", True),
            (1, 2, 4, "uvu", True),
            (0, 2, 2, "uvu", True),
            (1, 1, 0, "uvu", True),
            (1, 1, 2, "uvu", False),
        ],
        shared_weights=shared,
        internal_weights=False,
    ).to(dtype)
    b = tp.backend
    plan = b._plan
    consts = {
        k: (getattr(b, "_f" + k).to(dtype) if getattr(b, "_f" + k).is_floating_point() else getattr(b, "_f" + k))
        for k in b._const_names
    }
    g = torch.Generator().manual_seed(5)
    x1 = torch.randn(Z, tp.irreps_in1.dim, generator=g, dtype=dtype)
    x2 = torch.randn(Z, tp.irreps_in2.dim, generator=g, dtype=dtype)
    w = torch.randn(*(() if shared else (Z,)), tp.weight_numel, generator=g, dtype=dtype)
    G = torch.randn(Z, tp.irreps_out.dim, generator=g, dtype=dtype)
    return plan, consts, (x1, x2, w, G)


@pytest.mark.parametrize("shared", [False, True], ids=["per-sample", "shared"])
def test_native_kernels_same_values_at_1_2_4_threads(dtype, shared):
    """Each output row is one thread's work: per-sample results are bit-identical for any thread count; gradients of
    shared weights sum per-thread partials (equal to rounding)."""
    if _cg_native.library() is None:
        pytest.skip(f"native kernels unavailable: {_cg_native.native_error()}")
    plan, consts, (x1, x2, w, G) = _native_case(dtype, shared)
    assert plan.native is not None
    plan_torch = dataclasses.replace(plan, native=None)
    before = torch.get_num_threads()
    results = {}
    try:
        for n in (1, 2, 4):
            torch.set_num_threads(n)
            assert _threads.kernel_threads() == n
            out = _cg_fused.fused_forward(plan, consts, x1, x2, w)
            grads = _cg_fused.fused_backward(plan, consts, G, x1, x2, w, True, True, True)
            results[n] = [out, *grads]
    finally:
        torch.set_num_threads(before)
    ref = [_cg_fused.fused_forward(plan_torch, consts, x1, x2, w)]
    ref += list(_cg_fused.fused_backward(plan_torch, consts, G, x1, x2, w, True, True, True))
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-11, atol=1e-11)
    for n in (2, 4):
        for k, (a, b) in enumerate(zip(results[1], results[n])):
            if shared and k == 3:  # the shared weights' gradient
                torch.testing.assert_close(a, b, **tol)
            else:
                assert torch.equal(a, b), f"threads={n}, output {k} differs from the 1-thread result"
    for a, r in zip(results[2], ref):  # and the threaded kernels are right
        torch.testing.assert_close(a, r, **tol)


def _forward_at(n, plan, consts, x1, x2, w):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return _cg_fused.fused_forward(plan, consts, x1, x2, w)
    finally:
        torch.set_num_threads(before)


def test_native_pool_concurrent_callers_and_fork():
    """The kernels' worker pool is shared: calls from two Python threads at once (ctypes releases the GIL) and calls
    in a forked child (no workers there) give the 1-thread values."""
    import multiprocessing
    import threading

    if _cg_native.library() is None:
        pytest.skip(f"native kernels unavailable: {_cg_native.native_error()}")
    plan, consts, (x1, x2, w, G) = _native_case(torch.float64, False)
    ref = _forward_at(1, plan, consts, x1, x2, w)
    assert torch.equal(_forward_at(3, plan, consts, x1, x2, w), ref)  # starts the pool's workers
    bad = []

    def hammer():
        for _ in range(20):
            if not torch.equal(_cg_fused.fused_forward(plan, consts, x1, x2, w), ref):
                bad.append(1)

    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        threads = [threading.Thread(target=hammer) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "concurrent native calls hung"
    finally:
        torch.set_num_threads(before)
    assert not bad

    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_forward, args=(q, plan, consts, x1, x2, w))
    p.start()
    try:
        got = q.get(timeout=120)
    finally:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()
    assert p.exitcode == 0, "the forked child failed or hung"
    assert torch.equal(torch.from_numpy(got), ref)


def _child_forward(q, plan, consts, x1, x2, w):
    q.put(_forward_at(3, plan, consts, x1, x2, w).numpy())  # by value (a tensor would go through shared memory)
