"""The potential plumbing (equivar.models.Potential) and the model registry, on a toy potential and on MACE."""

import json
import os

import pytest
import torch
from mace_graphs import SMALL_MACE, make_batch, random_molecule
from toy_potential import ToyPotential

from equivar.models import MACE, Potential, build_model, model_name, register_model
from equivar.models._registry import _MODELS
from equivar.nn import edge_harmonics, scatter_sum
from equivar.testing import PotentialTestKit

R_MAX = 3.0
TOY = "toy_potential:ToyPotential"


def _toy(dtype=torch.float64, **kw):
    hp = dict(atomic_numbers=[1, 6, 8], atomic_energies={1: -0.5, 6: -37.8, 8: -75.0}, r_max=R_MAX, seed=2)
    hp.update(kw)
    return ToyPotential(dtype="float64" if dtype == torch.float64 else "float32", **hp)


def _molecule(seed=0, n=5):
    return random_molecule(n, [1, 6, 8], torch.Generator().manual_seed(seed))


def test_hparams_are_recorded_from_the_constructor_call():
    model = _toy(scale=[1.0, 2.0, 0.5])
    assert model.hparams == {
        "name": TOY,
        "atomic_numbers": [1, 6, 8],
        "atomic_energies": [-0.5, -37.8, -75.0],  # normalized: a list aligned with the elements
        "scale": [1.0, 2.0, 0.5],
        "shift": 0.0,
        "r_max": R_MAX,
        "dtype": "float64",
        "seed": 2,
    }
    clone = build_model(**json.loads(json.dumps(model.hparams)))
    assert type(clone) is ToyPotential and clone.hparams == model.hparams
    b = make_batch([_molecule()], R_MAX)
    assert torch.equal(clone(b)["energy"], model(b)["energy"])  # same seed, same init


def test_registry_decorator_names_subclasses_and_rejects_a_taken_name():
    @register_model("toy_test_only")
    class Registered(ToyPotential):
        pass

    class Derived(Registered):  # not registered itself: named by module:qualname
        pass

    try:
        assert Registered(atomic_numbers=[1]).hparams["name"] == "toy_test_only"
        assert (
            model_name(Derived)
            == f"{__name__}:test_registry_decorator_names_subclasses_and_rejects_a_taken_name.<locals>.Derived"
        )
        assert build_model(name="toy_test_only", atomic_numbers=[6], r_max=2.0).r_max == 2.0
        with pytest.raises(ValueError, match="already registered"):
            register_model("toy_test_only")(ToyPotential)
    finally:
        _MODELS.pop("toy_test_only", None)
    assert model_name(MACE) == "mace"


def _isolation_weight(pos, r_max, width=1.0):
    """w_i of the Potential base from all pair distances (not the edge list): smootherstep of the smooth count."""

    def step(t):
        t = t.clamp(0, 1)
        return t**3 * (6 * t**2 - 15 * t + 10)

    d = torch.cdist(pos, pos)
    others = ~torch.eye(len(pos), dtype=torch.bool)
    return step((step((r_max - d) / width) * others).sum(1))


def test_node_energy_is_E0_plus_scaled_interaction_plus_shift_per_element(dtype):
    model = _toy(dtype, scale=[1.0, 2.0, 0.5], shift=[0.1, -0.2, 0.3])
    b = make_batch([_molecule(1, 6)], R_MAX, dtype)
    out = model(b)
    g = None

    def grab(graph):
        nonlocal g
        g = graph
        return ToyPotential.node_energies(model, graph)

    model.node_energies = grab
    model(b)
    e = ToyPotential.node_energies(model, g).detach()
    k = g.element
    E0 = torch.tensor([-0.5, -37.8, -75.0], dtype=dtype)[k]
    scale, shift = torch.tensor([1.0, 2.0, 0.5], dtype=dtype)[k], torch.tensor([0.1, -0.2, 0.3], dtype=dtype)[k]
    expected = E0 + _isolation_weight(g.positions.detach(), R_MAX) * (scale * e + shift)  # MACE's order, times w_i
    torch.testing.assert_close(out["node_energy"].detach(), expected, rtol=0, atol=0)
    torch.testing.assert_close(out["energy"].detach(), expected.sum()[None])
    assert out["energy"].dtype == dtype


