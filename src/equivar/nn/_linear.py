"""Equivariant linear maps between irreps (e3nn ``o3.Linear`` semantics)."""

from __future__ import annotations

import math

import torch

from ..o3 import Irrep, Irreps


class Linear(torch.nn.Module):
    r"""Equivariant linear layer: per-irrep-type channel mixing.

    Every input block ``mul_in x ir`` is connected to every output block
    ``mul_out x ir`` with the same irrep by a ``[mul_in, mul_out]`` weight
    matrix; blocks of different irreps never mix (Schur's lemma). Each
    output is divided by ``sqrt(fan_in)``, ``fan_in`` being the total input
    multiplicity of its irrep (e3nn's ``'element'`` path normalization), so
    with unit-variance inputs and the default ``N(0, 1)`` weights the
    outputs have unit variance, however the irreps are split into blocks.

    Same semantics, weight layout and initialisation as
    ``e3nn.o3.Linear(irreps_in, irreps_out)`` (internal, shared weights):
    ``weight`` is the concatenation over instructions
    ``[(i_in, i_out) for i_in ... for i_out ... if ir_in == ir_out]`` of the
    flattened ``[mul_in, mul_out]`` matrices, so e3nn weights can be copied
    in directly.

    The forward pass runs one matrix multiplication per irrep *type*
    (input blocks of the same irrep are concatenated), not one per block
    pair.

    Parameters
    ----------
    irreps_in, irreps_out : Irreps or str
    biases : bool
        Add a learned bias (initialised to 0) to every ``0e`` output block.

    Shapes
    ------
    ``x [..., irreps_in.dim] -> [..., irreps_out.dim]``, in the module's
    dtype (float32 by default; use ``.to(torch.float64)``). Output blocks
    whose irrep has no input are 0.

    Raises
    ------
    ValueError
        In ``forward``, if the last axis of ``x`` is not ``irreps_in.dim``.

    Notes
    -----
    ``load_state_dict`` accepts an e3nn ``o3.Linear`` state dict with
    ``strict=True`` (its constant ``output_mask`` is checked and dropped,
    an empty ``bias`` dropped); :func:`equivar.nn.e3nn_state_dict` gives the
    other direction and :func:`equivar.nn.from_e3nn` converts the module.

    Examples
    --------
    >>> lin = Linear("4x0e+2x1o", "3x0e+1x1o")
    >>> lin(torch.randn(10, 10)).shape
    torch.Size([10, 6])
    """

    def __init__(self, irreps_in, irreps_out, biases: bool = False):
        super().__init__()
        self.irreps_in = Irreps(irreps_in)
        self.irreps_out = Irreps(irreps_out)
        ins, outs = self.irreps_in, self.irreps_out
        self.instructions = [(i, j) for i, (_, a) in enumerate(ins) for j, (_, b) in enumerate(outs) if a == b]
        offsets, n = [], 0
        for i, j in self.instructions:
            offsets.append(n)
            n += ins[i].mul * outs[j].mul
        self.weight_numel = n
        self.weight = torch.nn.Parameter(torch.randn(n))

        # group by irrep type
        types: list[Irrep] = []
        for _, ir in outs:
            if ir not in types and ir in ins:
                types.append(ir)
        in_sl, _out_sl = ins.slices(), outs.slices()
        self._groups = []
        for ir in types:
            bi = [i for i, (m, r) in enumerate(ins) if r == ir and m > 0]
            bo = [j for j, (m, r) in enumerate(outs) if r == ir and m > 0]
            mi = sum(ins[i].mul for i in bi)
            mo = sum(outs[j].mul for j in bo)
            if mi == 0 or mo == 0:
                continue
            # pieces of the [mi, mo] matrix in (row block, col block) order
            pieces = []
            for i in bi:
                row = []
                for j in bo:
                    k = self.instructions.index((i, j))
                    row.append((offsets[k], ins[i].mul, outs[j].mul))
                pieces.append(row)
            slices = [in_sl[i] for i in bi]
            # adjacent blocks of one irrep are one contiguous [mi, d] slice (e.g. sorted TP outputs)
            if all(a.stop == b.start for a, b in zip(slices[:-1], slices[1:])):
                slices = [slice(slices[0].start, slices[-1].stop)]
            # the stacked [mi, mo] matrix is one contiguous piece of the flat weight when there is
            # one output block and the instructions of the input blocks are consecutive
            contig = None
            if len(bo) == 1:
                offs = [row[0][0] for row in pieces]
                sizes = [row[0][1] * row[0][2] for row in pieces]
                if all(offs[k] + sizes[k] == offs[k + 1] for k in range(len(offs) - 1)):
                    contig = offs[0]
            self._groups.append(
                dict(
                    ir=ir,
                    d=ir.dim,
                    mi=mi,
                    mo=mo,
                    in_slices=slices,
                    out_blocks=bo,
                    pieces=pieces,
                    alpha=1.0 / math.sqrt(mi),
                    contig=contig,
                )
            )
        # where every output block comes from: (group index, channel offset) or None
        # one split of the input into the (merged) group slices: SplitBackward is one cat,
        # where per-slice indexing would zero-fill a full-width gradient per slice
        bounds = sorted({0, ins.dim} | {v for g in self._groups for sl in g["in_slices"] for v in (sl.start, sl.stop)})
        self._split_sizes = [b - a for a, b in zip(bounds[:-1], bounds[1:])]
        for g in self._groups:
            g["pieces_idx"] = [bounds.index(sl.start) for sl in g["in_slices"]]
        self._out_src = []
        for j, (mul, ir) in enumerate(outs):
            src = None
            for g, grp in enumerate(self._groups):
                if j in grp["out_blocks"]:
                    off = sum(outs[k].mul for k in grp["out_blocks"][: grp["out_blocks"].index(j)])
                    src = (g, off)
            self._out_src.append(src)
        self._bias_blocks = [j for j, (mul, ir) in enumerate(outs) if ir == Irrep("0e") and mul > 0] if biases else []
        nb = sum(outs[j].mul for j in self._bias_blocks)
        self.bias = torch.nn.Parameter(torch.zeros(nb)) if biases and nb > 0 else None

    def e3nn_output_mask(self) -> torch.Tensor:
        """e3nn ``Linear.output_mask``: 1 on output blocks fed by an input block or a bias, else 0 ``[irreps_out.dim]``."""
        fed = {j for i, j in self.instructions if self.irreps_in[i].mul > 0 and self.irreps_out[j].mul > 0}
        fed |= set(self._bias_blocks)
        parts = [torch.full((m * ir.dim,), 1.0 if j in fed else 0.0) for j, (m, ir) in enumerate(self.irreps_out)]
        return torch.cat(parts) if parts else torch.ones(0)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        # an e3nn o3.Linear state dict also holds `output_mask` (a constant) and `bias` of shape (0,) without biases
        key = prefix + "output_mask"
        if key in state_dict:
            mask = state_dict.pop(key)
            if not torch.equal(mask.detach().cpu().to(torch.float32), self.e3nn_output_mask()):
                error_msgs.append(f"{key}: does not match this layer's irreps ({self.irreps_in} -> {self.irreps_out})")
        key = prefix + "bias"
        if self.bias is None and key in state_dict and state_dict[key].numel() == 0:
            state_dict.pop(key)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def _matrix(self, g) -> torch.Tensor:
        if g["contig"] is not None:
            return self.weight.narrow(0, g["contig"], g["mi"] * g["mo"]).view(g["mi"], g["mo"])
        rows = []
        for row in g["pieces"]:
            cols = [self.weight.narrow(0, o, a * b).view(a, b) for o, a, b in row]
            rows.append(cols[0] if len(cols) == 1 else torch.cat(cols, 1))
        return rows[0] if len(rows) == 1 else torch.cat(rows, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.irreps_in.dim:
            raise ValueError(
                f"Linear: expected last dim {self.irreps_in.dim} ({self.irreps_in}), got shape {tuple(x.shape)}"
            )
        batch = x.shape[:-1]
        x = x.reshape(-1, x.shape[-1])
        B = x.shape[0]
        outs = []
        pieces = x.split(self._split_sizes, 1) if len(self._split_sizes) > 1 else (x,)
        for g in self._groups:
            d = g["d"]
            W = self._matrix(g) * g["alpha"]
            if d == 1:
                parts = [pieces[k] for k in g["pieces_idx"]]
                xi = parts[0] if len(parts) == 1 else torch.cat(parts, 1)  # [B, mi]
                outs.append((xi @ W).unsqueeze(-1))  # [B, mo, 1]
            else:
                parts = [pieces[k].reshape(B, -1, d) for k in g["pieces_idx"]]
                xi = parts[0] if len(parts) == 1 else torch.cat(parts, 1)  # [B, mi, d]
                y = torch.matmul(xi.transpose(1, 2), W)  # [B, d, mo]
                outs.append(y.transpose(1, 2))  # [B, mo, d]
        blocks = []
        bias_off = 0
        for j, (mul, ir) in enumerate(self.irreps_out):
            src = self._out_src[j]
            if src is None:
                blk = x.new_zeros(B, mul * ir.dim)
            else:
                g, off = src
                y = outs[g]
                if y.shape[1] != mul:
                    y = y[:, off : off + mul]
                blk = y.reshape(B, mul * ir.dim)
            if j in self._bias_blocks:
                blk = blk + self.bias[bias_off : bias_off + mul]
                bias_off += mul
            blocks.append(blk)
        out = blocks[0] if len(blocks) == 1 else torch.cat(blocks, -1)
        return out.reshape(batch + (self.irreps_out.dim,))

    def extra_repr(self) -> str:
        return f"{self.irreps_in} -> {self.irreps_out} | {self.weight_numel} weights"
