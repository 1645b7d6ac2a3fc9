"""Every registered image classifier passes the test kit for the groups it claims (float32 and float64)."""

import pytest

from equivar.models import build_model
from equivar.testing import check_image_model, claimed_groups

SMALL = {
    "affine_cnn": dict(image_size=12, channels=3, num_samples=3, depth=1),
    "vit_polyphase": dict(image_size=12, dim=16, depth=2, patch_size=2, sr_ratio=2),
    "vit": dict(image_size=12, dim=16, depth=2, patch_size=2, sr_ratio=2),
    "p4cnn": dict(image_size=12, channels=4, depth=2),
    "cnn": dict(image_size=12, channels=8, depth=2),
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_claimed_groups_hold(name):
    model = build_model(name, **SMALL[name])
    groups = claimed_groups(model)
    if name == "vit":
        assert groups == ()
        return
    errs = check_image_model(model)  # every circular shift of 12 x 12 (and every quarter turn), two dtypes
    assert {g for g, _ in errs} == set(groups)
    assert max(v for (g, d), v in errs.items() if d == "float64") < 1e-12


def test_kit_catches_unclaimed_groups():
    with pytest.raises(AssertionError, match="ViT not invariant under planar:shifts in torch.float32"):
        check_image_model(build_model("vit", **SMALL["vit"]), ["planar:shifts"])
    with pytest.raises(AssertionError, match="CNN not invariant under planar:C4"):
        check_image_model(build_model("cnn", **SMALL["cnn"]), ["planar:C4"])
    with pytest.raises(ValueError, match="claims no groups"):
        check_image_model(build_model("vit", **SMALL["vit"]))
