"""The mace-torch half of benchmarks/mlip.py; run with an interpreter that has mace-torch 0.3.16.

Same measurement as equivar's: one training epoch on rMD17 ethanol (950
configurations, batch 5, 32x0e+32x1o, max_ell 3, correlation 3, 2 layers,
r_max 5, float32, AMSGrad lr 0.01, E:F 1:1000, EMA 0.99, gradient clipping
10), and MD steps/s on aspirin through MACECalculator. Prints one JSON line.
"""

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data", "rmd17")
KCAL = 0.0433641


def load(path):
    from mace import data

    npz = np.load(path)
    z = npz["nuclear_charges"].astype(int)
    return [
        data.Configuration(
            atomic_numbers=z,
            positions=npz["coords"][i],
            properties={"energy": float(npz["energies"][i] * KCAL), "forces": npz["forces"][i] * KCAL},
            property_weights={"energy": 1.0, "forces": 1.0},
            cell=np.zeros((3, 3)),
            pbc=(False,) * 3,
        )
        for i in range(len(npz["coords"]))
    ]


def build(e0s, avg_num, scale=1.0, shift=0.0):
    from e3nn import o3
    from mace import modules

    inter = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    return modules.ScaleShiftMACE(
        r_max=5.0,
        num_bessel=8,
        num_polynomial_cutoff=5,
        max_ell=3,
        interaction_cls=inter,
        interaction_cls_first=inter,
        num_interactions=2,
        num_elements=3,
        hidden_irreps=o3.Irreps("32x0e+32x1o"),
        MLP_irreps=o3.Irreps("16x0e"),
        atomic_energies=np.array(e0s),
        avg_num_neighbors=avg_num,
        atomic_numbers=[1, 6, 8],
        correlation=3,
        gate=torch.nn.functional.silu,
        radial_MLP=[64, 64, 64],
        atomic_inter_scale=scale,
        atomic_inter_shift=shift,
    )


def epoch(steps):
    from mace import data, modules, tools
    from mace.tools import torch_geometric
    from torch_ema import ExponentialMovingAverage

    torch.set_default_dtype(torch.float32)
    configs = load(os.path.join(DATA, "rmd17_ethanol_train_01.npz"))
    perm = np.random.default_rng(0).permutation(len(configs))
    train = [configs[i] for i in perm[:950]]
    z_table = tools.AtomicNumberTable([1, 6, 8])
    ds = [data.AtomicData.from_config(c, z_table=z_table, cutoff=5.0) for c in train]
    loader = torch_geometric.dataloader.DataLoader(dataset=ds, batch_size=5, shuffle=True, drop_last=False)
    avg = modules.compute_avg_num_neighbors(loader)
    counts = np.array([[np.sum(c.atomic_numbers == z) for z in (1, 6, 8)] for c in train], float)
    energies = np.array([c.properties["energy"] for c in train])
    e0s = np.linalg.lstsq(counts, energies, rcond=None)[0]
    model = build(e0s, avg)
    loss_fn = modules.WeightedEnergyForcesLoss(energy_weight=1.0, forces_weight=1000.0)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, amsgrad=True)
    ema = ExponentialMovingAverage(model.parameters(), decay=0.99)
    model.train()
    n, t0, warm = 0, None, 3
    for batch in loader:
        if n == warm:
            t0 = time.perf_counter()
        if steps is not None and n == warm + steps:
            break
        out = model(batch.to_dict(), training=True, compute_force=True, compute_virials=False, compute_stress=False)
        loss = loss_fn(pred=out, ref=batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        ema.update()
        n += 1
    dt = time.perf_counter() - t0
    per_step = dt / (n - warm)
    return {
        "epoch_s": per_step * len(loader),
        "steps": len(loader),
        "measured": f"{n - warm} steps extrapolated" if steps else "full epoch minus 3 warm-up steps, extrapolated",
        "step_ms": 1e3 * per_step,
    }


def md(n_steps, model_path=None):
    from ase import Atoms, units
    from ase.md.verlet import VelocityVerlet
    from mace.calculators import MACECalculator

    npz = np.load(os.path.join(DATA, "rmd17_aspirin_test_01.npz"))
    out = {}
    for dtype in ("float32", "float64"):
        torch.set_default_dtype(getattr(torch, dtype))
        if model_path is not None:  # a given model file (benchmarks/mace_import_md.py)
            calc = MACECalculator(model_paths=model_path, device="cpu", default_dtype=dtype)
        else:
            model = build([0.0, 0.0, 0.0], 15.0)
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "m.model")
                torch.save(model, path)
                calc = MACECalculator(model_paths=path, device="cpu", default_dtype=dtype)
        atoms = Atoms(numbers=npz["nuclear_charges"], positions=npz["coords"][0])
        atoms.calc = calc
        out[f"energy0_{dtype}"] = float(atoms.get_potential_energy())  # eV at the frame, before any step
        dyn = VelocityVerlet(atoms, 0.5 * units.fs)
        dyn.run(5)
        t0, c0 = time.perf_counter(), time.process_time()
        dyn.run(n_steps)
        out[dtype] = n_steps / (time.perf_counter() - t0)
        out[f"cpu_{dtype}"] = n_steps / (time.process_time() - c0)  # steps per CPU-second (robust to load)
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["epoch", "md"])
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--md-steps", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default=None, help="md: this mace-torch .model file instead of an untrained one")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(json.dumps(epoch(a.steps) if a.what == "epoch" else md(a.md_steps, a.model)))
