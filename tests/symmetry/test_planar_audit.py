"""Audits of image models under planar groups (typed 'image' actions, shift and flow sweeps)."""

import os

import pytest
import torch

from equivar import planar as P
from equivar.models import build_model
from equivar.symmetry import GroupElement, audit, get_group
from equivar.symmetry._types import act


def test_planar_elements_act_on_images_only():
    G = P.CircularShifts(4, 5)
    g = GroupElement(planar=(G, torch.tensor([1, 2])), label="s")
    x = torch.randn(2, 3, 4, 5)
    assert torch.equal(act(x, "image", g), torch.roll(x, (1, 2), dims=(-2, -1)))
    assert torch.equal(act(x, "images", g.inverse()), torch.roll(x, (-1, -2), dims=(-2, -1)))
    logits = torch.randn(2, 10)
    assert torch.equal(act(logits, "invariant", g), logits)
    with pytest.raises(ValueError, match="acts on 'image' tensors"):
        act(torch.randn(2, 3), "vector", g)
    # E(3) elements leave images unchanged
    R = GroupElement(R=torch.eye(3, dtype=torch.float64)[[1, 0, 2]])
    assert torch.equal(act(x, "image", R), x)
    assert g.kind == "planar"


def test_get_planar_group_names():
    assert get_group("planar:shifts(4,6)").name == "planar:shifts(4,6)"
    assert get_group("planar:C4").finite
    for name in ("planar:SO2", "planar:scalings(1.3)", "planar:GL+2(0.1)", "planar:SL2", "planar:affine(SL2)"):
        els = get_group(name).sample(3, torch.Generator().manual_seed(0))
        assert len(els) == 3 and all(e.planar is not None for e in els)
    with pytest.raises(ValueError, match="unknown planar group 'planar:spin'"):
        get_group("planar:spin")
    with pytest.raises(ValueError, match="needs the image size"):
        get_group("planar:shifts").sample(1)


def _vit_pair():
    models = {}
    for name in ("vit_polyphase", "vit"):
        torch.manual_seed(0)
        models[name] = build_model(name, image_size=12, patch_size=2, sr_ratio=2, dim=16).double()
    return models


def test_audit_shows_the_unanchored_vit_breaking(tmp_path):
    x = torch.randn(3, 1, 12, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sweeps = {}
    for name, m in _vit_pair().items():
        s = audit.Subject.batched(m, [x], ["image"], "invariant")
        errs = audit.equivariance_errors(s, ["planar:shifts", "planar:C4"], max_finite=200)
        sh = errs["planar:shifts"]
        assert len(sh.labels) == 143  # every non-trivial circular shift of 12 x 12
        sweeps[name] = audit.shift_sweep(s)
        assert sweeps[name].error["out"].shape == (12, 12, 3)
        if name == "vit_polyphase":
            assert sh.aggregate["out"] < 1e-13 and sweeps[name].error["out"].max() < 1e-13
            assert sweeps[name].consistency("out") == 1.0
            assert errs["planar:C4"].aggregate["out"] > 1e-2  # not rotation invariant: only shifts are claimed
        else:
            assert sh.aggregate["out"] > 0.1
            # invariant to shifts by multiples of patch * reduction = 4, and to no other shift
            e = sweeps[name].error["out"].amax(-1)
            assert e[::4, ::4].max() < 1e-13
            mask = torch.ones(12, 12, dtype=torch.bool)
            mask[::4, ::4] = False
            assert e[mask].min() > 1e-3
    path = audit.plot_shift_sweep(sweeps, "out", str(tmp_path / "shifts.png"))
    assert os.path.getsize(path) > 1000


def test_flow_sweep_values(tmp_path):
    x = torch.randn(2, 1, 9, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    linear = audit.Subject.batched(lambda z: 3 * z, [x], ["image"], "image")  # commutes with any resampling
    conv = audit.Subject.batched(lambda z: z + 0.5 * torch.roll(z, 1, dims=-1), [x], ["image"], "image")
    fl = {"3x": audit.flow_sweep(linear, "rotation"), "conv": audit.flow_sweep(conv, "rotation")}
    assert fl["3x"].error["out"].max() < 1e-12
    e = fl["conv"].error["out"].mean(-1)
    assert e[0] < 1e-12 and e[1:-1].min() > 1e-2  # a row-wise filter is not rotation equivariant (t=0, 2 pi: identity)
    for kind in ("scale", "shear", "stretch"):
        assert audit.flow_sweep(linear, kind).error["out"].max() < 1e-12
    with pytest.raises(ValueError, match="unknown flow 'spin'"):
        audit.flow_sweep(linear, "spin")
    assert os.path.getsize(audit.plot_flow_sweeps(fl, "out", str(tmp_path / "rot.png"))) > 1000
    with pytest.raises(ValueError, match="needs an input typed 'image'"):
        audit.shift_sweep(audit.Subject.batched(lambda z: z, [torch.randn(2, 3)], ["vector"], "vector"))
