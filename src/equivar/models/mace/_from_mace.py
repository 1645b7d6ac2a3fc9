"""Import a mace-torch model (``MACE`` / ``ScaleShiftMACE``) as an equivar :class:`~equivar.models.mace.MACE`.

The ``.model`` file is read by a restricted unpickler (:mod:`._unpickle`): neither mace-torch nor
e3nn is needed or imported. Every weight is mapped exactly (float64 arithmetic) onto equivar's layers:

- e3nn ``o3.Linear`` (node embedding, ``linear_up``, ``linear``, the product's mixing linear, the
  readouts): the flat weight has e3nn's layout (one ``[mul_in, mul_out]`` block per instruction), so it
  is copied, rescaled by the ratio of e3nn's stored path weight to equivar's ``1/sqrt(fan_in)`` (1 for
  e3nn's default 'element' normalisation).
- ``FullyConnectedNet`` (the radial MLP) and the non-linear readout: e3nn normalises the activation by
  a Monte-Carlo estimate of its second moment (``normalize2mom.cst``, stored in the file); equivar by
  the exact value. The ratio (and ``variance_in/out``) is folded into the next layer's weights.
- The edge tensor product (``conv_tp``, ``'uvu'`` paths): same irreps, instructions and weight layout
  as equivar's channelwise product; a differing path weight (another normalisation) is folded into the
  radial MLP's last-layer columns of that path.
- The skip tensor product (``FullyConnectedTensorProduct`` with the element one-hot ``E x 0e``): an
  element-dependent linear, :class:`~equivar.nn.ElementLinear` (``W[u, e, w]`` times e3nn's path
  weight and ``wigner_3j(l, 0, l)``).
- The symmetric contraction: mace-torch stores its generalised CG tensors ``U_matrix_nu [d, D^nu, K']``
  (not symmetric, often redundant); only their symmetric part acts on ``A (x) ... (x) A``. Each is
  symmetrised and projected on equivar's orthonormal basis of symmetric equivariant tensors, which
  must span it (checked: a residual above round-off is an error), giving
  ``w[e, k, c] = sum_k' <U_k, Sym U'_k'> W'[e, k', c] / sqrt(d)``.
- E0s, scale / shift, ``avg_num_neighbors``, the element order (``atomic_numbers``), ``r_max``, the Bessel
  basis and polynomial envelope ``p`` become the model's hyperparameters; ``isolation_width=None``
  (mace-torch's constant shift: an isolated atom gets ``E0 + shift`` plus the first layer's residual).

Anything the equivar model does not implement (another model class, interaction or readout block,
several heads, a ZBL pair term, a distance transform, a non-Bessel radial basis, a different
correlation per layer, ...) is refused with a one-line ``ValueError`` naming it.

Source of the conventions: the mace-torch 0.3 and e3nn 0.4 model structure (Batatia et al.,
NeurIPS 2022; Geiger & Smidt, e3nn, arXiv:2207.09453), read to write this mapping; no code is used.
"""

from __future__ import annotations

import itertools
import math
import os

import numpy as np
import torch

from ...o3 import Irrep, Irreps, wigner_3j
from ._unpickle import Stub, load_stubs, qualname

MODEL_CLASSES = ("mace.modules.models.MACE", "mace.modules.models.ScaleShiftMACE")
INTERACTION = "mace.modules.blocks.RealAgnosticResidualInteractionBlock"


class _Unsupported(ValueError):
    pass


def _fail(where: str, what: str):
    raise _Unsupported(f"{where}: {what}")


def _tuple(obj) -> tuple:
    """The tuple a pickled tuple subclass (e3nn ``Irrep``, ``_MulIr``, ``Instruction``) was built from."""
    if isinstance(obj, tuple):
        return obj
    a = obj.args
    return a[0] if len(a) == 1 and isinstance(a[0], tuple) else a


def _irreps(obj) -> Irreps:
    """Our :class:`Irreps` from a pickled e3nn ``Irreps`` (or a string)."""
    if isinstance(obj, str):
        return Irreps(obj)
    out = []
    for mul_ir in _tuple(obj):
        mul, ir = _tuple(mul_ir)
        l, p = _tuple(ir)
        out.append((int(mul), Irrep(int(l), int(p))))
    return Irreps(out)