class TestToyKit(PotentialTestKit):
    """The whole potential test kit on the toy (forces and stress against finite differences, symmetry with
    parity, batching, isolated atoms, cutoff smoothness, round trips), with per-element scale and shift."""

    def make_model(self, dtype):
        return _toy(dtype, scale=[1.0, 2.0, 0.5], shift=[0.1, -0.2, 0.3])


@pytest.mark.parametrize("make", [lambda: _toy(shift=[0.1, -0.2, 0.3]), lambda: _mace(residual_first=True)])
def test_isolated_atom_energy_is_what_the_model_gives_an_atom_without_neighbours(make):
    model = make()
    for z in (1, 6, 8):
        b = make_batch([(torch.zeros(1, 3, dtype=torch.float64), torch.tensor([z]))], R_MAX, model.dtype)
        assert model(b)["energy"].item() == pytest.approx(model.isolated_atom_energy(z), abs=1e-12)
    with pytest.raises(
        ValueError, match=r"^atomic number\(s\) \[26\] not known to this model \(trained on \[1, 6, 8\]\)$"
    ):
        model.isolated_atom_energy(26)


def test_unknown_element_and_bad_arguments_are_one_line_errors():
    model = _toy()
    b = make_batch([(torch.zeros(1, 3), torch.tensor([26]))], R_MAX)
    with pytest.raises(
        ValueError, match=r"^atomic number\(s\) \[26\] not known to this model \(trained on \[1, 6, 8\]\)$"
    ):
        model(b)
    for kw, match in [
        (dict(atomic_numbers=[1, 1]), "distinct"),
        (dict(atomic_numbers=[0]), "1..118"),
        (dict(atomic_energies=[0.0]), "1 atomic_energies for 3"),
        (dict(atomic_energies={1: 0.0}), "no entry for Z=6"),
        (dict(scale=[1.0, 2.0]), "scale has 2 values"),
        (dict(r_max=0.0), "r_max must be positive"),
    ]:
        with pytest.raises(ValueError, match=match):
            _toy(**kw)
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64', got 'float16'"):
        ToyPotential([1], dtype="float16")
    with pytest.raises(NotImplementedError, match="node_energies"):

        class Empty(Potential):
            pass

        Empty([26])(b)


def test_dtype_follows_casts_and_inputs_are_cast():
    model = _toy(torch.float32)
    assert model.dtype == torch.float32 and model.a.dtype == torch.float32
    b = make_batch([_molecule()], R_MAX, torch.float64)
    assert model(b)["forces"].dtype == torch.float32
    model.double()
    assert model.dtype == torch.float64 and model(b)["forces"].dtype == torch.float64


# ---- MACE on the base: the refactored forward equals the pre-refactor one ---------------------------------------


def _mace(**kw):
    hp = dict(
        SMALL_MACE,
        scale=1.3,
        shift=[0.1, 0.2, -0.1],
        dtype="float64",
        seed=1,
    )
    hp.update(kw)
    return MACE(**hp)


def _frozen_mace_forward(model, b):
    """MACE's energy and forces as written before the potential plumbing moved out of it (a frozen copy)."""
    pos = b["positions"].to(model.dtype).detach().clone().requires_grad_(True)
    elem = model.element_index(b["atomic_numbers"])
    node_attrs = torch.nn.functional.one_hot(elem, model.num_elements).to(model.dtype)
    sender, receiver = b["edge_index"]
    vec = pos.index_select(0, receiver) - pos.index_select(0, sender) + b["shifts"].to(model.dtype)
    lengths = torch.sqrt((vec * vec).sum(-1))
    # the model's harmonics function (o3.spherical_harmonics to rounding, tests/nn/test_nn_edge_harmonics.py)
    sh = edge_harmonics(model.irreps_sh, vec)
    radial_in = model.radial_embedding(lengths) if model.radial_kind == "mlp" else model.radials[0].blend(lengths)
    h = model.embedding(node_attrs)
    node_inter = None
    for inter, radial, prod, readout in zip(model.interactions, model.radials, model.products, model.readouts):
        w = radial(radial_in) if model.radial_kind == "mlp" else radial_in @ radial.values
        A, sc = inter(h, node_attrs, sh, w, b["edge_index"])
        h = prod(A, node_attrs, sc)
        e = readout(h).squeeze(-1)
        node_inter = e if node_inter is None else node_inter + e
    node_energy = model.atomic_energies(elem) + model.scale_shift(node_inter, elem)
    energy = scatter_sum(node_energy, b["batch"], b["ptr"].numel() - 1)
    (grad,) = torch.autograd.grad(energy.sum(), pos)
    return energy.detach(), -grad


