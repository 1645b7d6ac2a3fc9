"""Readers: any ASE-readable file (extxyz first) and rMD17 ``.npz``.

Both return ``list[Configuration]`` in float64, eV / Å units, every frame
validated (finite values, matching shapes, no overlapping atoms).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from ._configuration import Configuration
from ._validation import MIN_DISTANCE, validate

#: 1 kcal/mol in eV (the factor NequIP uses).
KCAL_MOL_TO_EV = 0.0433641


@dataclasses.dataclass(frozen=True)
class DataKeys:
    """Where labels live in an ASE ``Atoms`` (``info`` for per-frame, ``arrays`` for per-atom).

    ``energy``, ``forces`` and ``stress`` are also looked up in the attached
    calculator's results when ASE moved them there (it does for the names
    ``energy``/``forces``/``stress`` in extxyz).
    """

    energy: str = "energy"
    forces: str = "forces"
    stress: str = "stress"
    virials: str = "virials"
    config_type: str = "config_type"
    weight: str = "config_weight"
    energy_weight: str = "config_energy_weight"
    forces_weight: str = "config_forces_weight"
    stress_weight: str = "config_stress_weight"


def frame_source(path: str, frame) -> str:
    """How messages name one frame of a file: ``"data.xyz, frame 3"`` (0-based, as ASE indexes frames)."""
    return f"{path}, frame {frame}"


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a directory, expected a file")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise ValueError(f"{path}: empty file (no configurations)")


def _lookup(atoms, key: str, per_atom: bool):
    store = atoms.arrays if per_atom else atoms.info
    if key in store:
        return store[key]
    calc = atoms.calc
    if calc is not None and key in getattr(calc, "results", {}):
        return calc.results[key]
    return None


def _as_3x3(value, name: str, source: str):
    v = np.asarray(value, dtype=np.float64).reshape(-1)
    if v.size == 6:
        from ase.stress import voigt_6_to_full_3x3_stress

        return voigt_6_to_full_3x3_stress(v)
    if v.size == 9:
        return v.reshape(3, 3)
    raise ValueError(f"{source}: {name} has {v.size} components, expected 6 (Voigt) or 9")


def atoms_to_configuration(
    atoms,
    source: str,
    keys: DataKeys = DataKeys(),
    require_energy: bool = True,
    require_forces: bool = True,
    min_distance: float = MIN_DISTANCE,
) -> Configuration:
    """Convert one ``ase.Atoms`` into a validated :class:`Configuration`.

    Raises
    ------
    ValueError
        missing required ``keys.energy`` / ``keys.forces`` (isolated atoms need
        no forces), non-finite values, wrong shapes, overlapping atoms.
    """
    energy = _lookup(atoms, keys.energy, per_atom=False)
    forces = _lookup(atoms, keys.forces, per_atom=True)
    stress = _lookup(atoms, keys.stress, per_atom=False)
    virials = _lookup(atoms, keys.virials, per_atom=False)
    config_type = str(atoms.info.get(keys.config_type, "Default"))
    n = len(atoms)
    isolated = config_type == "IsolatedAtom" or (n == 1 and not atoms.pbc.any())
    if energy is None and require_energy:
        raise ValueError(f"{source}: missing energy key {keys.energy!r} (info keys: {sorted(atoms.info)})")
    if forces is None and require_forces and not isolated:
        raise ValueError(f"{source}: missing forces key {keys.forces!r} (array keys: {sorted(atoms.arrays)})")
    if forces is None and isolated and energy is not None:
        forces = np.zeros((n, 3))

    def w(key):
        v = atoms.info.get(key, 1.0)
        try:
            return float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{source}: weight {key!r} is not a number: {v!r}") from None

    try:
        energy = None if energy is None else float(np.asarray(energy).reshape(()))
    except (TypeError, ValueError):
        raise ValueError(f"{source}: energy {keys.energy!r} is not a scalar: {energy!r}") from None
    config = Configuration(
        atomic_numbers=atoms.numbers,
        positions=atoms.positions,
        cell=atoms.cell.array,
        pbc=atoms.pbc,
        energy=energy,
        forces=None if forces is None else np.asarray(forces, dtype=np.float64),
        stress=None if stress is None else _as_3x3(stress, f"stress {keys.stress!r}", source),
        virials=None if virials is None else _as_3x3(virials, f"virials {keys.virials!r}", source),
        weight=w(keys.weight),
        energy_weight=w(keys.energy_weight),
        forces_weight=w(keys.forces_weight),
        stress_weight=w(keys.stress_weight),
        config_type=config_type,
        source=source,
    )
    return validate(config, min_distance)


def read_ase(
    path: str,
    keys: DataKeys = DataKeys(),
    index: str = ":",
    format: str | None = None,
    require_energy: bool = True,
    require_forces: bool = True,
    min_distance: float = MIN_DISTANCE,
) -> list[Configuration]:
    """Read every frame of an ASE-readable file (extxyz, traj, ...).

    Parameters
    ----------
    path : str
    keys : DataKeys
        Names of the label and weight keys.
    index : str
        ASE index string, ``":"`` for all frames.
    format : str, optional
        ASE format name; guessed from the file when ``None``.
    require_energy, require_forces : bool
        Whether a frame without the label is an error.
    min_distance : float
        Atoms closer than this (Å) are an error.

    Returns
    -------
    list[Configuration]
        ``source`` is ``"path, frame N"`` with the 0-based frame number N.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        empty file, unparsable file, or any per-frame problem (see
        :func:`atoms_to_configuration`); the message names file and frame.
    """
    import ase.io

    _check_file(path)
    try:
        frames = ase.io.read(path, index=index, format=format)
    except StopIteration:
        frames = []
    except Exception as e:  # ASE raises many types for unparsable input
        raise ValueError(f"{path}: could not read with ASE ({type(e).__name__}: {e})") from e
    if not isinstance(frames, list):
        frames = [frames]
    if not frames:
        raise ValueError(f"{path}: empty file (no configurations)")
    return [
        atoms_to_configuration(a, frame_source(path, i), keys, require_energy, require_forces, min_distance)
        for i, a in enumerate(frames)
    ]


def read_rmd17(
    path: str, indices=None, config_type: str = "Default", min_distance: float = MIN_DISTANCE
) -> list[Configuration]:
    """Read a revised-MD17 ``.npz`` file, converting kcal/mol to eV.

    Keys used: ``nuclear_charges`` [N], ``coords`` [F, N, 3] Å, ``energies``
    [F] kcal/mol, ``forces`` [F, N, 3] kcal/mol/Å; energies and forces are
    multiplied by :data:`KCAL_MOL_TO_EV`.

    Parameters
    ----------
    indices : sequence of int, optional
        Frames to keep (default all).

    Raises
    ------
    FileNotFoundError, ValueError
        missing file, missing key, empty file, shape mismatch, non-finite values.
    """
    _check_file(path)
    try:
        npz = np.load(path)
    except Exception as e:
        raise ValueError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from e
    with npz:
        for key in ("nuclear_charges", "coords", "energies", "forces"):
            if key not in npz.files:
                raise ValueError(f"{path}: missing rMD17 key {key!r} (keys: {sorted(npz.files)})")
        z = np.asarray(npz["nuclear_charges"], dtype=np.int64)
        coords = np.asarray(npz["coords"], dtype=np.float64)
        energies = np.asarray(npz["energies"], dtype=np.float64).reshape(-1) * KCAL_MOL_TO_EV
        forces = np.asarray(npz["forces"], dtype=np.float64) * KCAL_MOL_TO_EV
    if coords.ndim != 3 or coords.shape[0] == 0:
        raise ValueError(f"{path}: empty file or bad 'coords' shape {coords.shape} (expected [frames, atoms, 3])")
    if (
        not (coords.shape[0] == energies.shape[0] == forces.shape[0])
        or coords.shape[1:] != (len(z), 3)
        or forces.shape != coords.shape
    ):
        raise ValueError(
            f"{path}: inconsistent shapes coords {coords.shape}, energies {energies.shape}, forces {forces.shape}, nuclear_charges {z.shape}"
        )
    frames = range(coords.shape[0]) if indices is None else [int(i) for i in indices]
    return [
        validate(
            Configuration(
                z,
                coords[i],
                energy=energies[i],
                forces=forces[i],
                config_type=config_type,
                source=frame_source(path, i),
            ),
            min_distance,
        )
        for i in frames
    ]


def read_dataset(path: str, format: str | None = None, keys: DataKeys = DataKeys(), **kwargs) -> list[Configuration]:
    """Read ``path`` with :func:`read_rmd17` (``format="rmd17"`` or a ``.npz`` file) or :func:`read_ase`.

    Extra keyword arguments go to the chosen reader. Raises as they do.
    """
    if format == "rmd17" or (format is None and str(path).endswith(".npz")):
        kwargs.pop("require_energy", None)
        kwargs.pop("require_forces", None)
        kwargs.pop("index", None)
        return read_rmd17(path, **kwargs)
    return read_ase(path, keys=keys, format=format, **kwargs)
