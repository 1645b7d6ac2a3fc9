"""The mace-torch half of benchmarks/gpu.py's MACE benchmark; run with PYTHONPATH holding mace-torch 0.3.16,
its e3nn 0.4.4 and (variant ``cueq``) cuequivariance-torch. Argument: a JSON spec from gpu.py
(data, device, dry, hp, reps, variant). Prints one JSON line: per step name ``{"ms", "peak_mb"}``.

Same hyperparameters as equivar's model (ScaleShiftMACE, RealAgnosticResidualInteractionBlock, hidden
``C x 0e + C x 1o``, readout MLP 16x0e), same steps (training: energy + 1000 x forces MSE, backward, Adam;
MD: energy + forces in eval mode), same timing (median of CUDA-event timed calls after one warm-up).
"""

import json
import statistics
import sys
import time

import numpy as np
import torch

KCAL = 0.0433641


def time_fn(fn, device, max_reps=20, target_s=1.0, warmup=3):
    for _ in range(warmup):  # TorchScript's profiling executor re-optimizes over the first calls
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    ts, t0 = [], time.perf_counter()
    while len(ts) < max_reps and (len(ts) < 3 or time.perf_counter() - t0 < target_s):
        if device == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            ts.append(a.elapsed_time(b))
        else:
            t = time.perf_counter()
            fn()
            ts.append(1e3 * (time.perf_counter() - t))
    return statistics.median(ts)


def peak_mb(fn, device):
    if device != "cuda":
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return round((torch.cuda.max_memory_allocated() - base) / 2**20, 1)


def main():
    spec = json.loads(sys.argv[1])
    torch.set_default_dtype(torch.float32)
    from e3nn import o3
    from mace import data, modules, tools
    from mace.tools import torch_geometric

    dev, hp = spec["device"], spec["hp"]
    npz = np.load(spec["data"])
    z = npz["nuclear_charges"].astype(int)

    def conf(i, pos=None, zz=None, cell=None):
        return data.Configuration(
            atomic_numbers=z if zz is None else zz,
            positions=npz["coords"][i] if pos is None else pos,
            properties={"energy": float(npz["energies"][i] * KCAL), "forces": npz["forces"][i] * KCAL}
            if pos is None
            else {"energy": 0.0, "forces": np.zeros((len(pos), 3))},
            property_weights={"energy": 1.0, "forces": 1.0},
            cell=np.zeros((3, 3)) if cell is None else cell,
            pbc=(False,) * 3 if cell is None else (True,) * 3,
        )

    reps, spacing = spec["reps"], 9.0
    p0 = npz["coords"][0] - npz["coords"][0].mean(0)
    pos = np.concatenate(
        [p0 + spacing * np.array([a, b, c]) for a in range(reps[0]) for b in range(reps[1]) for c in range(reps[2])]
    )
    zz = np.tile(z, reps[0] * reps[1] * reps[2])
    cellc = conf(0, pos=pos, zz=zz, cell=np.diag([spacing * r for r in reps]).astype(float))
    z_table = tools.AtomicNumberTable(hp["atomic_numbers"])

    def batch_of(configs):
        ds = [data.AtomicData.from_config(c, z_table=z_table, cutoff=hp["r_max"]) for c in configs]
        loader = torch_geometric.dataloader.DataLoader(dataset=ds, batch_size=len(ds), shuffle=False)
        b = next(iter(loader)).to(dev)
        return b.to_dict()

    b5 = batch_of([conf(i) for i in range(5)])
    b1 = batch_of([conf(0)])
    bc = batch_of([cellc])
    ch = hp["num_channels"]
    kw = dict(
        r_max=hp["r_max"],
        num_bessel=hp["num_bessel"],
        num_polynomial_cutoff=hp["num_polynomial_cutoff"],
        max_ell=hp["max_ell"],
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        num_interactions=hp["num_interactions"],
        num_elements=len(hp["atomic_numbers"]),
        hidden_irreps=o3.Irreps(f"{ch}x0e+{ch}x1o"),
        MLP_irreps=o3.Irreps(f"{hp['readout_mlp']}x0e"),
        atomic_energies=np.array(hp["atomic_energies"]),
        avg_num_neighbors=hp["avg_num_neighbors"],
        atomic_numbers=hp["atomic_numbers"],
        correlation=hp["correlation"],
        gate=torch.nn.functional.silu,
        radial_MLP=hp["radial_mlp"],
        atomic_inter_scale=1.0,
        atomic_inter_shift=0.0,
    )
    if spec["variant"] == "cueq":
        from mace.modules.wrapper_ops import CuEquivarianceConfig

        kw["cueq_config"] = CuEquivarianceConfig(
            enabled=True, layout="ir_mul", group="O3_e3nn", optimize_all=True, conv_fusion=(dev == "cuda")
        )
    model = modules.ScaleShiftMACE(**kw).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)

    def loss_of(out, b):
        n = (b["ptr"][1:] - b["ptr"][:-1]).to(out["energy"].dtype)
        return ((out["energy"] - b["energy"]) / n).square().mean() + 1000.0 * (
            out["forces"] - b["forces"]
        ).square().mean()

    def train(b):
        def f():
            model.train()
            out = model(b, training=True, compute_force=True)
            loss = loss_of(out, b)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return f

    def md(b):
        def f():
            model.eval()
            out = model(b, training=False, compute_force=True)
            out["forces"].detach()

        return f

    try:
        import cuequivariance_ops_torch  # noqa: F401

        cue_ops = True
    except Exception as e:  # noqa: BLE001
        cue_ops = f"unavailable: {type(e).__name__}: {str(e)[:200]}"
    res = {
        "variant": spec["variant"],
        "cuequivariance_ops_torch": cue_ops,
        "edges": {"aspirin_batch5": int(b5["edge_index"].shape[1]), "cell": int(bc["edge_index"].shape[1])},
    }
    for name, fn in (
        ("train_aspirin_batch5", train(b5)),
        ("md_aspirin_1mol", md(b1)),
        ("md_cell", md(bc)),
        ("train_cell", train(bc)),
    ):
        try:
            res[name] = {"ms": round(time_fn(fn, dev, max_reps=20 if not spec["dry"] else 1), 3)}
            res[name]["peak_mb"] = peak_mb(fn, dev)
        except Exception as e:  # noqa: BLE001
            res[name] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
