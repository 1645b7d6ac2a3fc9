"""Train small mace-torch models a few steps, save them as ``.model`` files, record mace-torch's own outputs.

Run with an interpreter that has mace-torch (0.3.16 was used for the committed fixture):

    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 /tmp/macevenv/bin/python scripts/make_mace_fixture.py \
        --out tests/data/reference --set fixture --xz

``--set fixture`` writes the two small models committed under ``tests/data/reference/``
(``mace_ethanol.model.xz``: ScaleShiftMACE on rMD17 ethanol; ``mace_cuau.model.xz``: plain MACE on an
EMT Cu/Au fcc alloy, periodic), ``--set live`` one model with the rMD17 recipe's blocks (max_ell 3,
correlation 3, 8 channels; used by the test that runs mace-torch in a subprocess; with two smaller
variants: ``mace_live_lastonly`` (plain MACE, 3 layers, ``use_last_readout_only``) and
``mace_live_density`` (``RealAgnosticDensityInteractionBlock``, which equivar refuses)), ``--set bench`` the
same with 32x0e+32x1o (``mace_bench.model``, benchmarks/mace_import_md.py). Each ``<name>.model`` gets a
``<name>_reference.npz`` beside it: for every recorded frame ``f`` (``frame{f}_*``), the atomic
numbers, positions (Å), cell (Å), pbc, and mace-torch's float64 energy (eV), forces (eV/Å) and,
for periodic frames, stress (eV/Å^3, ASE's Voigt order) from ``MACECalculator(default_dtype="float64")``.

Data: rMD17 ethanol frames from ``../shared/data/rmd17`` (``--data``); Cu/Au frames are
generated here (ASE's EMT, seeded). Everything is seeded (``--seed``).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # mace-torch's own torch.load of .model files

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KCAL = 0.0433641  # eV per kcal/mol


def ethanol_frames(data_dir: str, split: str, idx) -> list:
    from ase import Atoms

    npz = np.load(os.path.join(data_dir, f"rmd17_ethanol_{split}_01.npz"))
    out = []
    for i in idx:
        a = Atoms(numbers=npz["nuclear_charges"], positions=npz["coords"][i])
        a.info["energy"] = float(npz["energies"][i] * KCAL)
        a.arrays["ref_forces"] = npz["forces"][i] * KCAL
        out.append(a)
    return out


def ethanol_in_a_box(atoms, length: float = 6.5):
    """One ethanol molecule in a periodic cube (it meets its own images within r_max)."""
    a = atoms.copy()
    a.set_cell(np.diag([length, length * 1.05, length * 0.95]) + 0.3 * np.eye(3)[[1, 2, 0]])
    a.center()
    a.pbc = True
    return a


def lone_atom(z: int):
    """One atom, no neighbour: mace-torch gives it E0 + shift + the first layer's residual readout."""
    from ase import Atoms

    return Atoms(numbers=[z], positions=[[0.0, 0.0, 0.0]])


def cuau_frames(n: int, seed: int) -> list:
    from ase.build import bulk
    from ase.calculators.emt import EMT

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 2, 1))
        z = a.get_atomic_numbers()
        z[rng.random(len(a)) < 0.4] = 79
        a.set_atomic_numbers(z)
        strain = np.eye(3) + 0.03 * rng.standard_normal((3, 3))
        a.set_cell(a.cell.array @ strain, scale_atoms=True)
        a.positions += 0.08 * rng.standard_normal(a.positions.shape)
        a.calc = EMT()
        a.info["energy"] = float(a.get_potential_energy())
        a.arrays["ref_forces"] = a.get_forces().copy()
        a.calc = None
        out.append(a)
    return out


def emt_isolated(z: int) -> float:
    from ase import Atoms
    from ase.calculators.emt import EMT

    a = Atoms(numbers=[z], positions=[[0.0, 0.0, 0.0]])
    a.calc = EMT()
    return float(a.get_potential_energy())


