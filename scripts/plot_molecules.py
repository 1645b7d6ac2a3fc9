"""Ball-and-stick pictures of molecules from an SDF file (e.g. ``equivar sample`` or a training run's ``samples.sdf``).

    python scripts/plot_molecules.py runs/qm9_eqgat_diff/samples.sdf --count 12 --out docs/img/qm9_samples.png
    python scripts/plot_molecules.py a.sdf b.sdf --label EQGAT-diff EDM --count 8 --out both.png

One row per file, the first ``--count`` molecules in file order (no cherry-picking: pass ``--start`` to see
others). Each panel shows the 3D coordinates (Å) projected on their two principal axes of largest spread, the
bonds the file holds (double and triple bonds drawn as such), CPK colours, and the RDKit verdict as its title:
the canonical SMILES if the molecule sanitizes, else the first line of RDKit's complaint.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

import numpy as np

# CPK-style colours and drawing radii (Å) for QM9's elements
_STYLE = {1: ("#d9d9d9", 0.25), 6: ("#404040", 0.38), 7: ("#3050f8", 0.36), 8: ("#ff0d0d", 0.35), 9: ("#90e050", 0.33)}


def _verdict(mol, Chem) -> str:
    """Canonical SMILES of ``mol`` (a copy) if it sanitizes, else RDKit's first line of complaint."""
    m = Chem.Mol(mol)
    try:
        Chem.SanitizeMol(m)
    except Exception as e:  # RDKit raises several exception types for the same kind of failure
        msg = str(e).splitlines()[0].replace(", is greater than permitted", " (too high)")
        return "invalid: " + msg[:48]
    smi = Chem.MolToSmiles(Chem.RemoveHs(m, sanitize=False))
    return smi if "." not in smi else "disconnected: " + smi


def _draw(ax, mol, title: str) -> None:
    pos = mol.GetConformer().GetPositions()
    pos = pos - pos.mean(0)
    # project on the two principal axes of largest spread (a fixed, orientation-free view)
    _, _, vt = np.linalg.svd(pos, full_matrices=False) if len(pos) > 2 else (None, None, np.eye(3))
    xy = pos @ vt[:2].T
    depth = pos @ vt[2]
    for b in mol.GetBonds():
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        order = int(round(b.GetBondTypeAsDouble()))
        d = xy[j] - xy[i]
        n = np.array([-d[1], d[0]]) / (np.linalg.norm(d) + 1e-9)
        for k in range(max(order, 1)):
            off = (k - (order - 1) / 2) * 0.12 * n
            ax.plot(*(np.stack([xy[i], xy[j]]) + off).T, "-", color="#808080", lw=1.4, zorder=1)
    for a in np.argsort(depth):  # far atoms first
        colour, r = _STYLE.get(mol.GetAtomWithIdx(int(a)).GetAtomicNum(), ("#ff80ff", 0.35))
        ax.add_patch(_circle(xy[a], r, colour))
    ax.set_title("\n".join(textwrap.wrap(title, 26)[:2]), fontsize=7)
    ax.set_aspect("equal")
    ax.autoscale_view()
    lim = max(np.abs(xy).max() + 0.6, 2.5)  # one scale for QM9-sized molecules (Å)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.axis("off")


def _circle(xy, r, colour):
    from matplotlib.patches import Circle

    return Circle(xy, r, facecolor=colour, edgecolor="black", lw=0.6, zorder=2)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sdf", nargs="+")
    p.add_argument("--label", nargs="+", help="one row label per SDF file (default: the file names)")
    p.add_argument("--count", type=int, default=8)
    p.add_argument("--start", type=int, default=0, help="index of the first molecule shown")
    p.add_argument("--out", required=True, help="PNG to write (atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    args = p.parse_args(argv)
    if args.label and len(args.label) != len(args.sdf):
        print(f"error: --label: {len(args.label)} labels for {len(args.sdf)} SDF files", file=sys.stderr)
        return 2
    if args.count < 1 or args.start < 0:
        print(f"error: --count {args.count} / --start {args.start}: need count >= 1, start >= 0", file=sys.stderr)
        return 2
    from equivar._paths import check_output_file

    try:
        check_output_file(args.out, "--out", [("sdf", f) for f in args.sdf], overwrite=args.overwrite)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from equivar._paths import atomic_output
    from equivar.data import rdkit_chem

    Chem = rdkit_chem()
    rows = []
    for path in args.sdf:
        try:
            supplier = Chem.SDMolSupplier(path, sanitize=False, removeHs=False)
        except OSError as e:
            print(f"error: {path}: {e}", file=sys.stderr)
            return 2
        mols = [m for m in supplier][args.start : args.start + args.count]
        if not mols or any(m is None for m in mols):
            print(f"error: {path}: fewer than {args.start + 1} readable molecules", file=sys.stderr)
            return 2
        rows.append(mols)
    ncol = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(1.9 * ncol, 2.1 * len(rows)), squeeze=False)
    labels = args.label or args.sdf
    for r, (mols, label) in enumerate(zip(rows, labels)):
        for c in range(ncol):
            ax = axes[r][c]
            if c >= len(mols):
                ax.axis("off")
                continue
            _draw(ax, mols[c], _verdict(mols[c], Chem))
        axes[r][0].text(-0.05, 0.5, label, transform=axes[r][0].transAxes, rotation=90, va="center", ha="right")
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.02, top=0.9, wspace=0.08, hspace=0.25)
    with atomic_output(args.out, "wb") as f:
        fig.savefig(f, dpi=110, format="png")
    print(f"wrote {args.out}: {sum(len(r) for r in rows)} molecules from {len(rows)} file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
