"""The layer order of ``equivar`` holds: a lower layer never imports a higher one.

The order is defined once, in ``LAYERS`` below, and the package docstring of
``equivar`` must list the same order (so the documented layering stays
true). Every import in ``src/equivar`` is checked (module level AND inside
functions, ``import x``, ``from x import y``, relative imports and
``importlib.import_module("equivar...")`` with a literal name), from the
source text (AST), so imports that only run on some code path are checked
too. A module may import modules of its own layer and of every layer before
it. A new top-level subpackage or module fails the test until it is placed
in ``LAYERS``.

The second half shows that the checker catches violations, on a small
synthetic package written to ``tmp_path``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import equivar

SRC = Path(equivar.__file__).parent

# Lowest first. Each entry is one layer: the top-level subpackages / modules of equivar in it.
LAYERS: list[tuple[str, ...]] = [
    # plumbing with no equivar imports (but _paths): paths, devices, the allocator, config value checks, matplotlib
    ("_paths", "_device", "_allocator", "_threads", "_typecheck", "_plotting"),
    ("o3",),
    ("planar",),
    ("tp",),
    ("nn",),
    ("diffusion",),  # noise schedules, zero-CoM Gaussian and categorical diffusion, samplers (model-free)
    ("symmetry",),  # model-agnostic; below models so that FA-GNN (models/fagnn) wraps FrameAveraging
    ("models",),
    ("data",),
    ("tasks",),
    ("train",),
    ("calculators",),  # the ASE calculator: a trained model (train's checkpoints) behind ASE
    ("testing",),
    ("bench",),
    ("cli", "__main__"),
]


# --- the checker -------------------------------------------------------------------
def _module_name(path: Path, root: Path, package: str) -> tuple[str, bool]:
    rel = path.relative_to(root).with_suffix("").parts
    if rel[-1] == "__init__":
        return ".".join((package,) + rel[:-1]), True
    return ".".join((package,) + rel), False


def imports_of(path: Path, root: Path, package: str) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``path`` (any depth, any scope).

    ``from a import b`` yields both ``a`` and ``a.b`` (``b`` may be a submodule);
    ``importlib.import_module("a.b")`` with a literal string yields ``a.b``.
    """
    name, is_pkg = _module_name(path, root, package)
    pkg = name.split(".") if is_pkg else name.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level > len(pkg):
                    raise ValueError(f"{path}:{node.lineno}: relative import beyond the top-level package")
                base = ".".join(pkg[: len(pkg) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names if a.name != "*"]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            f = node.func
            fname = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if fname in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                out.append((node.lineno, node.args[0].value))
    return out


def _top(mod: str, package: str) -> str | None:
    parts = mod.split(".")
    if parts[0] != package or len(parts) < 2:
        return None
    return parts[1]


def layer_violations(root: Path, package: str, layers: list[tuple[str, ...]]) -> list[str]:
    """Every import in the package at ``root`` that goes from a lower layer to a higher one.

    Also reports top-level modules or subpackages missing from ``layers`` (they
    must be placed). The package's own ``__init__.py`` (the facade) is exempt.
    Returns readable lines ``file:line: <layer> imports <module> (layer <higher>)``.
    """
    rank = {name: i for i, layer in enumerate(layers) for name in layer}
    problems = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts == ("__init__.py",):
            continue
        own = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        if own not in rank:
            problems.append(f"{rel}: '{own}' is not in the layer table; place it in LAYERS")
            continue
        for line, mod in imports_of(path, root, package):
            top = _top(mod, package)
            if top is None or top == own:
                continue
            if top not in rank:
                if (root / top).is_dir() or (root / f"{top}.py").is_file():
                    problems.append(f"{rel}:{line}: imports {mod}, and '{top}' is not in the layer table")
                continue  # a name re-exported by the package facade (equivar.__version__), not a module
            if rank[top] > rank[own]:
                problems.append(f"{rel}:{line}: {own} imports {mod} ({top} is a higher layer)")
    return sorted(set(problems))


def private_imports(root: Path, package: str, shared: set[str]) -> list[str]:
    """Imports of another top-level package's private module or name (``equivar.o3._wigner``, ``_coerce``).

    A helper used across packages gets a public name in its package instead. The
    top-level plumbing modules in ``shared`` (``_paths``, ...) are meant to be imported
    from anywhere and are allowed.
    """
    problems = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        own = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        for line, mod in imports_of(path, root, package):
            parts = mod.split(".")
            if parts[0] != package or len(parts) < 2 or parts[1] in (own, *shared):
                continue
            first = next((i for i, p in enumerate(parts) if i and p.startswith("_") and not p.startswith("__")), None)
            if first is not None:
                problems.append(f"{rel}:{line}: imports {'.'.join(parts[: first + 1])}, private to {parts[1]}")
    return sorted(set(problems))


def module_cycles(root: Path, package: str) -> set[frozenset[str]]:
    """Import cycles between modules (not counting imports of a package's ``__init__`` facade)."""
    mods = {}
    for path in root.rglob("*.py"):
        name, is_pkg = _module_name(path, root, package)
        mods[name] = (path, is_pkg)
    edges = {m: set() for m in mods}
    for m, (path, _) in mods.items():
        for _, t in imports_of(path, root, package):
            if t in mods and t != m and not mods[t][1]:
                edges[m].add(t)
    # Tarjan's strongly connected components
    index, low, stack, on, sccs = {}, {}, [], set(), set()

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.add(frozenset(comp))

    for v in sorted(mods):
        if v not in index:
            visit(v)
    return sccs


# --- the real package ------------------------------------------------------------------
def test_no_lower_layer_imports_a_higher_one():
    problems = layer_violations(SRC, "equivar", LAYERS)
    assert not problems, "layering violated:\n" + "\n".join(problems)


def test_no_private_names_across_packages():
    problems = private_imports(SRC, "equivar", set(LAYERS[0]))
    assert not problems, "give these helpers public names in their package:\n" + "\n".join(problems)


def test_no_import_cycles_between_modules():
    """Not even through imports inside functions (train/_config <-> _models and o3/_irreps <-> _wigner were)."""
    cycles = module_cycles(SRC, "equivar")
    assert not cycles, "import cycles between modules: " + "; ".join(" <-> ".join(sorted(c)) for c in cycles)


def test_o3_modules_import_in_one_direction():
    """The former function-level cycle ``_irreps <-> _wigner <-> _spherical_harmonics`` stays gone."""
    o3 = SRC / "o3"
    deps = {
        p.stem: {m.split(".")[2] for _, m in imports_of(p, SRC, "equivar") if m.startswith("equivar.o3._")}
        for p in o3.glob("_*.py")
    }
    assert "_irreps" not in deps["_wigner"] and "_spherical_harmonics" not in deps["_wigner"]
    assert "_irreps" not in deps["_sh_kernel"]
    assert not any(c & {"equivar.o3._irreps", "equivar.o3._wigner"} for c in module_cycles(SRC, "equivar"))


def test_package_docstring_states_the_layer_order():
    """The order in ``equivar.__doc__`` (one ``name`` per layer, first mention) is LAYERS' order."""
    doc = equivar.__doc__
    public = [name for layer in LAYERS for name in layer if not name.startswith("_")]
    positions = {}
    for name in public:
        m = re.search(rf"``{name}``", doc)
        if m is not None:
            positions[name] = m.start()
    present = [n for n in public if (SRC / n).is_dir() or (SRC / f"{n}.py").is_file()]
    missing = [n for n in present if n not in positions]
    assert not missing, f"the equivar package docstring does not mention {missing}"
    documented = sorted(positions, key=positions.get)
    assert documented == [n for n in public if n in positions], f"docstring order {documented} differs from LAYERS"


# --- the checker catches violations ----------------------------------------------------------
def _write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


@pytest.fixture
def toy(tmp_path):
    """A package ``toy`` with layers low < mid < high and only allowed imports."""
    root = tmp_path / "toy"
    _write(root, "__init__.py", "from . import high\n")
    _write(root, "_util.py", "X = 1\n")
    _write(root, "low/__init__.py", "from ._a import f\n")
    _write(root, "low/_a.py", "from .._util import X\n\ndef f():\n    return X\n")
    _write(root, "mid/__init__.py", "from ..low import f\nimport toy.low\n")
    _write(root, "high/__init__.py", "def g():\n    from toy.mid import f\n    return f\n")
    return root, [("_util",), ("low",), ("mid",), ("high",)]


def test_checker_passes_a_clean_package(toy):
    root, layers = toy
    assert layer_violations(root, "toy", layers) == []
    assert module_cycles(root, "toy") == set()


@pytest.mark.parametrize(
    "rel,text,expected",
    [
        ("low/_b.py", "from ..mid import f\n", "low/_b.py:1: low imports toy.mid"),  # relative, module level
        ("low/_b.py", "def h():\n    import toy.high\n", "low/_b.py:2: low imports toy.high"),  # inside a function
        ("low/_b.py", "class C:\n    def m(self):\n        from .. import high\n", "low/_b.py:3: low imports toy.high"),
        ("low/_b.py", "import importlib\nM = importlib.import_module('toy.mid')\n", "low/_b.py:2: low imports toy.mid"),
        ("_util.py", "from .low import f\n", "_util.py:1: _util imports toy.low"),
        ("extra/__init__.py", "X = 2\n", "'extra' is not in the layer table"),
    ],
)
def test_checker_catches_a_lower_layer_importing_a_higher_one(toy, rel, text, expected):
    root, layers = toy
    _write(root, rel, text)
    problems = layer_violations(root, "toy", layers)
    assert any(expected in p for p in problems), problems


def test_checker_finds_a_private_import_across_packages(toy):
    root, layers = toy
    assert private_imports(root, "toy", {"_util"}) == []  # toy.low._a imports toy._util: shared plumbing
    _write(root, "high/_h.py", "def h():\n    from ..low._a import f\n")
    assert private_imports(root, "toy", {"_util"}) == ["high/_h.py:2: imports toy.low._a, private to low"]
    assert private_imports(root, "toy", set()) == [
        "high/_h.py:2: imports toy.low._a, private to low",
        "low/_a.py:1: imports toy._util, private to _util",
    ]


def test_checker_finds_a_function_level_cycle(toy):
    root, _ = toy
    _write(root, "low/_c.py", "def f():\n    from ._d import g\n")
    _write(root, "low/_d.py", "from ._c import f\n")
    assert module_cycles(root, "toy") == {frozenset({"toy.low._c", "toy.low._d"})}
