"""Frame averaging: make any backbone exactly O(3) / SO(3) / E(3) / SE(3) equivariant.

Source: Puny, Atzmon, Ben-Hamu, Misra, Grover, Smith, Lipman, "Frame
Averaging for Invariant and Equivariant Network Design", ICLR 2022.

``FA(x) = 1/|F(x)| sum_{g in F(x)} rho_out(g) f(rho_in(g)^-1 x)`` over the
frames of the point cloud (PCA frames, with the degenerate-covariance
strategy of :mod:`._frames`); for E(3)/SE(3), ``g = (F, centroid)``.
"""

from __future__ import annotations

import collections

import torch

from ._frames import CASES, batched_pca_frames, default_tolerances, frame_set
from ._types import GroupElement, act, map_structure, norm_type

_GROUPS = {"O3": (False, False), "SO3": (True, False), "E3": (False, True), "SE3": (True, True)}


class FrameAveraging(torch.nn.Module):
    r"""Wrap ``backbone`` so that it becomes equivariant by frame averaging.

    Parameters
    ----------
    backbone : callable
        ``backbone(*args)`` on batched inputs (leading axis = samples),
        returning a tensor, tuple or dict with a leading sample axis. It is
        called once per forward on all ``(sample, frame)`` pairs stacked
        along axis 0.
    group : {'O3', 'SO3', 'E3', 'SE3'}
        'E3'/'SE3' also centre on the centroid (translations); 'SO3'/'SE3'
        use proper frames only (4 PCA frames, third axis ``e1 x e2``).
    in_types : sequence
        One type per input (see :mod:`equivar.symmetry._types`): e.g.
        ``["positions", "0e"]`` for positions ``[B, N, 3]`` and invariant
        node features ``[B, N, C]``; vectors and irreps features are rotated
        into the frame with ``D(F^T)``.
    out_types : type or structure of types
        How outputs transform: ``"0e"`` (invariant), ``"1o"``, irreps,
        ``"positions"`` (rotated and re-centred), ``None`` (averaged as is).
    stochastic : bool
        In training mode, use one frame per sample drawn uniformly from its
        frame set (unbiased estimate; Puny et al. Sec. 3); eval mode always
        averages over all frames.
    frame_input : int, optional
        Index of the input defining the frames; default the first input of
        type ``'positions'`` (or ``'1o'``).
    eig_tol, tie_tol : float, optional
        Relative eigenvalue-gap and tie tolerances (default from the dtype,
        see :func:`equivar.symmetry._frames.default_tolerances`).
    n_average : int
        Rotations about the axis used when collinear clouds leave the plane
        direction undefined (exact for output degrees ``l < n_average``).
    max_frames : int
        Cap on frames per sample (counted in ``stats['truncated']``).
    seed : int, optional
        Seeds the stochastic frame choice.
    frame_grad : bool
        Differentiate through the PCA frames when the frame input requires
        gradients (default). ``False`` treats the frames as constants, as
        Puny et al.'s code does (``symeig`` of the detached covariance); the
        average is equivariant either way, the gradient then omits the
        frames' dependence on the input.

    Shapes
    ------
    Frame input ``[B, N, 3]`` (or ``[N, 3]``: one sample; outputs then have
    no sample axis). Every tensor input has the same leading ``B``.

    Attributes
    ----------
    stats : collections.Counter
        ``samples`` seen, count per case (``pca``, ``axis+points``,
        ``axis+average``, ``points``, ``isotropic``), ``truncated`` and
        ``frames`` (total frames evaluated). ``degenerate_count`` is the
        number of samples that did not use plain PCA frames.

    Raises
    ------
    ValueError
        Unknown group, no frame input, wrong shapes, non-finite positions.

    Notes
    -----
    Gradients: with ``frame_grad`` (default), in the ``pca`` case frames are differentiable (eigenvalue gaps
    are bounded below by ``eig_tol``); in degenerate cases frames are
    treated as constants, so ``d FA / d x`` is the frame average of the
    backbone gradient (still exactly equivariant).

    Examples
    --------
    >>> import torch
    >>> mlp = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 1))
    >>> fa = FrameAveraging(mlp, "E3", ["positions"], "0e")
    >>> fa(torch.randn(2, 4, 3)).shape
    torch.Size([2, 1])
    """

    def __init__(
        self,
        backbone,
        group: str = "E3",
        in_types=("positions",),
        out_types="0e",
        *,
        stochastic: bool = False,
        frame_input: int | None = None,
        eig_tol: float | None = None,
        tie_tol: float | None = None,
        n_average: int = 12,
        max_frames: int = 512,
        seed: int | None = None,
        frame_grad: bool = True,
    ):
        super().__init__()
        if group not in _GROUPS:
            raise ValueError(f"group must be one of {sorted(_GROUPS)}, got {group!r}")
        self.backbone = backbone
        self.group = group
        self.proper, self.translations = _GROUPS[group]
        self.in_types = list(in_types)
        self.out_types = out_types
        infos = [norm_type(t) for t in self.in_types]
        if frame_input is None:
            frame_input = next((i for i, t in enumerate(infos) if t.kind == "positions"), None)
            if frame_input is None and not self.translations:
                frame_input = next(
                    (i for i, t in enumerate(infos) if t.kind == "irreps" and str(t.irreps) == "1x1o"), None
                )
        if frame_input is None:
            raise ValueError("FrameAveraging needs an input of type 'positions' (or give frame_input)")
        self.frame_input = frame_input
        self.stochastic = stochastic
        self.eig_tol, self.tie_tol = eig_tol, tie_tol
        self.n_average, self.max_frames = n_average, max_frames
        self.frame_grad = frame_grad
        self._gen = torch.Generator().manual_seed(seed) if seed is not None else None
        self.stats: collections.Counter = collections.Counter()

    @property
    def degenerate_count(self) -> int:
        """Samples whose covariance was degenerate (any case other than ``pca``)."""
        return sum(self.stats[c] for c in CASES if c != "pca")

    def reset_stats(self) -> None:
        self.stats.clear()

    def frames(self, X: torch.Tensor) -> list[torch.Tensor]:
        """Frame sets ``[K_b, 3, 3]`` (float64) of each sample of ``X [B, N, 3]``; updates ``stats``.

        The ``pca`` case is decided and computed for all samples at once (one
        batched ``eigh``); only the other samples go through :func:`frame_set`.
        """
        eig_tol, tie_tol = default_tolerances(X.dtype)
        eig_tol = self.eig_tol if self.eig_tol is not None else eig_tol
        tie_tol = self.tie_tol if self.tie_tol is not None else tie_tol
        if not torch.isfinite(X).all():
            raise ValueError("FrameAveraging: the frame input is not finite")
        grad = self.frame_grad and X.requires_grad and torch.is_grad_enabled()
        pca_sets, pca = batched_pca_frames(X, proper=self.proper, eig_tol=eig_tol, tie_tol=tie_tol, grad=grad)
        out = []
        for b, is_pca in enumerate(pca.tolist()):
            self.stats["samples"] += 1
            if is_pca:
                self.stats["pca"] += 1
                out.append(pca_sets[b])
                continue
            fs = frame_set(
                X[b],
                proper=self.proper,
                use_centroid=not self.translations,
                eig_tol=eig_tol,
                tie_tol=tie_tol,
                n_average=self.n_average,
                max_frames=self.max_frames,
            )
            self.stats[fs.case] += 1
            self.stats["truncated"] += int(fs.truncated)
            out.append(fs.frames)
        return out

    def forward(self, *args):
        if len(args) != len(self.in_types):
            raise ValueError(f"FrameAveraging got {len(args)} inputs but {len(self.in_types)} in_types")
        X = args[self.frame_input]
        if not isinstance(X, torch.Tensor) or X.shape[-1] != 3 or X.dim() not in (2, 3):
            raise ValueError(f"frame input must be a tensor [B, N, 3] or [N, 3], got {getattr(X, 'shape', X)}")
        single = X.dim() == 2
        if single:
            args = tuple(a.unsqueeze(0) if isinstance(a, torch.Tensor) else a for a in args)
            X = args[self.frame_input]
        B = X.shape[0]
        for a in args:
            if isinstance(a, torch.Tensor) and a.shape[0] != B:
                raise ValueError(f"every tensor input needs the sample axis 0 of size {B}, got shape {tuple(a.shape)}")
        frames = self.frames(X)
        if self.stochastic and self.training:
            pick = [int(torch.randint(len(F), (1,), generator=self._gen)) for F in frames]
            frames = [F[i : i + 1] for F, i in zip(frames, pick)]
        counts = torch.tensor([len(F) for F in frames])
        self.stats["frames"] += int(counts.sum())
        b_idx = torch.repeat_interleave(torch.arange(B), counts).to(X.device)
        F = torch.cat(frames).to(X.device)
        t = X.to(torch.float64).mean(1).index_select(0, b_idx) if self.translations else None
        g = GroupElement(R=F, t=t)
        ginv = g.inverse()
        canon = [
            act(a.index_select(0, b_idx), typ, ginv) if isinstance(a, torch.Tensor) else a
            for a, typ in zip(args, self.in_types)
        ]
        y = self.backbone(*canon)
        w = (1.0 / counts.to(torch.float64)).repeat_interleave(counts).to(X.device)

        def back(v, typ):
            if not isinstance(v, torch.Tensor):
                return v
            if v.shape[0] != len(b_idx):
                raise ValueError(f"backbone output of shape {tuple(v.shape)} lacks the sample axis ({len(b_idx)} rows)")
            v = act(v, typ, g) if typ is not None else v
            wv = w.to(v.dtype).reshape((-1,) + (1,) * (v.dim() - 1))
            out = torch.zeros((B,) + v.shape[1:], dtype=v.dtype, device=v.device).index_add(0, b_idx, v * wv)
            return out[0] if single else out

        return map_structure(y, self.out_types, back)
