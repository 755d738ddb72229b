"""Table 1 of the paper, computed from the space definitions (never typed in)."""

from __future__ import annotations

from netspaces.spaces import SPACES, AnyNetSpace

RESTRICTIONS = {
    "anynetx_a": "none",
    "anynetx_b": "b_{i+1} = b_i",
    "anynetx_c": "+ g_{i+1} = g_i",
    "anynetx_d": "+ w_{i+1} >= w_i",
    "anynetx_e": "+ d_{i+1} >= d_i",
    "regnetx": "quantized linear (d<64, w0,wa<256, 1.5<=wm<=3)",
    "regnety": "RegNetX + SE (Y block)",
    "regnetx_refined": "RegNetX, b=1, d<=40, wm>=2, param/act limits",
}


def table1() -> list[dict]:
    rows = []
    for name, sp in SPACES.items():
        rows.append({
            "space": name,
            "restriction": RESTRICTIONS[name],
            "dim": sp.dim,
            "size_paper": sp.size(exact=False),
            "size_exact": sp.size(exact=True),
            "kind": "anynet" if isinstance(sp, AnyNetSpace) else "regnet",
        })
    return rows