def to_configs(frames):
    from mace import data

    return [
        data.Configuration(
            atomic_numbers=a.get_atomic_numbers(),
            positions=a.positions,
            properties={"energy": a.info["energy"], "forces": a.arrays["ref_forces"]},
            property_weights={"energy": 1.0, "forces": 1.0},
            cell=np.array(a.cell.array) if a.pbc.any() else np.zeros((3, 3)),
            pbc=tuple(bool(p) for p in a.pbc),
        )
        for a in frames
    ]


def build(cls: str, z: list, e0s, avg, hp: dict, scale=1.0, shift=0.0):
    from e3nn import o3
    from mace import modules

    inter = modules.interaction_classes[hp.get("interaction", "RealAgnosticResidualInteractionBlock")]
    kw = dict(
        r_max=hp["r_max"],
        num_bessel=hp["num_bessel"],
        num_polynomial_cutoff=hp["p"],
        max_ell=hp["max_ell"],
        interaction_cls=inter,
        interaction_cls_first=inter,
        num_interactions=hp["num_interactions"],
        num_elements=len(z),
        hidden_irreps=o3.Irreps(hp["hidden"]),
        MLP_irreps=o3.Irreps(hp["mlp"]),
        atomic_energies=np.array(e0s, dtype=float),
        avg_num_neighbors=avg,
        atomic_numbers=z,
        correlation=hp["correlation"],
        gate=torch.nn.functional.silu,
        radial_MLP=hp["radial_mlp"],
        use_last_readout_only=hp.get("last_readout_only", False),
    )
    if cls == "ScaleShiftMACE":
        return modules.ScaleShiftMACE(atomic_inter_scale=scale, atomic_inter_shift=shift, **kw)
    return modules.MACE(**kw)


