"""Apply the deliberate bugs ("mutants") of issue 11 one at a time to a copy of the tree and check a test fails.

    python scripts/check_mutants.py            # all mutants, their targeted tests
    python scripts/check_mutants.py --full     # each mutant against the whole suite (slow)
    python scripts/check_mutants.py -m rmse-no-sqrt -m drift-time-unit

Each mutant is a regular expression and its replacement, searched in every ``src/equivar/**/*.py`` file
(so it survives files moving in a refactor); a pattern that matches nowhere (or more often than the
mutant allows) is an error, not a pass. The copy lives in a temporary directory; the working tree is
never touched. Before the mutants, the same tests run on the unmodified copy and must pass.

Exit status: 0 when every mutant is caught, 1 when one survives, 2 on a setup error (pattern not found,
baseline failing). Not part of ``make test``: it runs the targeted tests once per mutant (minutes).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass
class Mutant:
    name: str
    what: str
    pattern: str
    replacement: str
    tests: list[str]
    env: dict = dataclasses.field(default_factory=dict)
    max_matches: int = 1  # matches allowed over the whole tree


VALUES = "tests/cli/test_cli_values.py"
NATIVE = "tests/tp/test_native_build.py"
POTENTIAL = "tests/models/test_potential.py"
MUTANTS = [
    Mutant(
        "eval-force-sign",
        "`equivar eval` writes the predicted forces with the wrong sign into the predictions file",
        r'\.to_ase\(\s*p\.get\("energy"\),\s*p\.get\("forces"\)',
        '.to_ase(p.get("energy"), None if p.get("forces") is None else -p.get("forces")',
        [VALUES],
    ),
    Mutant(
        "rmse-no-sqrt",
        "the force RMSE computed without the square root",
        r'(out\["rmse_f"\]\s*=\s*1e3\s*\*\s*\(s\["sq_f"\]\s*/\s*s\["n_f"\]\))\s*\*\*\s*0\.5',
        r"\1",
        [VALUES],
    ),
    Mutant(
        "drift-time-unit",
        "the NVE drift of `equivar md` off by a factor of 1000 (time unit fs taken as ps)",
        r"(t_ps\s*=\s*np\.arange\(len\(e\)\)\s*\*\s*dt)\s*\*\s*1e-3",
        r"\1",
        ["tests/cli/test_md_drift.py"],
    ),
    Mutant(
        "stats-e-plus-e0",
        "the training-set statistics use E + E0 instead of E - E0 (the model's shift)",
        r'(float\(g\["energy"\]\[0\]\))\s*-\s*e0\b',
        r"\1 + e0",
        [VALUES],
    ),
    Mutant(
        "scale-inverse",
        "the model's scale set to 1/rms instead of rms",
        r'("scale":\s*)(stats\["rms_forces"\])',
        r"\g<1>1.0 / \2",
        [VALUES],
    ),
    Mutant(
        "native-cg-no-compile",
        "the C source of the cg native kernels fails to compile (the library would fall back to PyTorch)",
        r'(C_SOURCE\s*=\s*r?""")',
        "\\1\n#error equivar mutant: this kernel does not compile\n",
        [NATIVE, "tests/tp/test_tp_cg_kernels.py"],
        env={"EQUIVAR_REQUIRE_NATIVE": "1"},  # as .ci/run sets it
    ),
    Mutant(
        "native-s2grid-no-compile",
        "the C source of the s2grid native kernels fails to compile",
        r"(C_SOURCE\s*=\s*\(\s*)",
        '\\1"#error equivar mutant: this kernel does not compile\\\\n" + ',
        [NATIVE, "tests/tp/test_s2grid.py"],
        env={"EQUIVAR_REQUIRE_NATIVE": "1"},
    ),
    Mutant(
        "activation-constant",
        "an activation normalization constant 0.3% off",
        r"\b1\.0\s*/\s*math\.sqrt\(m\)",
        "1.003 / math.sqrt(m)",
        ["tests/nn/test_activation_constants.py", "tests/nn/test_nn_gate.py"],
    ),
    # beyond issue 11's seven: a resumed run that loses its EMA must not pass for an uninterrupted one
    Mutant(
        "resume-forgets-ema",
        "--resume does not restore the EMA weights",
        r'self\.ema\.load_state_dict\(st\["ema"\]\)',
        "pass",
        ["tests/cli/test_kill_resume.py"],
    ),
    Mutant(
        "potential-stress-sign",
        "the Potential base returns stress with the wrong sign (stress = +virials / volume)",
        r"-virials / safe\[:, None, None\]",
        "virials / safe[:, None, None]",
        [POTENTIAL],
    ),
    Mutant(
        "potential-no-strain",
        "the strain trick leaves the positions unstrained (only the cell is strained)",
        r'pos = pos \+ torch\.einsum\("ni,nij->nj", pos, sym\[nbatch\]\)',
        "pos = pos",
        [POTENTIAL],
    ),
    Mutant(
        "potential-no-scale-shift",
        "the Potential base skips scale/shift of the node energies",
        r"interaction = self\.scale_shift\(node_inter, elem\)",
        "interaction = node_inter",
        [POTENTIAL],
    ),
    Mutant(
        "hparams-no-defaults",
        "recorded hparams omit the constructor defaults (a rebuild could differ when a default changes)",
        r"\n    bound\.apply_defaults\(\)\n",
        "\n",
        [POTENTIAL],
    ),
    Mutant(
        "stage-two-not-in-task",
        "stage two switches the learning rate but never the task's objective",
        r"what = self\.task\.enter_stage_two\(\)",
        "what = ''",
        ["tests/train/test_tasks.py"],
    ),
]


