"""The affNIST-style generator: ranges respected, seeded, identity at strength 0, digits kept in the canvas,
points moved by the drawn map."""

import math

import numpy as np
import pytest
import torch

from equivar.data import AffnistRanges, affnist_like, affnist_matrices, pad_images
from equivar.planar import pixel_coordinates


def _digits(n=64, size=28, seed=0):
    """Blobs of random strokes away from the border (stand-ins for MNIST digits, values in [0, 1])."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, size, size)
    for i in range(n):
        r0, c0 = torch.randint(5, 10, (2,), generator=g).tolist()
        h, w = torch.randint(8, 14, (2,), generator=g).tolist()
        x[i, 0, r0 : r0 + h, c0 : c0 + w] = torch.rand(h, w, generator=g)
    return x


def test_strength_zero_is_the_padded_image():
    x = _digits(8)
    out, prm = affnist_like(x, seed=3, strength=0.0)
    assert out.shape == (8, 1, 40, 40) and out.dtype == x.dtype
    torch.testing.assert_close(out, pad_images(x), rtol=0, atol=1e-7)
    torch.testing.assert_close(prm["A"], torch.eye(2, dtype=torch.float64).expand(8, 2, 2), rtol=0, atol=0)
    assert prm["t"].abs().max() == 0
    torch.testing.assert_close(pad_images(x)[:, :, 6:34, 6:34], x, rtol=0, atol=0)  # 6-pixel edge, as affNIST


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_parameters_within_the_published_ranges(strength):
    _, prm = affnist_like(_digits(400), seed=0, strength=strength)
    rot, shear = prm["rotation"].abs().max(), prm["shear"].abs().max()
    assert rot <= math.radians(20) * strength and rot > 0.9 * math.radians(20) * strength  # the range is used
    assert shear <= math.radians(45) * strength and shear > 0.9 * math.radians(45) * strength
    for k in ("scale_row", "scale_col"):
        dev = (prm[k] - 1).abs().max()
        assert dev <= 0.2 * strength and dev > 0.18 * strength
    det = torch.linalg.det(prm["A"])
    torch.testing.assert_close(det, prm["scale_row"] * prm["scale_col"])  # rotation and shear keep area


def test_matrices_compose_rotation_shear_scale():
    th, ph = torch.tensor([0.3]), torch.tensor([0.2])
    A = affnist_matrices(th, ph, torch.tensor([1.1]), torch.tensor([0.9]))[0]
    R = torch.tensor([[math.cos(0.3), -math.sin(0.3)], [math.sin(0.3), math.cos(0.3)]])
    Sh = torch.tensor([[1.0, 0.0], [math.tan(0.2), 1.0]])
    torch.testing.assert_close(A.float(), R @ Sh @ torch.diag(torch.tensor([1.1, 0.9])))


def test_same_seed_same_set_other_seed_other_set():
    x = _digits(16)
    a, pa = affnist_like(x, seed=5)
    b, pb = affnist_like(x, seed=5)
    c, _ = affnist_like(x, seed=6)
    assert torch.equal(a, b) and all(torch.equal(pa[k], pb[k]) for k in pa)
    assert not torch.allclose(a, c)


def test_moved_digits_stay_in_the_canvas_and_translations_vary():
    x = _digits(200)
    out, prm = affnist_like(x, seed=1)
    p = pixel_coordinates(40, 40)
    ink = pad_images(x)[:, 0] > 0
    q = torch.einsum("nij,hwj->nhwi", prm["A"], p) + prm["t"][:, None, None]  # where each input pixel lands
    inside = q.abs().max(-1).values <= 19.5 + 1e-9
    assert bool(inside[ink].all())
    assert prm["t"].std(0).min() > 2.0  # not just centred
    # mass is (nearly) kept: nothing is cut off, only resampled (area changes by det A)
    ratio = out.sum((1, 2, 3)) / (x.sum((1, 2, 3)) * torch.linalg.det(prm["A"]).float())
    assert (ratio - 1).abs().max() < 0.05


def test_a_blob_moves_to_A_p_plus_t():
    p = pixel_coordinates(28, 28)
    centre = torch.tensor([3.0, -2.0], dtype=torch.float64)
    blob = torch.exp(-((p - centre) ** 2).sum(-1) / (2 * 1.5**2)).float()[None, None]
    out, prm = affnist_like(blob, seed=2)
    P = pixel_coordinates(40, 40).float()
    w = out[0, 0]
    got = (w[..., None] * P).sum((0, 1)) / w.sum()
    want = prm["A"][0] @ centre + prm["t"][0]  # 28x28 and 40x40 share the centre
    torch.testing.assert_close(got.double(), want, rtol=0, atol=0.05)


def test_errors():
    with pytest.raises(ValueError, match="strength must be in"):
        affnist_like(_digits(2), seed=0, strength=1.5)
    with pytest.raises(ValueError, match="floating"):
        affnist_like(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), seed=0)
    with pytest.raises(ValueError, match="at least one image, got \\(0, 1, 28, 28\\)"):
        affnist_like(torch.zeros(0, 1, 28, 28), seed=0)
    with pytest.raises(ValueError, match="seed must be an integer, got 1.7"):
        affnist_like(_digits(2), seed=1.7)
    with pytest.raises(ValueError, match="cannot centre 28x28"):
        pad_images(torch.zeros(1, 1, 28, 28), 41)
    with pytest.raises(ValueError, match="shear_deg"):
        AffnistRanges(shear_deg=90)
    with pytest.raises(ValueError, match="scale must be a number in"):
        AffnistRanges(scale=1.0)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("rotation_deg", -1.0, r"rotation_deg must be a number in \[0, 180\], got -1.0"),
        ("rotation_deg", 180.5, r"rotation_deg must be a number in \[0, 180\], got 180.5"),
        ("rotation_deg", float("nan"), r"rotation_deg must be a number in \[0, 180\], got nan"),
        ("rotation_deg", "20", r"rotation_deg must be a number in \[0, 180\], got '20'"),
        ("shear_deg", 90.0, r"shear_deg must be a number in \[0, 90\), got 90.0"),
        ("shear_deg", True, r"shear_deg must be a number in \[0, 90\), got True"),
        ("scale", -0.1, r"scale must be a number in \[0, 1\), got -0.1"),
        ("canvas", 0, r"canvas must be an integer >= 1, got 0"),
        ("canvas", 40.5, r"canvas must be an integer >= 1, got 40.5"),
        ("canvas", "40", r"canvas must be an integer >= 1, got '40'"),
    ],
)
def test_ranges_validation_documented_in_raises(field, value, message):
    """Every check the Raises section of ``AffnistRanges`` lists is one ``ValueError`` naming the field and value;
    the edges of the documented ranges are accepted."""
    with pytest.raises(ValueError, match=message):
        AffnistRanges(**{field: value})
    r = AffnistRanges(rotation_deg=180, shear_deg=0.0, scale=0, canvas=np.int64(28))
    assert (r.rotation_deg, r.canvas) == (180, 28)
    assert "Raises" in AffnistRanges.__doc__
