"""Tiny brute-force graphs for the model tests (no dependency on equivar.data)."""

from __future__ import annotations

import itertools

import torch


def neighbour_list(positions, r_max, cell=None, pbc=(False, False, False), max_shift=2):
    """All (sender j, receiver i, unit shift S) with 0 < |x_i - x_j + S @ cell| < r_max."""
    positions = positions.double()
    ranges = [range(-max_shift, max_shift + 1) if p else range(0, 1) for p in pbc]
    cell = torch.zeros(3, 3, dtype=torch.float64) if cell is None else cell.double()
    senders, receivers, units = [], [], []
    for S in itertools.product(*ranges):
        Sv = torch.tensor(S, dtype=torch.float64)
        shift = Sv @ cell
        vec = positions[None, :, :] - positions[:, None, :] + shift  # [j, i]: x_i - x_j + shift
        d = vec.norm(dim=-1)
        mask = (d > 1e-8) & (d < r_max)
        j, i = mask.nonzero(as_tuple=True)
        senders.append(j)
        receivers.append(i)
        units.append(Sv.expand(len(j), 3))
    return torch.cat(senders), torch.cat(receivers), torch.cat(units)


def make_batch(frames, r_max, dtype=torch.float64):
    """Batch dict (docs/contracts.md) from frames ``(positions [n,3], Z [n], cell [3,3] or None, pbc)``."""
    pos, Z, bat, ei, us, sh, cells, pbcs, ptr = [], [], [], [], [], [], [], [], [0]
    for g, fr in enumerate(frames):
        p, z = fr[0], fr[1]
        cell = fr[2] if len(fr) > 2 and fr[2] is not None else torch.zeros(3, 3, dtype=torch.float64)
        pbc = fr[3] if len(fr) > 3 else (False, False, False)
        s, r, u = neighbour_list(p, r_max, cell, pbc)
        off = ptr[-1]
        pos.append(p.double())
        Z.append(torch.as_tensor(z, dtype=torch.long))
        bat.append(torch.full((len(p),), g, dtype=torch.long))
        ei.append(torch.stack([s, r]) + off)
        us.append(u)
        sh.append(u @ cell.double())
        cells.append(cell.double())
        pbcs.append(torch.tensor(pbc))
        ptr.append(off + len(p))
    return dict(
        positions=torch.cat(pos).to(dtype),
        atomic_numbers=torch.cat(Z),
        batch=torch.cat(bat),
        ptr=torch.tensor(ptr),
        edge_index=torch.cat(ei, 1),
        unit_shifts=torch.cat(us).to(dtype),
        shifts=torch.cat(sh).to(dtype),
        cell=torch.stack(cells).to(dtype),
        pbc=torch.stack(pbcs),
    )


def random_molecule(n, elements, gen, spread=1.2, min_dist=0.9):
    """Random positions with pairwise distances >= min_dist, and random elements."""
    pts = []
    while len(pts) < n:
        p = torch.randn(3, generator=gen, dtype=torch.float64) * spread
        if all((p - q).norm() >= min_dist for q in pts):
            pts.append(p)
    Z = [elements[int(i)] for i in torch.randint(len(elements), (n,), generator=gen)]
    return torch.stack(pts), torch.tensor(Z)


#: a small MACE (4 channels, L=1, correlation 3, two layers, r_max 3 Å) shared by the model tests
SMALL_MACE = dict(
    r_max=3.0,
    num_bessel=4,
    max_ell=2,
    num_channels=4,
    max_L=1,
    correlation=3,
    num_interactions=2,
    atomic_numbers=[1, 6, 8],
    atomic_energies=[-0.5, -37.8, -75.0],
    avg_num_neighbors=4.0,
    radial_mlp=[16, 16],
    readout_mlp=8,
)
