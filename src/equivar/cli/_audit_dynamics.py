"""``equivar audit`` on dynamics models (``task: dynamics`` checkpoints: EGNN, EqMotion, ...).

``--data`` names a split of the checkpoint's own trajectory data (``train``,
``valid`` or ``test``; the ``task.data`` section recorded at training, read
again: simulated N-body from the cache, ETH-UCY from its files). The audited
function maps the observed positions and velocities of ``--max-structures``
scenes (the first ones with the split's most common number of agents) to the
predicted positions (all K hypotheses for multi-hypothesis models), typed
``positions`` / ``vector`` in and ``positions`` out, per-agent attributes
moving with their agents under permutations. Groups act in 3D: 2D scenes
(ETH-UCY) are lifted to the plane ``z = 0``, where a model built from
distances, inner products and linear combinations of vectors computes the
same function; rotations out of that plane then audit its equations in 3D.
"""

from __future__ import annotations

import collections
import os

SPLITS = ("train", "valid", "test")


def is_dynamics_checkpoint(path: str) -> bool:
    """Whether ``path`` is an equivar checkpoint trained with ``task: dynamics``."""
    from ._model_kind import checkpoint_task

    return os.path.isfile(path) and checkpoint_task(path)[0] == "dynamics"


def dynamics_subject(model, dataset, max_scenes: int, dtype):
    """An audit :class:`~equivar.symmetry.audit.Subject` for ``model`` on scenes of ``dataset``.

    Returns ``(subject, info)``; ``info`` holds the scenes' count, agents, dimension and whether they were
    lifted from 2D.

    Raises
    ------
    ValueError
        Empty dataset, or pair attributes that are not products of per-agent ones (they could not follow
        a permutation of the agents).
    """
    import torch

    from ..data import collate_scenes
    from ..symmetry import Typed
    from ..symmetry.audit import Subject

    if len(dataset) == 0:
        raise ValueError("the chosen split holds no scenes")
    counts = [int(p.shape[0]) for p in dataset.pos]
    n = collections.Counter(counts).most_common(1)[0][0]
    idx = [i for i, c in enumerate(counts) if c == n][:max_scenes]
    scenes = [dataset[i] for i in idx]
    pos = torch.stack([s["pos"] for s in scenes]).to(dtype)  # [B, N, T, D]
    vel = torch.stack([s["vel"] for s in scenes]).to(dtype)
    attr = torch.stack([s["node_attr"] for s in scenes]).to(dtype)  # [B, N, F]
    pair = torch.stack([s["pair_attr"] for s in scenes]).to(dtype)  # [B, N, N, F_e]
    if pair.shape[-1]:
        outer = attr[:, :, None, :1] * attr[:, None, :, :1]
        off = ~torch.eye(n, dtype=torch.bool)
        if attr.shape[-1] != 1 or not torch.allclose(pair[:, off], outer[:, off].expand_as(pair[:, off])):
            raise ValueError("pair attributes are not products of per-agent attributes; cannot audit permutations")
    d = pos.shape[-1]
    lifted = d == 2
    if lifted:
        pos = torch.nn.functional.pad(pos, (0, 1))
        vel = torch.nn.functional.pad(vel, (0, 1))
    template = collate_scenes(scenes)

    def fn(p, v, a):
        b, m = p.shape[0], p.shape[1]
        batch = dict(template)
        if b != len(scenes):  # the audit evaluates several transformed copies at once
            batch = collate_scenes(scenes * (b // len(scenes)))
        batch = {key: (val.to(dtype) if val.is_floating_point() else val) for key, val in batch.items()}
        batch["pos"], batch["vel"] = p.reshape(b * m, *p.shape[2:]), v.reshape(b * m, *v.shape[2:])
        batch["node_attr"] = a.reshape(b * m, -1)
        if batch["edge_attr"].shape[-1]:
            send, recv = batch["edge_index"]
            q = batch["node_attr"][:, 0]
            batch["edge_attr"] = (q[send] * q[recv])[:, None]
        out = model(batch)["pos"]
        if out.dim() == 4:  # [K, B*N, T, D] -> [B, K, N, T, D]
            return {"pos": out.reshape(out.shape[0], b, m, *out.shape[2:]).transpose(0, 1)}
        return {"pos": out.reshape(b, m, *out.shape[1:])}

    with torch.no_grad():
        probe = fn(pos, vel, attr)["pos"]
    k = probe.shape[1] if probe.dim() == 5 else None
    out_type = Typed("positions", nodes=True, node_axis=2 if k else 1)
    subject = Subject.batched(
        fn,
        [pos, vel, attr],
        [
            Typed("positions", nodes=True, node_axis=1),
            Typed("vector", nodes=True, node_axis=1),
            Typed("0e", nodes=True, node_axis=1),
        ],
        {"pos": out_type},
        max_rows=max(len(scenes), 64),
    )
    info = {"scenes": len(scenes), "agents": n, "dimension": d, "lifted_to_3d": lifted, "hypotheses": k}
    return subject, info


def run_dynamics(args, disc_angles) -> int:
    """``equivar audit`` for a dynamics checkpoint (see the module docstring); ``disc_angles`` as checked by
    ``equivar audit`` (degrees, or None)."""
    import torch

    from ..symmetry import get_group
    from ..symmetry.audit import run_audit
    from ..tasks import DynamicsData
    from ..train import load_model
    from ._mlip import prepare_output_dir, require

    if args.data not in SPLITS:
        from ._model_kind import checkpoint_task

        raise ValueError(
            f"--model {args.model} is a dynamics model ({checkpoint_task(args.model)[1]}): --data names a split of "
            f"its own trajectory data ({', '.join(SPLITS)}), got {args.data!r}"
        )
    require(args.max_structures >= 1, "--max-structures", args.max_structures, ">= 1")
    groups = [get_group(g) for g in args.group]
    if args.threads:
        torch.set_num_threads(args.threads)
    payload = torch.load(args.model, map_location="cpu", weights_only=True)
    meta = payload.get("metadata") or {}
    data = DynamicsData.from_mapping(meta.get("data"))
    model = load_model(args.model, dtype=getattr(torch, args.dtype) if args.dtype else None)
    dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
    sets = data.load(log=lambda s: None)
    subject, info = dynamics_subject(model, sets[args.data], args.max_structures, dtype)
    prepare_output_dir(args.out, "--out")
    where = f"{data.source}" + (f" (held-out scene {data.scene})" if data.source == "ethucy" else f" {data.system}")
    desc = f"{payload['hparams'].get('name', '?')} ({args.model})"
    print(
        f"auditing {desc} on {info['scenes']} {args.data} scenes of {where}, {info['agents']} agents each"
        + (" (2D, lifted to z = 0)" if info["lifted_to_3d"] else "")
        + " ..."
    )
    report = run_audit(
        subject,
        args.out,
        groups=groups,
        n_elements=args.n_elements,
        n_angles=args.n_angles,
        disc_angles=disc_angles,
        disc_resolution=args.disc_resolution,
        seed=args.seed,
        meta={"model": desc, "interface": "dynamics", "data": f"{where}, {args.data} split", **info},
    )
    print(report.summary())
    if report.meta["skipped_groups"]:
        print(f"skipped (not applicable): {', '.join(report.meta['skipped_groups'])}")
    print(f"wrote {len(report.files)} files to {args.out}/ ({report.meta['seconds']:.1f} s)")
    return 0