def _children(obj) -> list:
    """Submodules of a pickled ``ModuleList`` / ``Sequential`` in order."""
    mods = obj.children()
    return [mods[k] for k in sorted(mods, key=int)] if all(k.isdigit() for k in mods) else list(mods.values())


def _params(obj) -> list:
    """Parameters of a pickled ``ParameterList`` in order."""
    ps = obj.__dict__.get("_parameters") or {}
    return [ps[k] for k in sorted(ps, key=int)]


def _f64(t) -> torch.Tensor:
    return t.detach().to(torch.float64)


def _check_class(obj, allowed, where: str) -> None:
    name = qualname(obj)
    if name not in allowed:
        short = ", ".join(a.rsplit(".", 1)[-1] for a in allowed)
        _fail(where, f"{name} is not supported (supported: {short})")


def _activation_name(fn) -> str:
    name = qualname(fn) if isinstance(fn, (Stub, type)) else getattr(fn, "__qualname__", repr(fn))
    return name


def _is_silu(fn) -> bool:
    return _activation_name(fn) in ("torch.nn.functional.silu", "silu", "torch.nn.modules.activation.SiLU")


# ---- reading the hyperparameters -------------------------------------------------------------


def read_mace(m, where: str) -> dict:
    """Hyperparameters of equivar's MACE from the stub of a mace-torch model; refuses unsupported variants."""
    _check_class(m, MODEL_CLASSES, where)
    cls = qualname(m).rsplit(".", 1)[-1]
    heads = m.__dict__.get("heads") or ["Default"]
    if len(heads) != 1:
        _fail(where, f"multi-head models are not supported (heads {list(heads)})")
    for attr, what in (
        ("pair_repulsion_fn", "a ZBL pair repulsion (pair_repulsion=True)"),
        ("joint_embedding", "embedding_specs (joint embedding of extra features)"),
        ("embedding_readout", "an embedding readout"),
    ):
        if attr in (m.__dict__.get("_modules") or {}) or attr in m.__dict__:
            _fail(where, f"{what} is not supported")
    for flag in ("use_so3", "use_agnostic_product", "lammps_mliap"):
        if m.__dict__.get(flag):
            _fail(where, f"{flag}=True is not supported")
    if m.__dict__.get("edge_irreps") is not None:
        _fail(where, f"edge_irreps={_irreps(m.edge_irreps)} is not supported")

    atomic_numbers = [int(z) for z in m.atomic_numbers.tolist()]
    r_max = float(m.r_max)
    T = int(m.num_interactions)
    inters, prods, readouts = _children(m.interactions), _children(m.products), _children(m.readouts)
    if T < 2 or len(inters) != T or len(prods) != T:
        _fail(where, f"num_interactions={T} is not supported (at least 2: the last readout is the non-linear one)")
    for t, inter in enumerate(inters):
        _check_class(inter, (INTERACTION,), f"{where}: interactions[{t}]")
        edge = inter.__dict__.get("edge_irreps")
        if edge is not None and _irreps(edge) != _irreps(inter.node_feats_irreps):
            _fail(f"{where}: interactions[{t}]", f"edge_irreps={_irreps(edge)} differ from the node irreps")
        for opt in ("conv_fusion",):
            if inter.__dict__.get(opt):
                _fail(f"{where}: interactions[{t}]", f"{opt} is not supported")
    last_only = bool(m.__dict__.get("use_last_readout_only")) or len(readouts) == 1
    if not last_only and len(readouts) != T:
        _fail(where, f"{len(readouts)} readouts for {T} interactions")
    for t, r in enumerate(readouts):
        final = t == len(readouts) - 1
        want = "mace.modules.blocks.NonLinearReadoutBlock" if final else "mace.modules.blocks.LinearReadoutBlock"
        _check_class(r, (want,), f"{where}: readouts[{t}]")

    # radial basis
    emb = m.radial_embedding
    _check_class(emb, ("mace.modules.blocks.RadialEmbeddingBlock",), f"{where}: radial_embedding")
    _check_class(emb.bessel_fn, ("mace.modules.radial.BesselBasis",), f"{where}: radial_embedding.bessel_fn")
    if "distance_transform" in (emb.__dict__.get("_modules") or {}):
        _fail(where, f"distance_transform {qualname(emb.distance_transform).rsplit('.', 1)[-1]} is not supported")
    if emb.__dict__.get("apply_cutoff", True) is False:
        _fail(where, "apply_cutoff=False (the envelope applied after the radial MLP) is not supported")
    _check_class(emb.cutoff_fn, ("mace.modules.radial.PolynomialCutoff",), f"{where}: radial_embedding.cutoff_fn")
    bessel = emb.bessel_fn
    freq = _f64(bessel.bessel_weights)
    num_bessel = int(freq.numel())
    trainable_bessel = "bessel_weights" in (bessel.__dict__.get("_parameters") or {})
    if not trainable_bessel:
        expected = math.pi / r_max * torch.arange(1, num_bessel + 1, dtype=torch.float64)
        if not torch.allclose(freq, expected, rtol=1e-6, atol=0):
            _fail(where, f"Bessel frequencies {freq.tolist()} are not n*pi/r_max")
    p = float(emb.cutoff_fn.p)
    if p != int(p):
        _fail(where, f"polynomial cutoff p={p} is not an integer")
    if abs(float(emb.cutoff_fn.r_max) - r_max) > 1e-9 * r_max:
        _fail(where, f"cutoff r_max {float(emb.cutoff_fn.r_max)} differs from the model's {r_max}")

    # spherical harmonics
    sh = m.spherical_harmonics
    if not sh.__dict__.get("normalize", True) or sh.__dict__.get("normalization", "component") != "component":
        _fail(where, "spherical harmonics must be normalize=True, normalization='component'")
    irreps_sh = _irreps(sh.irreps_out)
    max_ell = max(ir.l for _, ir in irreps_sh)
    if irreps_sh != Irreps.spherical_harmonics(max_ell):
        _fail(where, f"spherical harmonics {irreps_sh} are not 0e+1o+2e+... (use_so3?)")

    hidden = _irreps(prods[0].linear.irreps_out)
    node0 = _irreps(inters[0].node_feats_irreps)
    C = node0[0].mul
    if hidden != _irreps(inters[1].node_feats_irreps):
        _fail(where, f"hidden irreps {hidden} differ from the second layer's input")
    last_out = _irreps(prods[-1].linear.irreps_out)
    if last_out != Irreps([(C, Irrep("0e"))]):
        _fail(where, f"the last layer keeps {last_out} (keep_last_layer_irreps=True is not supported)")
    muls = {mul for mul, _ in hidden}
    if len(muls) != 1 or any(ir.p != (-1) ** ir.l for _, ir in hidden) or hidden[0].ir != Irrep("0e"):
        _fail(where, f"hidden_irreps {hidden} are not supported (one multiplicity, parities (-1)^l, from 0e)")

    corr = set()
    for t, prod in enumerate(prods):
        _check_class(prod, ("mace.modules.blocks.EquivariantProductBasisBlock",), f"{where}: products[{t}]")
        if prod.__dict__.get("use_agnostic_product"):
            _fail(f"{where}: products[{t}]", "use_agnostic_product=True is not supported")
        if not prod.__dict__.get("use_sc", True):
            _fail(f"{where}: products[{t}]", "use_sc=False is not supported")
        sc = prod.symmetric_contractions
        _check_class(sc, ("mace.modules.symmetric_contraction.SymmetricContraction",), f"{where}: products[{t}]")
        for c in _children(sc.contractions):
            corr.add(int(c.correlation))
    if len(corr) != 1:
        _fail(where, f"a different correlation order per layer {sorted(corr)} is not supported")
    avgs = {float(inter.avg_num_neighbors) for inter in inters}
    if len(avgs) != 1:
        _fail(where, f"a different avg_num_neighbors per layer {sorted(avgs)} is not supported")
    radial_mlps = {
        tuple(int(v) for v in inter.conv_tp_weights.hs[1:-1]) for inter in inters
    }  # older files: no radial_MLP
    if len(radial_mlps) != 1:
        _fail(where, f"a different radial_MLP per layer {sorted(radial_mlps)} is not supported")

    ro = readouts[-1]
    mlp_irreps = _irreps(ro.linear_1.irreps_out)
    if len(mlp_irreps) != 1 or mlp_irreps[0].ir != Irrep("0e"):
        _fail(where, f"MLP_irreps {mlp_irreps} are not supported (scalars 'Nx0e' only)")
    acts = _children(ro.non_linearity.acts)
    if len(acts) != 1 or acts[0] is None or not _is_silu(acts[0].f):
        name = _activation_name(acts[0].f) if acts and acts[0] is not None else None
        _fail(where, f"readout gate {name} is not supported (silu only)")

    e0 = _f64(m.atomic_energies_fn.atomic_energies)
    if e0.dim() == 2:
        if e0.shape[0] != 1:
            _fail(where, f"atomic energies of shape {tuple(e0.shape)} (several heads) are not supported")
        e0 = e0[0]
    scale, shift = 1.0, 0.0
    if cls == "ScaleShiftMACE":
        s, h = _f64(m.scale_shift.scale).reshape(-1), _f64(m.scale_shift.shift).reshape(-1)
        if s.numel() != 1 or h.numel() != 1:
            _fail(where, f"per-head scale/shift {s.tolist()}/{h.tolist()} are not supported")
        scale, shift = float(s[0]), float(h[0])
    return dict(
        r_max=r_max,
        num_bessel=num_bessel,
        num_polynomial_cutoff=int(p),
        max_ell=max_ell,
        hidden_irreps=str(hidden),
        correlation=corr.pop(),
        num_interactions=T,
        atomic_numbers=atomic_numbers,
        atomic_energies=[float(v) for v in e0.tolist()],
        avg_num_neighbors=avgs.pop(),
        scale=scale,
        shift=shift,
        radial="mlp",
        radial_mlp=list(radial_mlps.pop()),
        trainable_bessel=trainable_bessel,
        readout_mlp=mlp_irreps[0].mul,
        residual_first=True,
        isolation_width=None,
        _last_readout_only=last_only,
        _class=cls,
    )


