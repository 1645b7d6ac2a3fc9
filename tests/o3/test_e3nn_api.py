"""equivar.o3's e3nn-named helpers (rotation parametrizations, su(2), SphericalHarmonics, D_from_angles,
slice_by_mul) against e3nn 0.6 as an oracle, float64."""

import pytest
import torch

from equivar import o3

eo = pytest.importorskip("e3nn.o3")
F64 = dict(rtol=1e-10, atol=1e-10)


def test_rotation_parametrizations_match_e3nn():
    g = torch.Generator().manual_seed(0)
    q = o3.rand_quaternion(50, generator=g, dtype=torch.float64)
    R = o3.quaternion_to_matrix(q)
    torch.testing.assert_close(eo.quaternion_to_matrix(q), R, **F64)
    abc = o3.quaternion_to_angles(q)
    torch.testing.assert_close(eo.angles_to_matrix(*abc), R, **F64)
    torch.testing.assert_close(o3.quaternion_to_matrix(o3.angles_to_quaternion(*abc)), R, **F64)
    ax, an = o3.quaternion_to_axis_angle(q)
    torch.testing.assert_close(eo.axis_angle_to_matrix(ax, an), R, **F64)
    torch.testing.assert_close(o3.matrix_to_quaternion(R), q * torch.sign(q[..., :1]), **F64)
    q2 = o3.rand_quaternion(50, generator=g, dtype=torch.float64)
    torch.testing.assert_close(
        o3.quaternion_to_matrix(o3.compose_quaternion(q, q2)), R @ o3.quaternion_to_matrix(q2), **F64
    )
    torch.testing.assert_close(o3.quaternion_to_matrix(o3.inverse_quaternion(q)), R.transpose(-1, -2), **F64)
    abc2 = o3.quaternion_to_angles(q2)
    torch.testing.assert_close(
        o3.angles_to_matrix(*o3.compose_angles(*abc, *abc2)), R @ o3.angles_to_matrix(*abc2), **F64
    )
    torch.testing.assert_close(o3.angles_to_matrix(*o3.inverse_angles(*abc)), R.transpose(-1, -2), **F64)
    ax2, an2 = o3.quaternion_to_axis_angle(q2)
    axc, anc = o3.compose_axis_angle(ax, an, ax2, an2)
    torch.testing.assert_close(o3.axis_angle_to_matrix(axc, anc), R @ o3.axis_angle_to_matrix(ax2, an2), **F64)
    torch.testing.assert_close(o3.angles_to_xyz(abc[0], abc[1]), eo.angles_to_xyz(abc[0], abc[1]), **F64)
    torch.testing.assert_close(o3.angles_to_matrix(*o3.axis_angle_to_angles(ax, an)), R, **F64)
    axa, ana = o3.angles_to_axis_angle(*abc)
    torch.testing.assert_close(o3.axis_angle_to_matrix(axa, ana), R, **F64)


def test_random_angles_are_haar():
    g = torch.Generator().manual_seed(1)
    a, b, c = o3.rand_angles(200_000, generator=g, dtype=torch.float64)
    x = o3.angles_to_matrix(a, b, c) @ torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    assert x.mean(0).abs().max() < 0.005  # a Haar-random rotation maps a vector to a uniform direction
    ax, an = o3.rand_axis_angle(200_000, generator=g, dtype=torch.float64)
    y = o3.axis_angle_to_matrix(ax, an) @ torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    assert y.mean(0).abs().max() < 0.005
    e = o3.identity_angles(3, dtype=torch.float64)
    torch.testing.assert_close(o3.angles_to_matrix(*e), torch.eye(3, dtype=torch.float64).expand(3, 3, 3))
    torch.testing.assert_close(
        o3.quaternion_to_matrix(o3.identity_quaternion(2, dtype=torch.float64)),
        torch.eye(3, dtype=torch.float64).expand(2, 3, 3),
    )


@pytest.mark.parametrize("j", [0, 0.5, 1, 1.5, 2, 2.5])
def test_su2_algebra_and_spin1_matches_so3(j):
    X = o3.su2_generators(j, dtype=torch.float64)
    comm = lambda A, B: A @ B - B @ A  # noqa: E731
    torch.testing.assert_close(comm(X[0], X[1]), X[2], **F64)
    torch.testing.assert_close(comm(X[1], X[2]), X[0], **F64)
    torch.testing.assert_close(comm(X[2], X[0]), X[1], **F64)
    casimir = -(X @ X).sum(0)  # J^2 = j (j + 1)
    torch.testing.assert_close(casimir, j * (j + 1) * torch.eye(int(2 * j + 1), dtype=torch.complex128), **F64)
    with pytest.raises(ValueError, match="multiple of 1/2"):
        o3.su2_generators(0.3)


def test_spherical_harmonics_module(dtype):
    from equivar.testing import assert_equivariant

    sh = o3.SphericalHarmonics("0e+1o+2x2e+3o", normalize=True, normalization="integral")
    x = torch.randn(7, 3, dtype=dtype)
    want = o3.spherical_harmonics([0, 1, 2, 2, 3], x, True, "integral")
    torch.testing.assert_close(sh(x), want)
    assert_equivariant(lambda v: sh(v), [x], ["1o"], sh.irreps_out)
    ref = eo.SphericalHarmonics("0e+1o+2x2e+3o", True, "integral")
    torch.testing.assert_close(sh(x.double()), ref(x.double()), **F64)
    pseudo = o3.SphericalHarmonics([0, 1, 2], normalize=False, irreps_in="1e")
    assert str(pseudo.irreps_out) == "1x0e+1x1e+1x2e"
    with pytest.raises(ValueError, match=r"parity 1 at l=1, not 1e|parity -1 at l=1, not 1e"):
        o3.SphericalHarmonics("0e+1e", normalize=True)
    with pytest.raises(ValueError, match="irreps_in must be 1o or 1e"):
        o3.SphericalHarmonics("0e", normalize=True, irreps_in="1e+3o")


def test_D_from_angles_and_slice_by_mul_match_e3nn():
    torch.set_default_dtype(torch.float64)
    try:
        abc = o3.rand_angles(4)
        k = torch.tensor([0, 1, 2, 3])
        for s in ["2o", "0e+1o+2x2e+1o"]:
            torch.testing.assert_close(o3.Irreps(s).D_from_angles(*abc, k), eo.Irreps(s).D_from_angles(*abc, k), **F64)
        torch.testing.assert_close(o3.Irrep("3e").D_from_angles(*abc), eo.Irrep("3e").D_from_angles(*abc), **F64)
    finally:
        torch.set_default_dtype(torch.float32)
    for s, sl in [("10x0e + 2e + 10x1e", slice(5, 15)), ("3x1o+0x2e+4x0e", slice(2, 6)), ("5x0e", slice(None))]:
        assert str(o3.Irreps(s).slice_by_mul[sl]) == str(eo.Irreps(s).slice_by_mul[sl])
