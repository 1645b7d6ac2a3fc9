"""Native kernels cannot vanish silently: a failed build or load warns once with the compiler's message,
``EQUIVAR_REQUIRE_NATIVE=1`` makes it an error, and the compiler's version is part of the cache key."""

import os
import stat
import warnings

import pytest

from equivar.nn import _edge_harmonics as _sh_native
from equivar.nn import _symmetric_contraction_native as _sc_native
from equivar.tp import NativeKernelWarning, _cg_native, _s2grid_native
from equivar.tp import _native_build as nb

GOOD = "int equivar_probe(int x) { return x + 1; }\n"
BROKEN = "int equivar_probe(int x) { return x + ; }\n"
FLAGS = ["-O1", "-fPIC", "-shared"]

needs_cc = pytest.mark.skipif(not nb.compiler_present(), reason="no C compiler on this machine")


def _declare(lib):
    lib.equivar_probe.restype = None


def _declare_missing_symbol(lib):
    lib.equivar_not_there.restype = None


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("EQUIVAR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EQUIVAR_REQUIRE_NATIVE", raising=False)
    monkeypatch.delenv("EQUIVAR_NATIVE", raising=False)
    return monkeypatch


def _get_recording(lib):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = lib.get()
    return out, [w for w in rec if issubclass(w.category, NativeKernelWarning)]


@needs_cc
def test_shipped_kernels_build_and_load():
    """With a compiler present the shipped C sources compile and load (a broken kernel source fails here)."""
    if os.environ.get("EQUIVAR_NATIVE") == "0":
        pytest.skip("native kernels disabled by EQUIVAR_NATIVE=0")
    assert _cg_native.library() is not None, _cg_native.native_error()
    assert _s2grid_native.library() is not None, _s2grid_native.native_error()
    assert _sc_native.library() is not None, _sc_native.native_error()
    assert _cg_native.native_error() is None and _s2grid_native.native_error() is None
    assert _sh_native.library() is not None, _sh_native.native_error()
    assert _sc_native.native_error() is None and _sh_native.native_error() is None


@needs_cc
def test_good_source_loads_and_is_cached(env, tmp_path):
    lib = nb.NativeLibrary(GOOD, FLAGS, "probe", _declare)
    out, w = _get_recording(lib)
    assert out is not None and not w and lib.error is None
    assert out.equivar_probe is not None
    built = os.listdir(tmp_path / "cache")
    assert len(built) == 1 and built[0].startswith("probe_") and built[0].endswith(".so")


@needs_cc
def test_broken_source_warns_once_with_the_compiler_message(env):
    lib = nb.NativeLibrary(BROKEN, FLAGS, "broken", _declare)
    out, w = _get_recording(lib)
    assert out is None
    assert len(w) == 1
    msg = str(w[0].message)
    assert "'broken'" in msg and "error" in msg.lower() and "k.c" in msg  # the compiler's diagnostic
    again, w2 = _get_recording(lib)
    assert again is None and not w2  # once
    assert "error" in lib.error.lower()


@needs_cc
def test_missing_symbol_at_load_warns(env):
    lib = nb.NativeLibrary(GOOD, FLAGS, "nosym", _declare_missing_symbol)
    out, w = _get_recording(lib)
    assert out is None and len(w) == 1 and "equivar_not_there" in str(w[0].message)


def test_failing_compiler_warns(env):
    env.setenv("CC", "false")
    if not nb.compiler_present():
        pytest.skip("no `false` executable")
    lib = nb.NativeLibrary(GOOD, FLAGS, "ccfalse", _declare)
    out, w = _get_recording(lib)
    assert out is None and len(w) == 1 and "false failed (exit 1)" in str(w[0].message)


@needs_cc
@pytest.mark.parametrize("cc", ["broken-source", "false"])
def test_require_native_makes_it_an_error_every_time(env, cc):
    env.setenv("EQUIVAR_REQUIRE_NATIVE", "1")
    src = BROKEN
    if cc == "false":
        env.setenv("CC", "false")
        src = GOOD
    lib = nb.NativeLibrary(src, FLAGS, "required", _declare)
    for _ in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an error, not a warning
            with pytest.raises(
                RuntimeError, match=r"native kernel 'required' unavailable and EQUIVAR_REQUIRE_NATIVE=1"
            ):
                lib.get()


def test_no_compiler_is_quiet_unless_required(env):
    env.setenv("CC", "/nonexistent/equivar-cc")
    lib = nb.NativeLibrary(GOOD, FLAGS, "nocc", _declare)
    out, w = _get_recording(lib)
    assert out is None and not w and "no C compiler found" in lib.error
    env.setenv("EQUIVAR_REQUIRE_NATIVE", "1")
    with pytest.raises(RuntimeError, match="no C compiler found"):
        lib.get()


def test_explicitly_disabled_is_not_an_error(env):
    env.setenv("EQUIVAR_NATIVE", "0")
    env.setenv("EQUIVAR_REQUIRE_NATIVE", "1")
    lib = nb.NativeLibrary(BROKEN, FLAGS, "off", _declare)
    out, w = _get_recording(lib)
    assert out is None and not w and lib.error == "disabled by EQUIVAR_NATIVE=0"


@needs_cc
def test_compiler_version_enters_the_cache_key(env, tmp_path):
    """Two compilers that differ only in their ``--version`` output build into two cache files."""
    real = nb.compiler()
    paths = []
    for version in ("1.0", "2.0"):
        fake = tmp_path / f"fakecc-{version}"
        fake.write_text(
            "#!/bin/sh\n"
            f'if [ "$1" = "--version" ]; then echo "fakecc {version}"; exit 0; fi\n'
            f'exec {" ".join(real)} "$@"\n'
        )
        fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
        # same command string for both: only the version output differs
        link = tmp_path / "cc-link"
        if link.exists():
            link.unlink()
        link.symlink_to(fake)
        env.setenv("CC", str(link))
        nb.compiler_version.cache_clear()
        paths.append(nb.compile_shared_library(GOOD, FLAGS, "ver"))
    nb.compiler_version.cache_clear()
    assert paths[0] != paths[1] and all(os.path.exists(p) for p in paths)