# ---- weight mapping ----------------------------------------------------------------------------


def _linear_blocks(irreps_in: Irreps, irreps_out: Irreps, instructions) -> dict:
    """``(i_in, i_out) -> (offset, mul_in, mul_out)`` of a flat e3nn-layout linear weight."""
    out, off = {}, 0
    for i, j in instructions:
        a, b = irreps_in[i].mul, irreps_out[j].mul
        out[(i, j)] = (off, a, b)
        off += a * b
    return out


def _our_linear_alpha(lin) -> dict:
    """``(i_in, i_out) -> 1/sqrt(fan_in)`` of an equivar :class:`~equivar.nn.Linear`."""
    alpha = {}
    for i, j in lin.instructions:
        ir = lin.irreps_out[j].ir
        fan = sum(m for m, r in lin.irreps_in if r == ir)
        alpha[(i, j)] = 1.0 / math.sqrt(fan) if fan else 0.0
    return alpha


def _map_linear(src, lin, where: str, zero: bool = False) -> torch.Tensor:
    """Flat weight for equivar ``Linear`` ``lin`` from a pickled e3nn ``o3.Linear``."""
    ins_, outs_ = _irreps(src.irreps_in), _irreps(src.irreps_out)
    if ins_ != lin.irreps_in or outs_ != lin.irreps_out:
        _fail(where, f"e3nn Linear {ins_} -> {outs_} does not match {lin.irreps_in} -> {lin.irreps_out}")
    if not (src.__dict__.get("internal_weights", True) and src.__dict__.get("shared_weights", True)):
        _fail(where, "external or per-sample Linear weights are not supported")
    if int(src.__dict__.get("bias_numel", 0) or 0) > 0:
        _fail(where, "a Linear with biases is not supported")
    ins = [_tuple(i) for i in src.instructions]
    paths = [(int(i[0]), int(i[1])) for i in ins if int(i[0]) >= 0]
    if sorted(paths) != sorted(lin.instructions):
        _fail(where, f"custom Linear instructions {paths} are not supported")
    weight = _f64(src.weight).reshape(-1)
    theirs = _linear_blocks(ins_, outs_, paths)
    ours = _linear_blocks(lin.irreps_in, lin.irreps_out, lin.instructions)
    alpha = _our_linear_alpha(lin)
    pw = {(int(i[0]), int(i[1])): float(i[3]) for i in ins if int(i[0]) >= 0}
    out = torch.zeros(lin.weight_numel, dtype=torch.float64)
    if zero:
        return out
    if weight.numel() != sum(a * b for _, a, b in theirs.values()):
        _fail(
            where, f"Linear weight has {weight.numel()} entries, expected {sum(a * b for _, a, b in theirs.values())}"
        )
    for key, (o, a, b) in theirs.items():
        o2 = ours[key][0]
        out[o2 : o2 + a * b] = weight[o : o + a * b] * (pw[key] / alpha[key])
    return out


