"""Isolated-atom reference energies (E0s): from reference configurations, a dict, or least squares."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from ._configuration import Configuration


def split_isolated_atoms(configs: Sequence[Configuration]) -> tuple[list[Configuration], list[Configuration]]:
    """Return ``(isolated, rest)``; isolated-atom configurations are E0 references, not training data."""
    iso = [c for c in configs if c.is_isolated_atom]
    rest = [c for c in configs if not c.is_isolated_atom]
    return iso, rest


def e0s_from_isolated_atoms(configs: Sequence[Configuration]) -> dict[int, float]:
    """E0 per element from isolated-atom configurations (``config_type == "IsolatedAtom"`` or single non-periodic atoms).

    Raises
    ------
    ValueError
        an isolated-atom configuration has more than one atom or no energy.
    """
    out: dict[int, float] = {}
    for c in configs:
        if not c.is_isolated_atom:
            continue
        if c.num_atoms != 1:
            raise ValueError(f"{c.source}: IsolatedAtom configuration has {c.num_atoms} atoms, expected 1")
        if c.energy is None:
            raise ValueError(f"{c.source}: IsolatedAtom configuration has no energy")
        out[int(c.atomic_numbers[0])] = float(c.energy)
    return out


def fit_e0s_least_squares(
    configs: Sequence[Configuration], atomic_numbers: Sequence[int], fixed: Mapping[int, float] | None = None
) -> dict[int, float]:
    """Least-squares E0s: minimise ``sum_c (E_c - sum_z n_cz E0_z)^2`` over configurations with energies.

    With a single composition (rMD17) the system is rank-deficient and the
    minimum-norm solution is returned (the same as MACE's ``average`` E0s),
    with a ``UserWarning`` that says so and gives the values: the E0s are
    then not isolated-atom energies.

    Parameters
    ----------
    configs : configurations with ``energy`` (others are skipped)
    atomic_numbers : elements to fit, in order
    fixed : optional ``{Z: eV}`` of known E0s (e.g. isolated-atom energies);
        they are kept as given and only the other elements are fitted

    Returns
    -------
    dict[int, float]
        eV per element.

    Raises
    ------
    ValueError
        no configuration has an energy.
    """
    fixed = {int(z): float(e) for z, e in (fixed or {}).items()}
    zs = [int(z) for z in atomic_numbers]
    free = [z for z in zs if z not in fixed]
    index = {z: k for k, z in enumerate(free)}
    rows, rhs = [], []
    for c in configs:
        if c.energy is None:
            continue
        counts = np.zeros(len(free))
        known = 0.0
        for z in c.atomic_numbers:
            z = int(z)
            if z in fixed:
                known += fixed[z]
            else:
                counts[index[z]] += 1
        rows.append(counts)
        rhs.append(c.energy - known)
    if free and not rows:
        raise ValueError("cannot fit E0s by least squares: no configuration has an energy")
    out = dict(fixed)
    if free:
        A = np.array(rows)
        sol, _, rank, _ = np.linalg.lstsq(A, np.array(rhs), rcond=None)
        out.update({z: float(e) for z, e in zip(free, sol)})
        if rank < len(free):
            _warn_underdetermined(A, free, sol, rank)
    return {z: out[z] for z in zs}


def _warn_underdetermined(counts: np.ndarray, free: Sequence[int], sol: np.ndarray, rank: int) -> None:
    """Say that least squares could not separate the E0s (one composition, as in rMD17) and what it did."""
    from ase.data import chemical_symbols

    n_comp = len({tuple(r) for r in counts.round(6)})
    values = ", ".join(f"{chemical_symbols[z]} {e:.4g}" for z, e in zip(free, sol))
    warnings.warn(
        f"E0s by least squares: the training energies have {n_comp} composition(s) and determine only {rank} "
        f"combination(s) of the {len(free)} E0s of {[chemical_symbols[z] for z in free]}; took the minimum-norm "
        f"solution ({values} eV), which reproduces the energy of each training composition but is not an "
        "isolated-atom energy (an isolated atom or another composition gets a meaningless energy). For physical "
        "E0s give data.e0s as a mapping (e.g. {H: -13.6}) or isolated-atom configurations",
        stacklevel=3,
    )


E0Spec = str | Mapping

#: E0 specifications given by name (see :func:`resolve_e0s`).
E0_SPECS = ("auto", "isolated", "least_squares", "average", "zero")


def check_e0s_spec(spec: E0Spec, name: str = "e0s") -> str | dict[int, float]:
    """Check an E0 specification; a mapping comes back as ``{Z: eV}``.

    ``name`` is how the message calls the setting (``data.e0s`` in a config).

    Raises
    ------
    ValueError
        unknown spec name, unknown element, or an energy that is not a number;
        the message names the key (``data.e0s.H``) and the value.
    """
    from ase.data import atomic_numbers as symbol_to_z
    from ase.data import chemical_symbols

    if isinstance(spec, str):
        if spec not in E0_SPECS:
            import difflib

            close = difflib.get_close_matches(spec, E0_SPECS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(
                f"{name}: unknown E0s spec {spec!r}; {hint}use 'auto', 'isolated', 'least_squares', "
                "'zero' or a mapping element -> eV such as {H: -13.6}"
            )
        return spec
    if not isinstance(spec, Mapping):
        raise ValueError(
            f"{name}: expected 'auto', 'isolated', 'least_squares', 'zero' or a mapping element -> eV, got {spec!r}"
        )
    e0s: dict[int, float] = {}
    for k, v in spec.items():
        key = f"{name}.{k}"
        if isinstance(k, bool):
            z = None
        elif isinstance(k, int) or (isinstance(k, str) and k.strip().isdigit()):
            z = int(k)
            z = z if 1 <= z < len(chemical_symbols) else None
        else:
            z = symbol_to_z.get(str(k).strip())
            z = z if z else None
        if z is None:
            raise ValueError(f"{name}: unknown element {k!r} (use a symbol such as 'H' or an atomic number)")
        if isinstance(v, bool):
            raise ValueError(f"{key}: expected a number (eV), got {v!r}")
        try:
            e = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{key}: expected a number (eV), got {v!r}") from None
        if not np.isfinite(e):
            raise ValueError(f"{key}: expected a finite number (eV), got {v!r}")
        e0s[z] = e
    return e0s


def resolve_e0s(
    spec: E0Spec, train: Sequence[Configuration], isolated: Sequence[Configuration], atomic_numbers: Sequence[int]
) -> dict[int, float]:
    """Turn an E0 specification into ``{Z: E0 in eV}`` covering ``atomic_numbers``.

    Parameters
    ----------
    spec : ``"isolated"``, ``"least_squares"`` (alias ``"average"``),
        ``"auto"`` (isolated-atom energies where there are any; the
        elements without one fitted by least squares with those held fixed,
        with a warning), ``"zero"``, or a mapping from Z or symbol to eV.
    train : training configurations (for least squares)
    isolated : isolated-atom configurations (for ``"isolated"``)
    atomic_numbers : elements the model covers

    Raises
    ------
    ValueError
        unknown spec, or an element without a reference energy.
    """
    from ase.data import chemical_symbols

    zs = [int(z) for z in atomic_numbers]
    spec = check_e0s_spec(spec)
    if isinstance(spec, Mapping):
        e0s = dict(spec)
        source = "the given E0s"
    elif spec == "auto":
        e0s = e0s_from_isolated_atoms(isolated)
        if all(z in e0s for z in zs):
            return {z: e0s[z] for z in zs}
        known = {z: e0s[z] for z in zs if z in e0s}
        if known:
            missing = [chemical_symbols[z] for z in zs if z not in e0s]
            warnings.warn(
                f"E0s 'auto': isolated-atom energies kept for {[chemical_symbols[z] for z in known]}; "
                f"no isolated atom for {missing}, fitted by least squares",
                stacklevel=2,
            )
        return fit_e0s_least_squares(train, zs, fixed=known)
    elif spec == "isolated":
        e0s = e0s_from_isolated_atoms(isolated)
        source = "the isolated-atom configurations"
    elif spec in ("least_squares", "average"):
        return fit_e0s_least_squares(train, zs)
    elif spec == "zero":
        return {z: 0.0 for z in zs}
    else:
        raise ValueError(f"unknown E0s spec {spec!r}: use 'auto', 'isolated', 'least_squares', 'zero' or a mapping")
    missing = [chemical_symbols[z] for z in zs if z not in e0s]
    if missing:
        raise ValueError(f"no E0 for element(s) {missing} in {source}")
    return {z: e0s[z] for z in zs}
