"""An exported potential runs in a fresh Python process that does not import equivar; energies and forces equal
the eager model's to 1e-10 (float64), on a structure of another size than the one traced."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from mace_graphs import SMALL_MACE, make_batch, random_molecule

from equivar.models import MACE
from equivar.models.export import export_potential

HP = dict(SMALL_MACE, dtype="float64", seed=1)
KEYS = ("positions", "atomic_numbers", "edge_index", "shifts")

LOADER = textwrap.dedent(
    """
    import json, sys, torch
    extra = {"equivar.json": ""}
    f = torch.export.load(sys.argv[1], extra_files=extra).module()
    structures = torch.load(sys.argv[2])
    out = []
    for s in structures:
        pos = s["positions"].clone().requires_grad_(True)
        e = f(pos, s["atomic_numbers"], s["edge_index"], s["shifts"])
        out.append({"energy": e.detach(), "forces": -torch.autograd.grad(e.sum(), pos)[0]})
    torch.save(out, sys.argv[3])
    print(json.dumps({"equivar_imported": sorted(m for m in sys.modules if m.split(".")[0] == "equivar"),
                      "meta": json.loads(extra["equivar.json"])}))
    """
)


@pytest.fixture(scope="module")
def model():
    m = MACE(**HP)
    with torch.no_grad():  # a trained model's weights are not the init: perturb every parameter
        g = torch.Generator().manual_seed(7)
        for p in m.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return m.eval()


def test_exported_potential_runs_without_equivar(model, tmp_path):
    g = torch.Generator().manual_seed(0)
    traced = make_batch([random_molecule(7, [1, 6, 8], g)], HP["r_max"], torch.float64)
    path = tmp_path / "mace.pt2"
    export_potential(model, str(path), traced)
    others = [make_batch([random_molecule(n, [1, 6, 8], g)], HP["r_max"], torch.float64) for n in (5, 12, 23)]
    structures = [{k: b[k] for k in KEYS} for b in [traced] + others]
    torch.save(structures, tmp_path / "in.pt")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run(
        [sys.executable, "-c", LOADER, str(path), str(tmp_path / "in.pt"), str(tmp_path / "out.pt")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["equivar_imported"] == []
    assert info["meta"]["r_max"] == HP["r_max"] and info["meta"]["dtype"] == "float64"
    got = torch.load(tmp_path / "out.pt")
    assert len({s["positions"].shape[0] for s in structures}) == 4  # four sizes through one file
    for s, b, o in zip(structures, [traced] + others, got):
        ref = model(b, compute_forces=True)
        assert (o["energy"] - ref["energy"].detach()).abs().max() <= 1e-10 * ref["energy"].abs().max()
        assert (o["forces"] - ref["forces"].detach()).abs().max() <= 1e-10 * ref["forces"].abs().max()


def test_bad_example_is_one_line(model, tmp_path):
    with pytest.raises(ValueError, match=r"example structure lacks \['shifts'\]"):
        export_potential(model, str(tmp_path / "x.pt2"), {k: None for k in KEYS[:3]})