def _copy_tree(dst: str) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "*.so")
    for name in ("src", "tests"):
        shutil.copytree(os.path.join(ROOT, name), os.path.join(dst, name), ignore=ignore)
    for name in ("pyproject.toml",):
        shutil.copy(os.path.join(ROOT, name), dst)


def apply(mutant: Mutant, tree: str) -> list[str]:
    """Apply ``mutant`` under ``tree/src``; return the files changed. ``RuntimeError`` if it matches nowhere."""
    rx = re.compile(mutant.pattern)
    changed, total = [], 0
    for d, _, files in os.walk(os.path.join(tree, "src", "equivar")):
        for f in sorted(files):
            if not f.endswith(".py"):
                continue
            path = os.path.join(d, f)
            text = open(path, encoding="utf-8").read()
            new, n = rx.subn(mutant.replacement, text)
            if n:
                total += n
                changed.append(os.path.relpath(path, tree))
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(new)
    if total == 0:
        raise RuntimeError(f"mutant {mutant.name}: pattern {mutant.pattern!r} found in no file under src/equivar")
    if total > mutant.max_matches:
        raise RuntimeError(
            f"mutant {mutant.name}: pattern matched {total} times ({changed}), expected <= {mutant.max_matches}"
        )
    return changed


def run_tests(
    tree: str, tests: list[str], env_extra: dict, timeout: float, stop_first: bool = True
) -> tuple[int, str, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(tree, "src")
    env.setdefault("EQUIVAR_SHARED_DATA", os.path.abspath(os.path.join(ROOT, "..", "shared", "data")))
    env["EQUIVAR_CACHE"] = os.path.join(tree, ".cache")  # native kernels built from the copy's source
    env.update(env_extra)
    cmd = [sys.executable, "-m", "pytest", "-q", *(["-x"] if stop_first else []), "-rfE", "-p", "no:cacheprovider"]
    cmd += tests
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
        rc, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out = -1, f"timed out after {timeout:.0f} s\n{e.stdout or ''}"
    return rc, out, time.perf_counter() - t0


def _failures(out: str) -> list[str]:
    """The failing test ids of a pytest ``-rfE`` summary (or its last line when there is none)."""
    ids = [ln.split(" - ")[0].split(" ", 1)[1] for ln in out.splitlines() if ln.startswith(("FAILED ", "ERROR "))]
    return ids or ([out.strip().splitlines()[-1]] if out.strip() else ["?"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-m", "--mutant", action="append", help="only these mutants (by name)")
    p.add_argument("--full", action="store_true", help="run the whole test suite for each mutant")
    p.add_argument("--timeout", type=float, default=1200, help="seconds per test run")
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    p.add_argument("--all-failures", action="store_true", help="run every test (no -x) and list all that fail")
    args = p.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.mutant or m.name in args.mutant]
    if args.list or not mutants:
        for m in MUTANTS:
            print(f"{m.name:26s} {m.what}")
        return 0 if mutants else 2
    if args.full:
        for m in mutants:
            m.tests = ["tests"]
    base = tempfile.mkdtemp(prefix="equivar-mutants-")
    try:
        # baseline: the unmodified copy passes every test the mutants use, under each mutant's environment
        clean = os.path.join(base, "clean")
        _copy_tree(clean)
        groups: dict = {}
        for m in mutants:
            groups.setdefault(tuple(sorted(m.env.items())), set()).update(m.tests)
        for env, tests in groups.items():
            rc, out, dt = run_tests(clean, sorted(tests), dict(env), args.timeout)
            if rc != 0:
                print(f"baseline FAILS ({sorted(tests)}, env {dict(env)}), rc {rc}:\n{out[-3000:]}")
                return 2
            print(f"baseline passes: {' '.join(sorted(tests))} {dict(env) or ''} ({dt:.0f} s)")
        results = []
        for m in mutants:
            tree = os.path.join(base, m.name)
            _copy_tree(tree)
            try:
                files = apply(m, tree)
            except RuntimeError as e:
                print(f"ERROR {e}")
                return 2
            rc, out, dt = run_tests(tree, m.tests, m.env, args.timeout, stop_first=not args.all_failures)
            caught = rc != 0
            by = ", ".join(_failures(out)) if caught else "-"
            results.append((m, caught, by))
            print(f"{'CAUGHT  ' if caught else 'SURVIVED'} {m.name:26s} {', '.join(files)} ({dt:.0f} s) by {by}")
            shutil.rmtree(tree, ignore_errors=True)
        print("\n| mutant | what | caught | failing tests (the first only, unless --all-failures) |\n|---|---|---|---|")
        for m, caught, by in results:
            print(f"| {m.name} | {m.what} | {'yes' if caught else 'NO'} | {by} |")
        return 0 if all(c for _, c, _ in results) else 1
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