def _act_scale(act_stub) -> float:
    """The factor e3nn's ``normalize2mom`` multiplies the activation by (1 when it is the identity scaling)."""
    if act_stub is None:
        return 1.0
    return 1.0 if act_stub.__dict__.get("_is_id", False) else float(act_stub.cst)


def _map_fc(src, mlp, where: str) -> list:
    """Weights of equivar's :class:`~equivar.nn.MLP` from a pickled e3nn ``FullyConnectedNet``."""
    layers = [src.children()[k] for k in sorted(src.children(), key=lambda s: int(s.replace("layer", "")))]
    if [int(v) for v in src.hs] != mlp.sizes:
        _fail(where, f"radial MLP sizes {list(src.hs)} differ from {mlp.sizes}")
    c_ours = float(mlp.act.c)
    out, m = [], 1.0  # m: e3nn's layer input = ours * m
    for k, layer in enumerate(layers):
        last = k == len(layers) - 1
        act = layer.__dict__.get("act")
        if act is None:
            act = (layer.__dict__.get("_modules") or {}).get("act")
        if last != (act is None):
            _fail(where, "a FullyConnectedNet with an output activation is not supported")
        if not last and not _is_silu(act.f):
            _fail(where, f"radial MLP activation {_activation_name(act.f)} is not supported (silu only)")
        h_in, var_in, var_out = float(layer.h_in), float(layer.var_in), float(layer.var_out)
        d = 1.0 / math.sqrt(h_in * var_in) if not last else 1.0 / math.sqrt(h_in * var_in / var_out)
        alpha = 1.0 / math.sqrt(mlp.sizes[k]) * (c_ours if k > 0 else 1.0)
        out.append(_f64(layer.weight) * (d * m / alpha))
        if not last:
            m = _act_scale(act) * math.sqrt(var_out)
    return out


