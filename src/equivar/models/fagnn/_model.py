"""FA-GNN for dynamics (Puny et al., "Frame Averaging for Invariant and Equivariant Network Design", ICLR 2022).

The N-body model of the paper (section 5.3; the authors' ``FA_GNN`` in
``nbody/n_body_system/model_FA.py`` of github.com/omri1348/Frame-Averaging,
run by ``nbody/nbody.py`` and ``run.sh``), made of a plain message-passing
network (:class:`equivar.nn.GNN`: a linear embedding, ``num_layers``
:class:`equivar.nn.GCL` layers, a Linear-SiLU-Linear decoder) and
:class:`equivar.symmetry.FrameAveraging` (E(3): the 2^3 sign choices of the
PCA axes of the centred cloud; SE(3): the 4 proper ones):

``frames='layerwise'`` (the authors' code, default)
    Layer 0: the PCA frames of the positions; each frame sees the centred
    positions and the velocities in its coordinates (6 numbers per node),
    embedded and passed through ``GCL_0``. The ``hidden_dim`` outputs of a
    node are read as ``hidden_dim / 3`` vectors, mapped back by their frame
    and averaged over the frames. Layer ``k >= 1``: the same with the PCA
    frames of those ``N hidden_dim / 3`` latent vectors (centred on their
    mean), applied to ``GCL_k``; after the last layer the decoder's 3 numbers
    per node are mapped back by the last (latent) frames, averaged, and the
    centroid of the input positions is added. Each layer is exactly
    O(3)-equivariant in its vectors, so the whole network is E(3)-equivariant.
``frames='global'`` (the textbook form, Puny et al. eq. 3)
    One frame average around the whole :class:`~equivar.nn.GNN`: outputs
    ``F y + centroid`` averaged over the PCA frames of the positions.

Edge attributes: the batch's ``edge_attr`` (``q_i q_j``) and the squared
distance of the input positions (invariants, the same in every frame), as
both N-body codes. Frames are constants for the gradient (the authors take
``symeig`` of the detached covariance): ``FrameAveraging(frame_grad=False)``.

Degenerate PCA (repeated eigenvalues, relative gap below ``eig_tol``: 1e-2 in
float32, 1e-4 in float64) is handled by :func:`equivar.symmetry.frame_set`
deterministically: the unique axis plus the in-plane direction of the
farthest points (all ties kept), or point-defined frames for isotropic
clouds, or a finite rotation group for coincident points; so the output is
exactly equivariant there too (up to the ``n_average`` caveat of collinear
clouds), never NaN. ``model.fa_stats`` counts the cases seen.

The recipe (``run.sh``): 60 hidden features, 4 layers, SiLU, residual node
updates, Adam lr 1e-3, weight decay 1e-12, batch 100, 10000 epochs, test MSE
at the best validation MSE (evaluated every 5 epochs); published 0.0057.
"""

from __future__ import annotations

import collections

import torch

from ...nn import GNN
from ...symmetry import FrameAveraging
from .._registry import _is_int

_FRAMES = ("layerwise", "global")
_GROUPS = ("E3", "SE3")


def complete_graph(n: int, device=None) -> torch.Tensor:
    """``[2, n (n - 1)]`` edges ``j -> i`` (row 0 sender) of the complete graph, grouped by receiver ``i``."""
    idx = torch.arange(n, device=device)
    recv = idx.repeat_interleave(n)
    send = idx.repeat(n)
    keep = recv != send
    return torch.stack([send[keep], recv[keep]])


