#!/usr/bin/env python
"""Training step of PONITA on charged N-body, equivar vs the authors' code (ebekkers/ponita), in the same run.

Both sides are the paper's N-body model (``main_nbody.py`` defaults: 16 orientations, 128 hidden, basis 256,
degree 3, 5 layers, widening 4, layer scale 1e-6, multiple read-outs; charge and velocity in, a displacement
out; complete graph with self-loops) on the same batch of EGNN's ``nbody_small`` training trajectories (frame 30
in, 40 out), MSE loss, Adam, float32, the same number of torch threads.

- equivar: ``equivar.models.Ponita`` on the dynamics batch (``collate_scenes``).
- original: ``ponita.models.ponita.PonitaFiberBundle`` from a checkout of github.com/ebekkers/ponita
  (``--original DIR``; nothing is copied into this repository), fed a ``torch_geometric`` batch built as their
  ``make_pyg_loader`` does (the complete graph with self-loops: their ``RadiusGraph(1000, loop=True)``, which
  needs torch_cluster); it needs ``torch_geometric`` importable
  (``--site DIR`` is prepended to ``sys.path``). ``torch_scatter`` does not build against torch 2.13 here, and the
  fibre-bundle path does not call it; a stand-in module (``scatter_add``/``scatter_mean`` by ``scatter_add_``) is
  written to a temporary directory so that their imports succeed.

Before timing, the original gets equivar's weights and grid and both must agree on the predicted displacements of
the batch (float64, layer scale raised to 1 so the blocks count, relative error below 1e-10), so the same function
is timed. Steps of the two alternate (so other users' load hits both
alike); the median CPU time (``time.process_time``) and wall time per step and their ratio are reported.

    pip install --target /tmp/ponita_site --no-deps torch_geometric==2.3.1 xxhash psutil requests urllib3 idna \
        charset_normalizer certifi aiohttp fsspec
    .venv/bin/python benchmarks/ponita_official.py --original /tmp/ponita --site /tmp/ponita_site [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCATTER_STANDIN = """
import torch
def scatter_add(src, index, dim=0, dim_size=None):
    size = list(src.shape); size[dim] = int(index.max()) + 1 if dim_size is None else dim_size
    idx = index.view([-1] + [1] * (src.dim() - 1)).expand_as(src)
    return torch.zeros(size, dtype=src.dtype, device=src.device).scatter_add_(dim, idx, src)
def scatter_mean(src, index, dim=0, dim_size=None):
    return scatter_add(src, index, dim, dim_size) / scatter_add(torch.ones_like(src), index, dim, dim_size).clamp(min=1)