def train_and_save(
    name: str, cls: str, frames, eval_frames, z: list, e0s, hp: dict, out: str, steps: int, seed: int, xz: bool = False
):
    from mace import data, modules, tools
    from mace.calculators import MACECalculator
    from mace.tools import torch_geometric

    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_default_dtype(torch.float64)
    z_table = tools.AtomicNumberTable(z)
    ds = [data.AtomicData.from_config(c, z_table=z_table, cutoff=hp["r_max"]) for c in to_configs(frames)]
    loader = torch_geometric.dataloader.DataLoader(dataset=ds, batch_size=2, shuffle=True, drop_last=False)
    avg = float(modules.compute_avg_num_neighbors(loader))
    inter = [a.info["energy"] - sum(e0s[z.index(int(q))] for q in a.numbers) for a in frames]
    shift = float(np.mean([e / len(a) for e, a in zip(inter, frames)]))
    scale = float(np.sqrt(np.mean(np.concatenate([a.arrays["ref_forces"].ravel() ** 2 for a in frames]))))
    model = build(cls, z, e0s, avg, hp, scale=scale, shift=shift)
    loss_fn = modules.WeightedEnergyForcesLoss(energy_weight=1.0, forces_weight=100.0)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, amsgrad=True)
    model.train()
    done = 0
    while done < steps:
        for batch in loader:
            out_ = model(batch.to_dict(), training=True, compute_force=True)
            loss = loss_fn(pred=out_, ref=batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done == steps:
                break
    model.eval()
    path = os.path.join(out, f"{name}.model")
    torch.save(model, path)
    calc = MACECalculator(model_paths=path, device="cpu", default_dtype="float64")
    rec = {}
    for f, a in enumerate(eval_frames):
        b = a.copy()
        b.calc = calc
        rec[f"frame{f}_numbers"] = b.get_atomic_numbers()
        rec[f"frame{f}_positions"] = b.positions
        rec[f"frame{f}_cell"] = np.array(b.cell.array)
        rec[f"frame{f}_pbc"] = np.array(b.pbc)
        rec[f"frame{f}_energy"] = np.array(b.get_potential_energy())
        rec[f"frame{f}_forces"] = b.get_forces()
        if b.pbc.all():
            rec[f"frame{f}_stress"] = b.get_stress()
    rec["num_frames"] = np.array(len(eval_frames))
    np.savez_compressed(os.path.join(out, f"{name}_reference.npz"), **rec)
    if xz:  # the committed fixture: the pickle (TorchScript of e3nn's generated code included) shrinks ~3x
        import lzma

        with open(path, "rb") as f, lzma.open(path + ".xz", "wb", preset=9) as g:
            g.write(f.read())
        os.remove(path)
        path += ".xz"
    print(
        f"{path}: {cls}, {sum(p.numel() for p in model.parameters())} parameters, {steps} steps, "
        f"{os.path.getsize(path) / 1e3:.0f} kB; {len(eval_frames)} reference frames"
    )


ETHANOL_Z = [1, 6, 8]
ETHANOL_E0 = [-13.587222780835477, -1029.4889999855063, -2041.9816003861047]  # eV; plausible isolated atoms


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--set", choices=["fixture", "live", "bench"], default="fixture")
    p.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "rmd17"))
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--xz", action="store_true", help="write <name>.model.xz instead of <name>.model")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    train = ethanol_frames(a.data, "train", range(0, 40, 5))
    test = ethanol_frames(a.data, "test", [0, 500])
    if a.set == "fixture":
        hp = dict(
            r_max=5.0,
            num_bessel=8,
            p=5,
            max_ell=3,
            hidden="8x0e+8x1o",
            mlp="16x0e",
            correlation=2,
            num_interactions=2,
            radial_mlp=[16, 16],
        )
        eval_frames = test + [ethanol_in_a_box(test[0]), lone_atom(8)]
        train_and_save(
            "mace_ethanol",
            "ScaleShiftMACE",
            train,
            eval_frames,
            ETHANOL_Z,
            ETHANOL_E0,
            hp,
            a.out,
            a.steps,
            a.seed,
            a.xz,
        )
        hp = dict(
            r_max=4.5,
            num_bessel=6,
            p=6,
            max_ell=1,
            hidden="4x0e+4x1o",
            mlp="8x0e",
            correlation=3,
            num_interactions=3,
            radial_mlp=[8, 8, 8],
        )
        frames = cuau_frames(6, a.seed)
        train_and_save(
            "mace_cuau",
            "MACE",
            frames[:4],
            frames[4:] + [lone_atom(79)],
            [29, 79],
            [emt_isolated(29), emt_isolated(79)],
            hp,
            a.out,
            a.steps,
            a.seed,
            a.xz,
        )
    else:
        # the rMD17 recipe's blocks and orders (max_ell 3, correlation 3, 2 layers, r_max 5); few channels for
        # the live test, the speed benchmark's 32x0e+32x1o (benchmarks/_mace_torch.py) for --set bench
        bench = a.set == "bench"
        hp = dict(
            r_max=5.0,
            num_bessel=8,
            p=5,
            max_ell=3,
            hidden="32x0e+32x1o" if bench else "8x0e+8x1o",
            mlp="16x0e",
            correlation=3,
            num_interactions=2,
            radial_mlp=[64, 64, 64],
        )
        eval_frames = test + [ethanol_in_a_box(test[1]), lone_atom(6)]
        if not bench:  # two variants: one equivar imports (one readout), one it refuses (another interaction)
            small = dict(hp, max_ell=2, correlation=2, radial_mlp=[16, 16], num_interactions=3)
            train_and_save(
                "mace_live_lastonly", "MACE", train, test[:1], ETHANOL_Z, ETHANOL_E0,
                dict(small, last_readout_only=True), a.out, a.steps, a.seed, a.xz,
            )  # fmt: skip
            train_and_save(
                "mace_live_density", "ScaleShiftMACE", train, test[:1], ETHANOL_Z, ETHANOL_E0,
                dict(small, interaction="RealAgnosticDensityInteractionBlock"), a.out, 0, a.seed, a.xz,
            )  # fmt: skip
        train_and_save(
            "mace_bench" if bench else "mace_live",
            "ScaleShiftMACE",
            train,
            eval_frames,
            ETHANOL_Z,
            ETHANOL_E0,
            hp,
            a.out,
            a.steps,
            a.seed,
            a.xz,
        )


if __name__ == "__main__":
    main()
