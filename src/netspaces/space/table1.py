"""Table 1 of the paper, computed from the space definitions (never typed in)."""

from __future__ import annotations

from netspaces.space.spaces import SPACES, AnyNetSpace


def table1() -> list[dict]:
    rows = []
    for name, sp in SPACES.items():
        rows.append(
            {
                "space": name,
                "restriction": sp.restriction,
                "dim": sp.dim,
                "size_paper": sp.size(exact=False),
                "size_exact": sp.size(exact=True),
                "kind": "anynet" if isinstance(sp, AnyNetSpace) else "regnet",
            }
        )
    return rows