def _map_conv_tp(src, tp, where: str) -> torch.Tensor:
    """Per-weight factors ``[weight_numel]``: e3nn's path weight over equivar's, for the radial MLP's last layer."""
    i1, i2, io = _irreps(src.irreps_in1), _irreps(src.irreps_in2), _irreps(src.irreps_out)
    if (i1, i2, io) != (tp.irreps_in1, tp.irreps_in2, tp.irreps_out):
        _fail(where, f"conv_tp {i1} x {i2} -> {io} does not match {tp.irreps_in1} x {tp.irreps_in2} -> {tp.irreps_out}")
    if src.__dict__.get("shared_weights") or src.__dict__.get("internal_weights"):
        _fail(where, "a conv_tp with internal or shared weights is not supported")
    theirs = [_tuple(i) for i in src.instructions]
    if len(theirs) != len(tp.instructions):
        _fail(where, f"conv_tp has {len(theirs)} paths, expected {len(tp.instructions)}")
    factors = []
    for t, ours in zip(theirs, tp.instructions):
        key = (int(t[0]), int(t[1]), int(t[2]), str(t[3]), bool(t[4]))
        if key != (ours.i_in1, ours.i_in2, ours.i_out, ours.connection_mode, ours.has_weight):
            _fail(where, f"conv_tp instruction {key} does not match {tuple(ours)[:5]}")
        if ours.has_weight:
            n = math.prod(ours.path_shape)
            f = float(t[5]) / ours.path_weight if ours.path_weight else 0.0
            factors.append(torch.full((n,), f, dtype=torch.float64))
    f = torch.cat(factors)
    if f.numel() != tp.weight_numel:
        _fail(where, f"conv_tp has {f.numel()} weights per edge, expected {tp.weight_numel}")
    return f


