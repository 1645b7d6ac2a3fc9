"""Rotations of R^3: random sampling, Euler angles, axis-angle, checks.

Euler angles follow e3nn's convention, ``R = Y(alpha) X(beta) Y(gamma)``
(rotations about the y, x, y axes), so angles are interchangeable with
``e3nn.o3``.
"""

from __future__ import annotations

import math

import torch


def _tol(dtype: torch.dtype) -> float:
    return 1e-4 if dtype in (torch.float32, torch.float16, torch.bfloat16) else 1e-8


def check_rotation(R: torch.Tensor, name: str = "R") -> None:
    """Raise ``ValueError`` unless ``R [..., 3, 3]`` is orthogonal (det +-1).

    The tolerance on ``|R R^T - I|`` is 1e-4 in float32 and 1e-8 in float64;
    the message names the largest deviation found.
    """
    if not isinstance(R, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape [..., 3, 3], got {type(R).__name__}")
    if R.shape[-2:] != (3, 3):
        raise ValueError(f"{name} must have shape [..., 3, 3], got {tuple(R.shape)}")
    if R.numel() == 0:
        return
    with torch.no_grad():
        eye = torch.eye(3, dtype=R.dtype, device=R.device)
        dev = (R @ R.transpose(-1, -2) - eye).abs().amax()
        if not torch.isfinite(dev) or dev > _tol(R.dtype) * 10:
            raise ValueError(
                f"{name} is not a rotation matrix: max |R R^T - I| = {float(dev):.3g} "
                f"(tolerance {_tol(R.dtype) * 10:.0e} for {R.dtype})"
            )


def rand_matrix(*shape: int, generator: torch.Generator | None = None, dtype=None, device=None) -> torch.Tensor:
    """Haar-random proper rotations ``[*shape, 3, 3]`` (uniform unit quaternions).

    Pass a seeded ``torch.Generator`` for reproducibility.
    """
    q = torch.randn(*shape, 4, generator=generator, dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    R = quaternion_to_matrix(q)
    return R.to(dtype=dtype or torch.get_default_dtype(), device=device)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternions ``[..., 4]`` (w, x, y, z) to rotation matrices ``[..., 3, 3]``."""
    w, x, y, z = q.unbind(-1)
    R = torch.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - z * w),
            2 * (x * z + y * w),
            2 * (x * y + z * w),
            1 - 2 * (x * x + z * z),
            2 * (y * z - x * w),
            2 * (x * z - y * w),
            2 * (y * z + x * w),
            1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    )
    return R.reshape(q.shape[:-1] + (3, 3))


def matrix_x(angle: torch.Tensor) -> torch.Tensor:
    """Rotation by ``angle`` (radians) about the x axis, ``[..., 3, 3]``."""
    c, s = angle.cos(), angle.sin()
    o, z = torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack([o, z, z, z, c, -s, z, s, c], -1).reshape(angle.shape + (3, 3))


def matrix_y(angle: torch.Tensor) -> torch.Tensor:
    """Rotation by ``angle`` (radians) about the y axis, ``[..., 3, 3]``."""
    c, s = angle.cos(), angle.sin()
    o, z = torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(angle.shape + (3, 3))


def matrix_z(angle: torch.Tensor) -> torch.Tensor:
    """Rotation by ``angle`` (radians) about the z axis, ``[..., 3, 3]``."""
    c, s = angle.cos(), angle.sin()
    o, z = torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(angle.shape + (3, 3))


def angles_to_matrix(alpha: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """e3nn Euler angles to matrices: ``Y(alpha) @ X(beta) @ Y(gamma)``."""
    alpha, beta, gamma = torch.broadcast_tensors(alpha, beta, gamma)
    return matrix_y(alpha) @ matrix_x(beta) @ matrix_y(gamma)


def xyz_to_angles(xyz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Direction ``[..., 3]`` to ``(alpha, beta)`` with ``beta = acos(y)``, ``alpha = atan2(x, z)``."""
    xyz = torch.nn.functional.normalize(xyz, dim=-1)
    xyz = xyz.clamp(-1, 1)
    beta = torch.acos(xyz[..., 1])
    alpha = torch.atan2(xyz[..., 0], xyz[..., 2])
    return alpha, beta


def matrix_to_angles(R: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Proper rotations ``[..., 3, 3]`` to e3nn Euler angles ``(alpha, beta, gamma)``.

    Raises ``ValueError`` if ``R`` is not a proper rotation.
    """
    check_rotation(R)
    if R.numel() and (torch.linalg.det(R) < 0).any():
        raise ValueError("matrix_to_angles needs proper rotations (det +1); got det -1")
    x = R[..., :, 1]
    a, b = xyz_to_angles(x)
    Rp = angles_to_matrix(a, b, torch.zeros_like(a)).transpose(-1, -2) @ R
    c = torch.atan2(Rp[..., 0, 2], Rp[..., 0, 0])
    return a, b, c


def axis_angle_to_matrix(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotation by ``angle`` (radians, right hand) about ``axis [..., 3]`` (Rodrigues).

    Raises ``ValueError`` for a zero axis.
    """
    n = axis.norm(dim=-1, keepdim=True)
    if axis.numel() and (n == 0).any():
        raise ValueError("axis_angle_to_matrix: axis has zero length")
    k = axis / n
    kx, ky, kz = k.unbind(-1)
    z = torch.zeros_like(kx)
    K = torch.stack([z, -kz, ky, kz, z, -kx, -ky, kx, z], -1).reshape(k.shape[:-1] + (3, 3))
    angle = torch.as_tensor(angle, dtype=axis.dtype, device=axis.device)[..., None, None]
    eye = torch.eye(3, dtype=axis.dtype, device=axis.device)
    return eye + angle.sin() * K + (1 - angle.cos()) * (K @ K)


def matrix_to_axis_angle(R: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Proper rotations ``[..., 3, 3]`` to ``(axis [..., 3], angle [...])``, angle in [0, pi]."""
    check_rotation(R)
    tr = R.diagonal(dim1=-2, dim2=-1).sum(-1)
    angle = torch.acos(((tr - 1) / 2).clamp(-1, 1))
    v = torch.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1)
    # near angle = pi use the symmetric part: R + I = 2 k k^T
    S = (R + R.transpose(-1, -2)) / 2 + torch.eye(3, dtype=R.dtype, device=R.device) * (1 - tr[..., None, None]) / 2
    i = S.diagonal(dim1=-2, dim2=-1).argmax(-1)
    col = torch.gather(S, -1, i[..., None, None].expand(S.shape[:-1] + (1,))).squeeze(-1)
    col = col * torch.where((col * v).sum(-1, keepdim=True) < 0, -1.0, 1.0).to(R.dtype)
    small = v.norm(dim=-1, keepdim=True) < 1e-6
    axis = torch.where(small & (angle[..., None] > math.pi / 2), col, v)
    axis = torch.nn.functional.normalize(axis, dim=-1)
    axis = torch.where(
        axis.norm(dim=-1, keepdim=True) == 0, torch.tensor([0.0, 1.0, 0.0], dtype=R.dtype, device=R.device), axis
    )
    return axis, angle


# ----------------------------------------------------------------------------------------------------------
# e3nn's parametrizations of rotations and their conversions. Euler angles are e3nn's (``Y(alpha) X(beta)
# Y(gamma)``); quaternions are ``(w, x, y, z)`` with ``quaternion_to_matrix(q1 * q2) = R(q1) @ R(q2)``;
# axis-angle is ``(axis [..., 3], angle [...])``, right-handed. Every conversion goes through the matrix or
# the quaternion, so they agree with each other to rounding.


def _like(shape, requires_grad, dtype, device, values):
    t = values.to(dtype=dtype or torch.get_default_dtype(), device=device).reshape(shape)
    return t.detach().requires_grad_(requires_grad)


def identity_angles(*shape: int, requires_grad: bool = False, dtype=None, device=None):
    """Euler angles ``(alpha, beta, gamma)`` of the identity, each ``[*shape]`` (zeros)."""
    z = torch.zeros(shape, dtype=torch.float64)
    return tuple(_like(shape, requires_grad, dtype, device, z) for _ in range(3))


def rand_angles(*shape: int, requires_grad: bool = False, generator=None, dtype=None, device=None):
    """Haar-random Euler angles ``(alpha, beta, gamma)``, each ``[*shape]``.

    ``alpha, gamma`` uniform on ``[0, 2 pi)``, ``cos(beta)`` uniform on ``[-1, 1]`` (the Haar measure
    in these coordinates is ``sin(beta) d alpha d beta d gamma``).
    """
    u = torch.rand((3,) + tuple(shape), generator=generator, dtype=torch.float64)
    a, c = 2 * math.pi * u[0], 2 * math.pi * u[2]
    b = torch.acos(2 * u[1] - 1)
    return tuple(_like(shape, requires_grad, dtype, device, t) for t in (a, b, c))


def angles_to_xyz(alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Unit vector ``[..., 3]`` of direction ``(alpha, beta)``: ``R(alpha, beta, 0) @ (0, 1, 0)``; inverse of ``xyz_to_angles``."""
    alpha, beta = torch.broadcast_tensors(torch.as_tensor(alpha), torch.as_tensor(beta))
    return torch.stack([beta.sin() * alpha.sin(), beta.cos(), beta.sin() * alpha.cos()], -1)


def inverse_angles(alpha, beta, gamma):
    """Euler angles of the inverse rotation: ``(Y(a) X(b) Y(c))^-1 = Y(-c) X(-b) Y(-a)``."""
    return -gamma, -beta, -alpha


def compose_angles(a1, b1, c1, a2, b2, c2):
    """Euler angles of ``R(a1, b1, c1) @ R(a2, b2, c2)``."""
    return matrix_to_angles(angles_to_matrix(a1, b1, c1) @ angles_to_matrix(a2, b2, c2))


def identity_quaternion(*shape: int, requires_grad: bool = False, dtype=None, device=None) -> torch.Tensor:
    """The identity quaternion ``(1, 0, 0, 0)``, ``[*shape, 4]``."""
    q = torch.zeros(tuple(shape) + (4,), dtype=torch.float64)
    q[..., 0] = 1
    return _like(tuple(shape) + (4,), requires_grad, dtype, device, q)


def rand_quaternion(*shape: int, requires_grad: bool = False, generator=None, dtype=None, device=None) -> torch.Tensor:
    """Haar-random unit quaternions ``[*shape, 4]`` (a normalized Gaussian 4-vector)."""
    q = torch.randn(tuple(shape) + (4,), generator=generator, dtype=torch.float64)
    return _like(tuple(shape) + (4,), requires_grad, dtype, device, q / q.norm(dim=-1, keepdim=True))


def compose_quaternion(q1: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``q1 q2`` ``[..., 4]`` (the rotation ``R(q1) @ R(q2)``)."""
    q1, q2 = torch.broadcast_tensors(q1, q2)
    w1, x1, y1, z1 = q1.unbind(-1)
    w2, x2, y2, z2 = q2.unbind(-1)
    return torch.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        -1,
    )


def inverse_quaternion(q: torch.Tensor) -> torch.Tensor:
    """Inverse of unit quaternions (their conjugate) ``[..., 4]``."""
    return q * torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=q.dtype, device=q.device)


def axis_angle_to_quaternion(axis: torch.Tensor, angle) -> torch.Tensor:
    """``(cos(angle/2), sin(angle/2) axis/|axis|)`` ``[..., 4]``."""
    angle = torch.as_tensor(angle, dtype=axis.dtype, device=axis.device)
    axis = torch.nn.functional.normalize(axis, dim=-1)
    axis, angle = torch.broadcast_tensors(axis, angle[..., None])
    half = angle[..., :1] / 2
    return torch.cat([half.cos(), half.sin() * axis], -1)


def quaternion_to_axis_angle(q: torch.Tensor):
    """Unit quaternions ``[..., 4]`` to ``(axis [..., 3], angle [...])``, angle in ``[0, pi]``."""
    q = q * torch.where(q[..., :1] < 0, -1.0, 1.0).to(q.dtype)  # q and -q are one rotation: take w >= 0
    v = q[..., 1:]
    angle = 2 * torch.atan2(v.norm(dim=-1), q[..., 0])
    return torch.nn.functional.normalize(v, dim=-1), angle


def matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """Proper rotations ``[..., 3, 3]`` to unit quaternions ``[..., 4]`` (``w >= 0``)."""
    return axis_angle_to_quaternion(*matrix_to_axis_angle(R))


def angles_to_quaternion(alpha, beta, gamma) -> torch.Tensor:
    """Euler angles to quaternions: ``q_y(alpha) q_x(beta) q_y(gamma)``."""
    alpha, beta, gamma = torch.broadcast_tensors(torch.as_tensor(alpha), torch.as_tensor(beta), torch.as_tensor(gamma))
    ex = torch.tensor([1.0, 0.0, 0.0], dtype=alpha.dtype, device=alpha.device)
    ey = torch.tensor([0.0, 1.0, 0.0], dtype=alpha.dtype, device=alpha.device)
    qa, qb, qc = (
        axis_angle_to_quaternion(ey, alpha),
        axis_angle_to_quaternion(ex, beta),
        axis_angle_to_quaternion(ey, gamma),
    )
    return compose_quaternion(compose_quaternion(qa, qb), qc)


def quaternion_to_angles(q: torch.Tensor):
    """Unit quaternions ``[..., 4]`` to Euler angles ``(alpha, beta, gamma)``."""
    return matrix_to_angles(quaternion_to_matrix(q))


def angles_to_axis_angle(alpha, beta, gamma):
    """Euler angles to ``(axis, angle)``."""
    return quaternion_to_axis_angle(angles_to_quaternion(alpha, beta, gamma))


def axis_angle_to_angles(axis: torch.Tensor, angle):
    """``(axis, angle)`` to Euler angles."""
    return matrix_to_angles(axis_angle_to_matrix(axis, angle))


def rand_axis_angle(*shape: int, requires_grad: bool = False, generator=None, dtype=None, device=None):
    """Haar-random ``(axis [*shape, 3], angle [*shape])``."""
    axis, angle = quaternion_to_axis_angle(rand_quaternion(*shape, generator=generator, dtype=torch.float64))
    return (
        _like(tuple(shape) + (3,), requires_grad, dtype, device, axis),
        _like(tuple(shape), requires_grad, dtype, device, angle),
    )


def compose_axis_angle(axis1, angle1, axis2, angle2):
    """``(axis, angle)`` of the rotation ``R(axis1, angle1) @ R(axis2, angle2)``."""
    q = compose_quaternion(axis_angle_to_quaternion(axis1, angle1), axis_angle_to_quaternion(axis2, angle2))
    return quaternion_to_axis_angle(q)
