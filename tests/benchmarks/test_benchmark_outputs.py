"""Benchmarks refuse to replace an existing results file before measuring anything (one line naming the flag and the
path, the file left as it was) unless ``--overwrite``; with it they go on to their next check."""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# script, its arguments ({out}: the existing file; {x}: a path that does not exist), the output flag, and the error
# the script stops at next when --overwrite lets the existing file through
CASES = [
    ("egnn_nbody", ["--json", "{out}"], "--json", "not a checkout of github.com/vgsatorras/egnn"),
    ("mlip_budget", ["--json", "{out}", "--train", "{x}"], "--json", "nope"),
    ("mlip_md_cells", ["--json", "{out}", "--mace-python", "{x}"], "--json", "nope"),
    ("ponita_grid_average", ["{x}", "--json", "{out}"], "--json", "nope"),
    ("ponita_official", ["--original", "{x}", "--json", "{out}"], "--json", "No module named 'ponita'"),
    ("fernn_translating_mnist", ["--fernn", "{x}", "--grnn", "{x}", "-o", "{out}"], "-o", "nope"),
    ("world_model_mnist", ["--flow", "{x}", "--twin", "{x}", "-o", "{out}"], "-o", "nope"),
    ("vit_shift_consistency", ["--dataset", "mnist", "--train-limit", "-1", "-o", "{out}"], "-o", None),
]


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", os.path.join(ROOT, "benchmarks", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name, argv, flag, after", CASES, ids=[c[0] for c in CASES])
def test_existing_results_file_is_refused_before_measuring(name, argv, flag, after, tmp_path):
    mod = _load(name)
    out = tmp_path / "results.json"
    out.write_text("earlier results")
    args = [a.format(out=out, x=tmp_path / "nope") for a in argv]
    with pytest.raises(SystemExit) as e:
        mod.main(args)
    assert str(e.value) == f"error: {flag} {out}: already exists; pass --overwrite to replace it"
    assert out.read_text() == "earlier results"
    if after is not None:  # --overwrite: past the check, the script stops at its next one (nothing measured)
        with pytest.raises((SystemExit, OSError, ValueError, ImportError)) as e:
            mod.main([*args, "--overwrite"])
        assert "already exists" not in str(e.value) and after in str(e.value), str(e.value)
        assert out.read_text() == "earlier results"