def _map_skip(src, el, where: str) -> torch.Tensor:
    """Flat weight of equivar's :class:`~equivar.nn.ElementLinear` from the pickled skip ``FullyConnectedTensorProduct``."""
    i1, i2, io = _irreps(src.irreps_in1), _irreps(src.irreps_in2), _irreps(src.irreps_out)
    E = el.num_elements
    if i1 != el.irreps_in or io != el.irreps_out or i2 != Irreps([(E, Irrep("0e"))]):
        _fail(where, f"skip_tp {i1} x {i2} -> {io} does not match {el.irreps_in} x {E}x0e -> {el.irreps_out}")
    lin = el.linear
    ours = _linear_blocks(lin.irreps_in, lin.irreps_out, lin.instructions)
    alpha = _our_linear_alpha(lin)
    weight = _f64(src.weight).reshape(-1)
    out = torch.zeros(lin.weight_numel, dtype=torch.float64)
    off = 0
    for t in (_tuple(i) for i in src.instructions):
        a, b, c, mode, has_w, pw = int(t[0]), int(t[1]), int(t[2]), str(t[3]), bool(t[4]), float(t[5])
        if mode != "uvw" or not has_w or b != 0:
            _fail(where, f"skip_tp instruction {t[:5]} is not supported")
        mi, mo, l = i1[a].mul, io[c].mul, io[c].ir.l
        n = mi * E * mo
        w = weight[off : off + n].view(mi, E, mo)
        off += n
        cg = float(wigner_3j(l, 0, l, dtype=torch.float64)[0, 0, 0])  # e3nn's (l, 0, l) coupling: delta * cg
        o2 = ours[(a, c)][0]
        out[o2 : o2 + n] = (w * (pw * cg / alpha[(a, c)])).reshape(-1)
    if off != weight.numel():
        _fail(where, f"skip_tp weight has {weight.numel()} entries, expected {off}")
    return out


def _symmetric_part(T: np.ndarray, nu: int) -> np.ndarray:
    """Average of ``T [n, d, D x nu]`` over the permutations of its last ``nu`` axes."""
    perms = list(itertools.permutations(range(nu)))
    return sum(T.transpose((0, 1) + tuple(2 + i for i in p)) for p in perms) / len(perms)


