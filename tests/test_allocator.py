"""equivar.tune_allocator: glibc mallopt settings, opt-out through the environment, bad values."""

import platform

import pytest

import equivar
from equivar import _allocator


def test_import_changes_nothing_and_cli_opt_out(monkeypatch):
    monkeypatch.setattr(_allocator, "_state", {"applied": False})
    assert _allocator.allocator_state() == "malloc: libc defaults"
    monkeypatch.setenv("EQUIVAR_TUNE_MALLOC", "0")
    assert _allocator.tune_allocator_from_env() is False
    assert _allocator.allocator_state() == "malloc: libc defaults"


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_tune_allocator_applies_on_glibc(monkeypatch):
    monkeypatch.setattr(_allocator, "_state", {"applied": False})
    assert equivar.tune_allocator() is True
    assert "1024/1024 MiB" in _allocator.allocator_state()


def test_rejects_out_of_range_thresholds():
    with pytest.raises(ValueError, match="-5"):
        equivar.tune_allocator(mmap_threshold=-5)
