"""``equivar audit`` on image classifiers: planar groups, every circular shift, rotation / scale / shear sweeps.

Used when ``--data`` is an MNIST-layout folder (IDX files). ``--model`` is one
or more comma-separated equivar image checkpoints (``{hparams, state_dict}``)
or registered image model names (``vit_polyphase``, ``vit``: freshly
initialized with ``--seed``, the same weights for both), each labelled by
:func:`model_labels` (file names, parent folders added where two files share
a name). Writes ``groups_<label>.png`` (``/`` in a label -> ``_``),
``shifts.png`` (error of the logits for every circular shift, consistency in
the titles), ``rotation.png`` / ``scale.png`` / ``shear.png`` and
``audit.json``.
"""

from __future__ import annotations

import json
import os
import time

IMAGE_GROUPS = ("planar:shifts", "planar:C4", "planar:SO2", "planar:SL2", "planar:affine(SL2)")


def is_image_folder(path: str) -> bool:
    """Whether ``path`` is a folder holding MNIST-layout IDX files."""
    if not os.path.isdir(path):
        return False
    return any(n.startswith(("t10k-images-idx", "train-images-idx")) for n in os.listdir(path))


def _load(spec: str, seed: int, dtype):
    import torch

    from ..models import available_models, build_model

    if os.path.isfile(spec):
        obj = torch.load(spec, map_location="cpu", weights_only=True)
        if not isinstance(obj, dict) or "hparams" not in obj or "state_dict" not in obj:
            raise ValueError(f"{spec}: not an image-model checkpoint (want a dict with 'hparams' and 'state_dict')")
        m = build_model(**obj["hparams"])
        m.load_state_dict(obj["state_dict"])
        name = spec
    elif spec in available_models():
        torch.manual_seed(seed)
        m, name = build_model(spec), spec
    else:
        raise FileNotFoundError(f"--model {spec!r}: neither a checkpoint file nor a registered model name")
    return name, (m.to(dtype) if dtype is not None else m).eval()


def model_labels(specs: list[str]) -> list[str]:
    """One distinct label per ``--model`` entry: a checkpoint's file name without extension (``runs/vit/model.pt`` ->
    ``model``), with as many parent folders as it takes to tell files of the same name apart (``vit/model``,
    ``twin/model``); a registered model name as given; an entry given twice gets ``#2``, ``#3``."""
    parts = [os.path.normpath(os.path.splitext(s)[0]).split(os.sep) if os.path.isfile(s) else [s] for s in specs]
    depth = [1] * len(specs)
    while True:
        labels = ["/".join(p[-d:]) for p, d in zip(parts, depth)]
        clash = [
            i
            for i, lab in enumerate(labels)
            if depth[i] < len(parts[i]) and any(lab == labels[j] and parts[j] != parts[i] for j in range(len(specs)))
        ]
        if not clash:
            break
        for i in clash:
            depth[i] += 1
    seen: dict = {}
    out = []
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        out.append(lab if seen[lab] == 1 else f"{lab}#{seen[lab]}")
    return out


def run_images(args) -> int:
    import torch

    from .. import data as D
    from ..symmetry import audit, get_group
    from ..symmetry.audit import DEFAULT_GROUPS
    from ._mlip import prepare_output_dir, require

    names = list(IMAGE_GROUPS) if list(args.group) == list(DEFAULT_GROUPS) else list(args.group)
    groups = [get_group(g) for g in names]
    require(args.max_structures >= 1, "--max-structures", args.max_structures, ">= 1 (images)")
    require(args.n_elements >= 1, "--n-elements", args.n_elements, ">= 1")
    from ..models import available_models

    for spec in args.model.split(","):
        if os.path.isfile(spec.strip()):
            check_model_matches_data(spec.strip(), args.data)
        elif spec.strip() not in available_models():
            raise FileNotFoundError(f"--model {spec.strip()!r}: neither a checkpoint file nor a registered model name")
    prepare_output_dir(args.out, "--out")
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype) if args.dtype else None
    images = D.load_image_set(args.data, "test", args.max_structures)
    t0 = time.time()
    report = {"data": images.source, "images": len(images), "models": {}}
    shifts, flows, files = {}, {"rotation": {}, "scale": {}, "shear": {}}, []
    specs = [spec.strip() for spec in args.model.split(",")]
    for spec, name in zip(specs, model_labels(specs)):
        model = _load(spec, args.seed, dtype)[1]
        x = images.images.to(next(model.parameters()).dtype)
        subject = audit.Subject.batched(model, [x], ["image"], "invariant", max_rows=1024)
        errs = audit.equivariance_errors(subject, groups, n_elements=args.n_elements, seed=args.seed)
        files.append(
            audit.plot_group_bars(errs, os.path.join(args.out, f"groups_{name.replace('/', '_')}.png"), title=name)
        )
        shifts[name] = audit.shift_sweep(subject)
        for kind in flows:
            flows[kind][name] = audit.flow_sweep(subject, kind)
        report["models"][name] = {
            "groups": {g: e.to_dict() for g, e in errs.items()},
            "shifts": shifts[name].to_dict(),
            "flows": {k: v[name].to_dict() for k, v in flows.items()},
        }
        line = ", ".join(f"{g} {e.aggregate['out']:.3g}" for g, e in errs.items())
        print(f"{name}: consistency over all shifts {100 * shifts[name].consistency('out'):.1f}%; {line}")
    files.append(audit.plot_shift_sweep(shifts, "out", os.path.join(args.out, "shifts.png"), title=images.source))
    for kind, sw in flows.items():
        files.append(audit.plot_flow_sweeps(sw, "out", os.path.join(args.out, f"{kind}.png"), title=kind))
    report["seconds"] = time.time() - t0
    with open(os.path.join(args.out, "audit.json"), "w") as fh:
        json.dump(report, fh, indent=1)
    print(f"wrote {len(files) + 1} files to {args.out}/ ({report['seconds']:.1f} s)")
    return 0


def check_model_matches_data(model: str, data: str) -> None:
    """Raise a one-line ``ValueError`` naming the model file, its task and the data when an equivar checkpoint's
    task does not fit the data: atomic structures take potentials, an MNIST-layout folder classifiers."""
    from ._model_kind import checkpoint_task, describe

    task, name = checkpoint_task(model)
    if task is not None and task not in ("potential", "classification", "dynamics"):
        raise ValueError(
            f"--model {model} is {describe(task)} ({name}, task {task!r}): equivar audit takes potentials "
            "(--data atomic structures), dynamics models (--data test|valid|train) and image classifiers "
            "(--data an MNIST-layout folder)"
        )
    want, what = ("classification", "images") if is_image_folder(data) else ("potential", "atomic structures")
    if task is not None and task != want:
        raise ValueError(
            f"--model {model} is {describe(task)} ({name}, task {task!r}) but --data {data} holds {what}: "
            f"audit {what} with {describe(want)}"
        )
