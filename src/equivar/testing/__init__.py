"""Test utilities: equivariance checks for any callable with typed inputs/outputs."""

from ._equivariance import EquivarianceReport, Typed, assert_equivariant, default_tolerance, equivariance_error

__all__ = ["EquivarianceReport", "Typed", "assert_equivariant", "default_tolerance", "equivariance_error"]