@pytest.mark.parametrize("variant", [{}, dict(radial="spline", residual_first=True)])
def test_mace_on_the_base_equals_the_frozen_pre_refactor_forward(variant, dtype):
    # isolation_width=None: the constant shift of the frozen forward (and of mace-torch)
    model = _mace(dtype="float64" if dtype == torch.float64 else "float32", isolation_width=None, **variant).eval()
    b = make_batch([_molecule(3, 5), _molecule(4, 4)], R_MAX, dtype)
    out = model(b)
    energy, forces = _frozen_mace_forward(model, b)
    assert torch.equal(out["energy"], energy) and torch.equal(out["forces"], forces)  # bit for bit


_USER_MODULE = """
import torch
from equivar.models import Potential, register_model
from equivar.nn import scatter_sum


@register_model("user_pair_model")
class UserPair(Potential):
    def __init__(self, atomic_numbers, atomic_energies=None, r_max=3.0, dtype="float64", width=1.5):
        super().__init__(atomic_numbers, atomic_energies, r_max=r_max, dtype=dtype)
        self.width = torch.nn.Parameter(torch.tensor(float(width)))

    def node_energies(self, graph):
        d = graph.edge_lengths
        pair = torch.exp(-d / self.width) * (1 - d / self.r_max) ** 2
        return scatter_sum(pair, graph.edge_index[1], graph.positions.shape[0])
"""


def test_a_model_registered_in_a_user_module_loads_in_a_fresh_process(tmp_path):
    """The checkpoint records where the class lives, so load_model imports the user's module by itself."""
    import subprocess
    import sys

    from equivar.train import model_payload, save_checkpoint

    (tmp_path / "user_models.py").write_text(_USER_MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        import user_models

        model = user_models.UserPair(atomic_numbers=[1, 6], atomic_energies=[-0.5, -37.8], width=0.7)
        assert model.hparams["name"] == "user_pair_model"
        save_checkpoint(str(tmp_path / "m.pt"), model_payload(model))
        b = make_batch([random_molecule(4, [1, 6], torch.Generator().manual_seed(1))], 3.0)
        energy = float(model(b)["energy"].detach().sum())
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("user_models", None)
        _MODELS.pop("user_pair_model", None)
    code = (
        "import sys, torch; from equivar.train import load_model; "
        f"m = load_model({str(tmp_path / 'm.pt')!r}); print(type(m).__name__, float(m.width))"
    )
    env = dict(__import__("os").environ, PYTHONPATH=os.pathsep.join([str(tmp_path)] + sys.path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    name, width = out.stdout.split()
    assert name == "UserPair" and float(width) == pytest.approx(0.7)
    # without the module on the path the error says where the class lives and what to do
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "defined in module 'user_models'" in out.stderr and "PYTHONPATH" in out.stderr
    assert energy != 0.0


def test_a_registered_builder_function_gets_hparams_from_its_arguments():
    @register_model("mlp_test_only")
    def mlp(width: int = 4, depth=(2, 3)):
        return torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in depth])

    try:
        model = build_model(name="mlp_test_only", width=3)
        assert model.hparams == {"name": "mlp_test_only", "width": 3, "depth": [2, 3]}  # defaults, tuples as lists
        assert len(build_model(**model.hparams)) == 2
    finally:
        _MODELS.pop("mlp_test_only", None)
