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