"""

OPTS = dict(hidden_dim=128, num_layers=5, num_ori=16, basis_dim=256, degree=3, widening_factor=4, layer_scale=1e-6)


def _import_original(original: str, site: str | None):
    tmp = tempfile.mkdtemp(prefix="ponita_shim_")
    with open(os.path.join(tmp, "torch_scatter.py"), "w") as f:
        f.write(_SCATTER_STANDIN)
    sys.path[:0] = [p for p in (original, site, tmp) if p]
    from ponita.models.ponita import PonitaFiberBundle

    return PonitaFiberBundle


def _batches(n_scenes: int, dtype):
    import torch
    from torch_geometric.data import Batch, Data

    from equivar.data import collate_scenes, nbody

    ds = nbody.load_nbody().train
    pairs = nbody.frame_pairs(ds.subset(slice(0, n_scenes)), 30, 40)
    items = [pairs[i] for i in range(n_scenes)]
    ours = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in collate_scenes(items).items()}

    def theirs():
        graphs = []
        for k in range(n_scenes):
            sl = slice(int(ours["ptr"][k]), int(ours["ptr"][k + 1]))
            g = Data(pos=ours["pos"][sl, -1], x=ours["node_attr"][sl], vec=ours["vel"][sl, -1][:, None, :])
            g.y = ours["target"][sl, 0]
            n = g.pos.shape[0]  # RadiusGraph(1000, loop=True) on 5 particles: the complete graph with self-loops
            g.edge_index = torch.cartesian_prod(torch.arange(n), torch.arange(n)).T.contiguous()
            graphs.append(g)
        return Batch.from_data_list(graphs)

    return ours, theirs


def _load_our_weights(orig, ours) -> None:
    """Give the original model equivar's weights and orientation grid (the same function)."""
    import torch

    net = ours.net
    with torch.no_grad():
        for mine, theirs in ((net.basis, orig.basis_fn), (net.fiber_basis, orig.fiber_basis_fn)):
            theirs[1].weight.copy_(mine.linear_1.weight), theirs[1].bias.copy_(mine.linear_1.bias)
            theirs[3].weight.copy_(mine.linear_2.weight), theirs[3].bias.copy_(mine.linear_2.bias)
        orig.x_embedder.weight.copy_(net.embedding.weight)
        for blk, layer in zip(net.blocks, orig.interaction_layers):
            layer.conv.kernel.weight.copy_(blk.conv.kernel.weight)
            layer.conv.fiber_kernel.weight.copy_(blk.conv.fiber_kernel.weight)
            layer.conv.bias.copy_(blk.conv.bias)
            for a in ("norm", "linear_1", "linear_2"):
                getattr(layer, a).load_state_dict(getattr(blk, a).state_dict())
            layer.layer_scale.copy_(blk.layer_scale)
            layer.conv.callibrated.fill_(True)
        for mine, theirs in zip(net.readouts, orig.read_out_layers):
            theirs.load_state_dict(mine.state_dict())
        orig.transform.transforms[0].ori_grid_s2 = ours.grid.detach().clone()
    net.calibrated.fill_(True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--original", required=True, help="checkout of github.com/ebekkers/ponita")
    ap.add_argument("--site", default=None, help="folder holding torch_geometric (pip install --target)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--json", default=None, help="also write the results here (atomically)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    args = ap.parse_args(argv)
    from equivar._paths import check_output_file

    try:  # before any measurement: an existing results file is not replaced by accident
        check_output_file(args.json, "--json", overwrite=args.overwrite)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    import torch

    from equivar.models.ponita import Ponita

    torch.set_num_threads(args.threads)
    PonitaFiberBundle = _import_original(args.original, args.site)

    def build(dtype):
        torch.manual_seed(0)
        ours = Ponita(**OPTS, augment=False).to(dtype)
        orig = PonitaFiberBundle(
            2,
            OPTS["hidden_dim"],
            0,
            OPTS["num_layers"],
            output_dim_vec=1,
            radius=None,
            num_ori=OPTS["num_ori"],
            basis_dim=OPTS["basis_dim"],
            degree=OPTS["degree"],
            widening_factor=OPTS["widening_factor"],
            layer_scale=OPTS["layer_scale"],
            task_level="node",
            multiple_readouts=True,
        )
        return ours, orig

    # 1. the same function: float64, their model with our weights and grid
    ours, orig = build(torch.float64)
    b64, theirs64 = _batches(args.batch, torch.float64)
    g = theirs64()
    g.pos, g.x, g.vec = g.pos.float(), g.x.float(), g.vec.float()
    orig(g)  # materialise the LazyLinear layers (float32), then cast
    orig = orig.double()
    with torch.no_grad():  # layer scale 1 for the check: at 1e-6 the blocks would hide below the read-out path
        for blk in ours.net.blocks:
            blk.layer_scale.fill_(1.0)
    _load_our_weights(orig, ours)
    ours.eval(), orig.eval()
    g = theirs64()
    g.pos, g.x, g.vec = g.pos.double(), g.x.double(), g.vec.double()
    with torch.no_grad():
        a = ours(b64)["pos"][:, 0]
        _, v = orig(g)
    bth = g.pos + v[:, 0]
    da, db = a - b64["pos"][:, -1], bth - g.pos  # compare the predicted displacements (the positions dominate)
    err = float((da - db).norm() / db.norm())
    print(f"displacement norms: equivar {float(da.norm()):.4e}, original {float(db.norm()):.4e}")
    print(f"agreement (float64): relative error {err:.2e}")
    if not err < 1e-10:
        raise SystemExit("the two models disagree: not timing")

    # 2. timing, float32, training steps (forward, MSE, backward, Adam)
    ours, orig = build(torch.float32)
    b32, theirs32 = _batches(args.batch, torch.float32)
    orig(theirs32())
    _load_our_weights(orig, ours)
    ours.train(), orig.train()
    opt_a = torch.optim.Adam(ours.parameters(), lr=1e-3)
    opt_b = torch.optim.Adam(orig.parameters(), lr=1e-3)

    def step_ours():
        loss = ((ours(b32)["pos"][:, 0] - b32["target"][:, 0]) ** 2).mean()
        opt_a.zero_grad()
        loss.backward()
        opt_a.step()

    def step_orig():
        gr = theirs32()  # the transform overwrites graph.x: a fresh batch per step (built outside the timing)
        t = (time.process_time(), time.perf_counter())
        _, vv = orig(gr)
        loss = ((gr.pos + vv[:, 0] - gr.y) ** 2).mean()
        opt_b.zero_grad()
        loss.backward()
        opt_b.step()
        return t

    times = {"equivar": [], "original": []}
    for k in range(args.steps + 1):
        c0, w0 = time.process_time(), time.perf_counter()
        step_ours()
        c1, w1 = time.process_time(), time.perf_counter()
        c2, w2 = step_orig()
        c3, w3 = time.process_time(), time.perf_counter()
        if k:  # the first round warms up
            times["equivar"].append((c1 - c0, w1 - w0))
            times["original"].append((c3 - c2, w3 - w2))
    res = {"threads": args.threads, "batch": args.batch, "steps": args.steps, "agreement_rel_err": err, **OPTS}
    for name, ts in times.items():
        res[f"{name}_cpu_s"] = statistics.median(t[0] for t in ts)
        res[f"{name}_wall_s"] = statistics.median(t[1] for t in ts)
    res["ratio_cpu"] = res["original_cpu_s"] / res["equivar_cpu_s"]
    res["ratio_wall"] = res["original_wall_s"] / res["equivar_wall_s"]
    print(json.dumps(res, indent=1))
    if args.json:
        from equivar._paths import write_json_atomic

        write_json_atomic(args.json, res, flag="--json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