def _copies(edges: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """``edges`` of one ``n``-node graph repeated for ``m`` disjoint copies (still grouped by receiver)."""
    offsets = (torch.arange(m, device=edges.device) * n).repeat_interleave(edges.shape[1])
    return edges.repeat(1, m) + offsets


class FAGNN(torch.nn.Module):
    """E(3)-equivariant dynamics by frame averaging a plain GNN (Puny et al., ICLR 2022).

    Parameters
    ----------
    hidden_dim : int
        Hidden features (60); a multiple of 3 with ``frames='layerwise'``
        (read as ``hidden_dim / 3`` vectors between layers).
    num_layers : int
        :class:`~equivar.nn.GCL` layers (4).
    edge_attr_dim : int
        Invariant pair attributes of the batch (``edge_attr``; 1 for charged
        N-body, ``q_i q_j``); the squared input distance is appended.
    node_attr_dim : int
        Invariant node attributes appended to the 6 canonical coordinates
        (0: the authors feed the charges through the edges only).
    activation : str
        ``'silu'`` (the authors'), ``'relu'`` or ``'leaky_relu'``.
    residual : bool
        Residual node updates (the authors' ``recurrent=True``).
    frames : {'layerwise', 'global'}
        Frame averaging after every layer on latent vectors (the authors'
        code) or once around the whole GNN (see the module docstring).
    group : {'E3', 'SE3'}
        8 PCA sign frames (rotations and reflections, the authors') or the 4
        proper ones.

    Raises
    ------
    ValueError
        An option out of range or of the wrong type (the message names it);
        in ``forward``: positions not 3D, graphs that are not complete per
        scene, ``edge_attr`` of the wrong width.

    Shapes
    ------
    ``model(batch)`` with the dynamics batch of ``docs/contracts.md``
    (``pos``, ``vel`` [N, T_in, 3], the last observed frame is used;
    ``edge_index`` [2, E], the complete graph of each scene; ``edge_attr``
    [E, edge_attr_dim]; ``node_attr`` [N, node_attr_dim]; ``batch`` [N], the scene
    of each agent; ``ptr`` [G+1])
    returns ``{"pos": [N, 1, 3]}``. Equivariant under rotations and
    reflections (``group='E3'``; rotations only for ``'SE3'``) of ``pos``,
    ``vel`` and the output, translations of ``pos`` and the output, and
    permutations of the agents of a scene.

    Attributes
    ----------
    gnn : :class:`equivar.nn.GNN`
        The backbone (all parameters).
    fa_stats : collections.Counter
        Frame cases seen (``pca``, ``axis+points``, ...; see
        :class:`~equivar.symmetry.FrameAveraging`), summed over layers.
    """

    def __init__(
        self,
        hidden_dim: int = 60,
        num_layers: int = 4,
        edge_attr_dim: int = 1,
        node_attr_dim: int = 0,
        activation: str = "silu",
        residual: bool = True,
        frames: str = "layerwise",
        group: str = "E3",
    ):
        super().__init__()
        for key, value, low in (
            ("hidden_dim", hidden_dim, 1),
            ("num_layers", num_layers, 1),
            ("edge_attr_dim", edge_attr_dim, 0),
            ("node_attr_dim", node_attr_dim, 0),
        ):
            if not _is_int(value, low):
                raise ValueError(f"{key} must be an integer >= {low}, got {value!r}")
        if not isinstance(residual, bool):
            raise ValueError(f"residual must be true or false, got {residual!r}")
        if frames not in _FRAMES:
            raise ValueError(f"frames must be 'layerwise' or 'global', got {frames!r}")
        if group not in _GROUPS:
            raise ValueError(f"group must be 'E3' or 'SE3', got {group!r}")
        if frames == "layerwise" and hidden_dim % 3:
            raise ValueError(f"hidden_dim must be a multiple of 3 with frames='layerwise', got {hidden_dim!r}")
        self.hidden_dim, self.num_layers = hidden_dim, num_layers
        self.edge_attr_dim, self.node_attr_dim = edge_attr_dim, node_attr_dim
        self.frames, self.group = frames, group
        self.gnn = GNN(6 + node_attr_dim, hidden_dim, 3, num_layers, edge_attr_dim + 1, activation, residual)
        self.fa_stats: collections.Counter = collections.Counter()

    def _fa(self, backbone, in_types, out_types):
        return FrameAveraging(backbone, self.group, in_types, out_types, frame_grad=False)

    def _average(self, fa: FrameAveraging, *args):
        out = fa(*args)
        self.fa_stats.update(fa.stats)
        return out

    # ---- one group of scenes of n agents each, dense [G, n, ...] ----

    def _scenes(self, pos, vel, node_attr, pair):
        """``pos``, ``vel`` [G, n, 3]; ``node_attr`` [G, n, F]; ``pair`` [G, n (n - 1), A + 1] -> ``[G, n, 3]``."""
        n = pos.shape[1]
        edges = complete_graph(n, pos.device)
        degree = n - 1 if n > 1 else None
        gnn = self.gnn

        def graph(m):
            return _copies(edges, n, m)

        def first_input(p, v, a):
            return gnn.embedding(torch.cat([p, v, a], -1).reshape(p.shape[0] * n, -1))

        if self.frames == "global":

            def whole(p, v, a, e):
                m = p.shape[0]
                h = first_input(p, v, a)
                for layer in gnn.layers:
                    h = layer(h, graph(m), e.reshape(m * e.shape[1], -1), degree)
                return gnn.decoder(h).reshape(m, n, 3)

            fa = self._fa(whole, ["positions", "1o", None, None], "positions")
            return self._average(fa, pos, vel, node_attr, pair)

        last = self.num_layers - 1

        def block(k):
            def run(x, *rest):
                m = x.shape[0]
                e = rest[-1]
                h = first_input(x, *rest[:-1]) if k == 0 else x.reshape(m * n, -1)
                h = gnn.layers[k](h, graph(m), e.reshape(m * e.shape[1], -1), degree)
                if k == last:
                    return gnn.decoder(h).reshape(m, n, 3)
                return h.reshape(m, -1, 3)  # hidden_dim / 3 vectors per node

            return run

        fa = self._fa(block(0), ["positions", "1o", None, None], "1o")
        z = self._average(fa, pos, vel, node_attr, pair)
        for k in range(1, self.num_layers):
            fa = self._fa(block(k), ["positions", None], "1o")  # latent vectors, centred on their mean
            z = self._average(fa, z, pair)
        return pos.mean(1, keepdim=True) + z

    def forward(self, batch) -> dict:
        pos = batch["pos"][:, -1]
        vel = batch["vel"][:, -1]
        if pos.shape[-1] != 3:
            raise ValueError(f"FA-GNN: positions must be 3D (PCA frames of R^3), got D={pos.shape[-1]}")
        n_total = pos.shape[0]
        scene = batch["batch"]  # scene of each agent (agents of a scene need not be contiguous)
        sizes = torch.bincount(scene, minlength=len(batch["ptr"]) - 1)
        node_attr = batch.get("node_attr")
        if self.node_attr_dim:
            if node_attr is None or node_attr.shape[-1] != self.node_attr_dim:
                got = None if node_attr is None else node_attr.shape[-1]
                raise ValueError(
                    f"FA-GNN: batch node_attr has {got} features, the model was built for {self.node_attr_dim}"
                )
            node_attr = node_attr.to(pos.dtype)
        else:
            node_attr = pos.new_zeros(n_total, 0)
        send, recv = batch["edge_index"]
        if send.numel() != int((sizes * (sizes - 1)).sum()) or bool((scene[send] != scene[recv]).any()):
            raise ValueError("FA-GNN: edge_index must be the complete graph of each scene (docs/contracts.md)")
        edge_attr = batch.get("edge_attr")
        if self.edge_attr_dim:
            if edge_attr is None or edge_attr.shape[-1] != self.edge_attr_dim:
                got = None if edge_attr is None else edge_attr.shape[-1]
                raise ValueError(
                    f"FA-GNN: batch edge_attr has {got} features, the model was built for {self.edge_attr_dim}"
                )
            edge_attr = edge_attr.to(pos.dtype)
        else:
            edge_attr = pos.new_zeros(send.numel(), 0)
        # agents sorted by scene (stable): scene s holds order[start[s] : start[s] + sizes[s]]
        order = torch.sort(scene, stable=True).indices
        start = torch.cumsum(sizes, 0) - sizes
        local = torch.empty_like(order)
        local[order] = torch.arange(n_total, device=pos.device) - start[scene[order]]
        out = torch.empty_like(pos)
        for n in sorted(set(sizes.tolist())):
            if n == 0:
                continue
            scenes = torch.nonzero(sizes == n).flatten()
            g = len(scenes)
            nodes = order[(start[scenes][:, None] + torch.arange(n, device=pos.device)).flatten()]  # [g n]
            # the batch's edge attributes, in the complete-graph order the backbone uses
            rank = torch.full((len(sizes),), -1, dtype=torch.long, device=pos.device)
            rank[scenes] = torch.arange(g, device=pos.device)
            sel = rank[scene[recv]] >= 0
            dense = edge_attr.new_zeros(g, n, n, edge_attr.shape[-1])
            dense[rank[scene[recv[sel]]], local[recv[sel]], local[send[sel]]] = edge_attr[sel]
            j, i = complete_graph(n, pos.device)
            p = pos[nodes].reshape(g, n, 3)
            dist2 = ((p[:, i] - p[:, j]) ** 2).sum(-1, keepdim=True)
            pair = torch.cat([dense[:, i, j], dist2], -1)  # [g, n (n - 1), A + 1]
            y = self._scenes(p, vel[nodes].reshape(g, n, 3), node_attr[nodes].reshape(g, n, -1), pair)
            out[nodes] = y.reshape(g * n, 3)
        return {"pos": out.unsqueeze(1)}