def _map_contraction(src, sc, where: str) -> list:
    """Weights ``[E, K, C]`` per path of equivar's :class:`~equivar.nn.SymmetricContraction` from mace-torch's."""
    from ...nn import symmetric_contraction_basis

    if _irreps(src.irreps_in) != sc.irreps_in or _irreps(src.irreps_out) != sc.irreps_out:
        _fail(where, f"symmetric contraction {_irreps(src.irreps_in)} -> {_irreps(src.irreps_out)} does not match")
    contractions = _children(src.contractions)
    C, E = sc.channels, sc.num_elements
    per_in = sc.per_channel_in
    D = per_in.dim
    weights = {}
    for o, (con, (_, ir)) in enumerate(zip(contractions, sc.irreps_out)):
        nu_max = int(con.correlation)
        ws = _params(con.weights)
        mace_w = {nu_max: con.weights_max}
        for i, w in enumerate(ws):
            mace_w[nu_max - 1 - i] = w
        for nu in range(1, nu_max + 1):
            U = _f64(getattr(con, f"U_matrix_{nu}"))
            if U.dim() == nu + 1:  # l = 0 output: no m axis
                U = U.unsqueeze(0)
            K2 = U.shape[-1]
            if tuple(U.shape[:-1]) != (ir.dim,) + (D,) * nu:
                _fail(where, f"U_matrix_{nu} of shape {tuple(U.shape)} does not fit {per_in} -> {ir}")
            W = _f64(mace_w[nu])  # [E, K', C]
            basis = symmetric_contraction_basis(per_in, ir, nu)  # [K, d, D..]
            K = basis.shape[0]
            T = np.moveaxis(U.numpy(), -1, 0)  # [K', d, D..]
            S = _symmetric_part(T, nu).reshape(K2, -1)
            B = basis.reshape(K, -1)
            P = S @ B.T  # [K', K]: coordinates in our orthonormal basis
            resid = S - P @ B
            scale_ = max(float(np.abs(S).max()), 1e-300)
            tol = 1e-6 if con.__dict__.get("_buffers", {}).get(f"U_matrix_{nu}").dtype == torch.float32 else 1e-9
            if float(np.abs(resid).max()) > tol * scale_:
                _fail(
                    where,
                    f"U_matrix_{nu} of output {ir} is not a symmetric equivariant tensor in e3nn's basis "
                    f"(residual {float(np.abs(resid).max()):.2e})",
                )
            if W.shape[:2] != (E, K2) or W.shape[2] != C:
                _fail(
                    where,
                    f"weights of order {nu} of output {ir} have shape {tuple(W.shape)}, expected [{E}, {K2}, {C}]",
                )
            if K == 0:
                if float(W.abs().max() if W.numel() else 0) * float(np.abs(S).max() if S.size else 0) > 0:
                    _fail(where, f"order {nu} of output {ir} has no symmetric equivariant path but non-zero weights")
                continue
            Pm = torch.from_numpy(np.ascontiguousarray(P)) / math.sqrt(ir.dim)  # [K', K]
            weights[(o, nu)] = torch.einsum("ekc,kj->ejc", W, Pm)  # [E, K, C]
    out = []
    for o, nu, K in sc._paths:
        w = weights.get((o, nu))
        if w is None:
            w = torch.zeros(E, K, C, dtype=torch.float64)
        out.append(w)
    return out


def _readout_mlp(src, mlp, where: str) -> list:
    l1, l2 = src.linear_1, src.linear_2
    C, H = mlp.sizes[0], mlp.sizes[1]
    if _irreps(l1.irreps_in) != Irreps([(C, Irrep("0e"))]) or _irreps(l2.irreps_out) != Irreps("0e"):
        _fail(where, f"readout {_irreps(l1.irreps_in)} -> {_irreps(l2.irreps_out)} is not {C}x0e -> 0e")
    pw1 = float(_tuple(l1.instructions[0])[3])
    pw2 = float(_tuple(l2.instructions[0])[3])
    for lin in (l1, l2):
        if int(lin.__dict__.get("bias_numel", 0) or 0) > 0 or len(lin.instructions) != 1:
            _fail(where, "a readout Linear with biases or several blocks is not supported")
    act = _children(src.non_linearity.acts)[0]
    c_ours = float(mlp.act.c)
    w1 = _f64(l1.weight).view(C, H) * (pw1 * math.sqrt(C))
    w2 = _f64(l2.weight).view(H, 1) * (pw2 * _act_scale(act) * math.sqrt(H) / c_ours)
    return [w1, w2]


