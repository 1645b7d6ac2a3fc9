"""The data of the ``potential`` task: configurations read from the config's ``data:`` section, split, with E0s."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ... import data as D


@dataclasses.dataclass
class Datasets:
    """Configurations of a run, split and checked, with the E0s and element list."""

    train: list
    valid: list
    tests: dict
    isolated: list
    atomic_numbers: list
    e0s: dict


def resolve_path(path: str) -> str:
    """``embedded:NAME`` -> the shipped dataset's path; other paths unchanged."""
    if path.startswith("embedded:"):
        return D.embedded_path(path.split(":", 1)[1])
    return path


def _read(path: str, cfg) -> list:
    d = cfg.data
    keys = D.DataKeys(
        energy=d.energy_key,
        forces=d.forces_key,
        stress=d.stress_key,
        virials=d.virials_key,
        config_type=d.config_type_key,
        weight=d.weight_key,
    )
    return D.read_dataset(resolve_path(path), format=d.format, keys=keys, min_distance=d.min_distance)


def load_datasets(cfg, log: Callable[[str], None] = print) -> Datasets:
    """Read and split the data of ``cfg.data``.

    Raises
    ------
    FileNotFoundError, ValueError
        missing or bad files (messages name file, frame and key), test
        sets with elements absent from the training data.
    """
    d = cfg.data
    configs = _read(d.train_file, cfg)
    isolated, configs = D.split_isolated_atoms(configs)
    if d.e0s_file:
        isolated += D.split_isolated_atoms(_read(d.e0s_file, cfg))[0]
    if not configs:
        raise ValueError(f"{d.train_file}: no training configurations (only isolated atoms)")
    split_seed = cfg.seed if d.split_seed is None else d.split_seed
    if d.valid_file:
        train = configs[: d.max_train] if d.max_train else configs
        valid = D.split_isolated_atoms(_read(d.valid_file, cfg))[1]
    else:
        train, valid = D.random_split(configs, d.valid_fraction, split_seed, d.max_train)
    zs = sorted({int(z) for c in train + valid + isolated for z in c.atomic_numbers})
    tests = {}
    for name, path in (d.test_files or {}).items():
        tests[str(name)] = D.split_isolated_atoms(_read(path, cfg))[1]
        D.check_elements(tests[str(name)], zs)
    e0s = D.resolve_e0s(d.e0s, train, isolated, zs)
    log(
        f"data: {len(train)} train, {len(valid)} valid"
        + "".join(f", {len(v)} {k}" for k, v in tests.items())
        + f"; elements {zs}; E0s "
        + ", ".join(f"{z}: {e:.4f}" for z, e in e0s.items())
        + " eV"
    )
    return Datasets(train, valid, tests, isolated, zs, e0s)
