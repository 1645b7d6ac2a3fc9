"""2D Fourier basis on the sphere (Luo, Chen, Zhang, ICLR 2024): change-of-basis matrices.

With ``beta`` the angle from e3nn's polar axis y and ``alpha`` the azimuth
(``r = (sin b sin a, cos b, sin b cos a)``), every polynomial of degree
``d`` on the sphere, read as a function of ``(beta, alpha)`` on the torus
``[0, 2 pi)^2``, is a trigonometric polynomial of degree ``<= d`` in each
angle: ``f = sum_{|u|, |v| <= d} F[u, v] exp(i (u beta + v alpha))``. This
holds for the harmonics ``Y_lm`` (degree ``l``) and for the vector fields of
the parity-complete product (degree ``<= l``). A product of such functions
is a 2D convolution of their coefficient arrays, done with FFTs.

Here (all float64, exact):

- :func:`fourier_coefficients`: ``F[u, v]`` of given functions, by sampling
  on a ``(2d+1) x (2d+1)`` torus grid (exact for degree ``d``) and a 2D FFT;
- :func:`sphere_projection`: the matrix taking the Fourier coefficients of a
  function ``h`` to its harmonic coefficients
  ``int_{S^2} h Y_l3m3 dOmega``, from the closed form of
  ``int_0^pi exp(i k beta) sin(beta) d beta``.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ._gaunt_plan import harmonic_fields


def torus_points(n_beta: int, n_alpha: int) -> np.ndarray:
    """Unit vectors ``[n_beta * n_alpha, 3]`` at ``beta_j = 2 pi j / n_beta``, ``alpha_k = 2 pi k / n_alpha`` (beta-major)."""
    b = 2 * math.pi * np.arange(n_beta) / n_beta
    a = 2 * math.pi * np.arange(n_alpha) / n_alpha
    B, A = np.meshgrid(b, a, indexing="ij")
    return np.stack([np.sin(B) * np.sin(A), np.cos(B), np.sin(B) * np.cos(A)], -1).reshape(-1, 3)


@functools.cache
def fourier_coefficients(l: int, field: str, degree: int) -> np.ndarray:
    """Fourier coefficients of the degree-``l`` fields, ``[rows, 2*degree+1, 2*degree+1]`` complex.

    ``field``: ``'Y'`` (harmonics, rows ``m``), ``'Q'`` (``rhat x grad P``) or
    ``'G'`` (``grad P``), the vector fields with rows ``(component, m)``
    component-major. Axis 1 is ``u`` and axis 2 is ``v`` in FFT order
    (``0..degree, -degree..-1``). ``degree`` must be ``>= l``.
    """
    n = 2 * degree + 1
    Y, Q, G = harmonic_fields(l, torus_points(n, n))
    vals = {"Y": Y.T[None], "Q": Q.transpose(1, 2, 0), "G": G.transpose(1, 2, 0)}[field]  # [K, d, n*n]
    vals = vals.reshape(-1, n, n)
    return np.fft.fft2(vals) / (n * n)


def _moment(k: int) -> complex:
    """``int_0^pi exp(i k b) sin(b) db``."""

    def J(m):  # int_0^pi exp(i m b) db
        if m == 0:
            return math.pi
        return 0.0 if m % 2 == 0 else 2j / m

    return (J(k + 1) - J(k - 1)) / 2j


@functools.cache
def sphere_projection(l3: int, n_beta: int, v_max: int) -> np.ndarray:
    """Real matrix ``[n_beta * (v_max+1) * 2, 2 l3 + 1]`` from ``rfft2`` coefficients to harmonic coefficients.

    For a real trigonometric polynomial ``h`` whose ``beta``-degree is
    ``< n_beta / 2`` and whose coefficients ``F[u, v]`` (``u`` in FFT order
    modulo ``n_beta``, ``0 <= v <= v_max``, real and imaginary parts last, as
    ``torch.view_as_real(torch.fft.rfft2(h, norm='forward'))[..., :v_max+1, :]``)
    are given, ``flat(F) @ matrix`` is ``int h Y_l3 dOmega``. Needs ``v_max >= l3``.
    """
    if v_max < l3:
        raise ValueError(f"v_max={v_max} < l3={l3}")
    y = fourier_coefficients(l3, "Y", l3)  # [d3, 2l3+1 (u'), 2l3+1 (v')]
    n3 = 2 * l3 + 1
    us = [(j if j <= n_beta // 2 else j - n_beta) for j in range(n_beta)]
    up = [(j if j <= l3 else j - n3) for j in range(n3)]
    I = {k: _moment(k) for k in range(-n_beta - n3, n_beta + n3 + 1)}
    K = np.zeros((n_beta, v_max + 1, 2 * l3 + 1), dtype=complex)
    for a, u in enumerate(us):
        for v in range(v_max + 1):
            if v > l3:
                continue
            col = (-v) % n3
            K[a, v] = 2 * math.pi * sum(y[:, b, col] * I[u + up[b]] for b in range(n3))
    w = np.where(np.arange(v_max + 1) == 0, 1.0, 2.0)[None, :, None]
    out = np.stack([(w * K).real, -(w * K).imag], axis=2)  # [n_beta, v_max+1, 2, d3]
    return out.reshape(-1, 2 * l3 + 1)