def convert_stub(m, where: str = "mace model", dtype: str | None = None, tp_backend: str = "cg"):
    """Build equivar's MACE from an unpickled mace-torch model (:func:`~._unpickle.load_stubs`)."""
    from ._model import MACE

    hp = read_mace(m, where)
    last_only, cls = hp.pop("_last_readout_only"), hp.pop("_class")
    if dtype is None:
        dtype = "float64" if m.r_max.dtype == torch.float64 else "float32"
    model = MACE(**hp, dtype=dtype, tp_backend=tp_backend)  # weights are mapped in float64, copied in its dtype
    inters, prods = _children(m.interactions), _children(m.products)
    readouts = _children(m.readouts)
    with torch.no_grad():
        model.embedding.weight.copy_(_map_linear(m.node_embedding.linear, model.embedding, f"{where}: node_embedding"))
        if hp["trainable_bessel"]:
            model.radial_embedding.bessel.freq.copy_(_f64(m.radial_embedding.bessel_fn.bessel_weights))
        T = hp["num_interactions"]
        for t in range(T):
            w = f"{where}: interactions[{t}]"
            src, inter = inters[t], model.interactions[t]
            inter.linear_up.weight.copy_(_map_linear(src.linear_up, inter.linear_up, f"{w}.linear_up"))
            inter.linear.weight.copy_(_map_linear(src.linear, inter.linear, f"{w}.linear"))
            inter.skip.linear.weight.copy_(_map_skip(src.skip_tp, inter.skip, f"{w}.skip_tp"))
            ws = _map_fc(src.conv_tp_weights, model.radials[t], f"{w}.conv_tp_weights")
            ws[-1] = ws[-1] * _map_conv_tp(src.conv_tp, inter.tp, f"{w}.conv_tp")[None, :]
            for p, v in zip(model.radials[t].weights, ws):
                p.copy_(v)
            pw = f"{where}: products[{t}]"
            prod = model.products[t]
            for p, v in zip(
                prod.contraction.weights, _map_contraction(prods[t].symmetric_contractions, prod.contraction, pw)
            ):
                p.copy_(v)
            prod.mix.weight.copy_(_map_linear(prods[t].linear, prod.mix, f"{pw}.linear"))
            rw = f"{where}: readouts[{t}]"
            if t < T - 1:
                if last_only:
                    model.readouts[t].weight.zero_()
                else:
                    model.readouts[t].weight.copy_(_map_linear(readouts[t].linear, model.readouts[t], rw))
            else:
                for p, v in zip(model.readouts[t].weights, _readout_mlp(readouts[-1], model.readouts[t], rw)):
                    p.copy_(v)
    model.mace_torch_class = cls
    return model


def from_mace(path: str, dtype: str | None = None, tp_backend: str = "cg"):
    """Import a mace-torch model file as an equivar :class:`~equivar.models.mace.MACE`.

    Parameters
    ----------
    path : str
        A mace-torch ``.model`` file (``torch.save`` of a ``MACE`` or ``ScaleShiftMACE`` with
        ``RealAgnosticResidualInteractionBlock`` interactions: the mace-torch defaults, the rMD17 recipe,
        the MACE-MP/OFF foundation models' architecture). Read without mace-torch or e3nn and without
        executing anything from the file (:mod:`equivar.models.mace._unpickle`).
    dtype : {'float32', 'float64'}, optional
        The returned model's dtype; default: the file's (mace-torch trains in float64 by default).
    tp_backend : str
        equivar tensor-product backend of the edge products ('cg').

    Returns
    -------
    MACE
        In eval mode, ``hparams`` complete (``isolation_width=None``, ``residual_first=True``), energies
        (eV), forces (eV/Å), stress (eV/Å^3) equal to mace-torch's to round-off (1e-6 relative in
        float64 is what the tests require; they measure ~1e-12).

    Raises
    ------
    FileNotFoundError
        no file.
    ValueError
        not a mace-torch model file, or a variant equivar does not implement: one line naming the
        file and the class or option (e.g. ``RealAgnosticDensityInteractionBlock``, ``heads``,
        ``pair_repulsion``).

    Examples
    --------
    >>> from equivar.models.mace import from_mace            # doctest: +SKIP
    >>> model = from_mace("MACE_model.model")                 # doctest: +SKIP
    """
    if dtype not in (None, "float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    stub = load_stubs(path)
    if not isinstance(stub, Stub):
        raise ValueError(f"{path}: holds a {type(stub).__name__}, not a pickled mace-torch model")
    return convert_stub(stub, where=os.fspath(path), dtype=dtype, tp_backend=tp_backend).eval()
