"""Design spaces of the paper (Table 1): AnyNetX_A…E, RegNetX, RegNetY, refined RegNetX.

Each space draws candidates in bulk with an explicit numpy Generator and returns them as
per-stage arrays (one row per candidate) plus its own parameters; sampling.py keeps the
ones inside a flop regime. No torch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from netspaces.errors import UserError
from netspaces.space.draws import get_draw
from netspaces.space.regnet import adjust_groups, exponents, quantized_widths

DEPTHS = np.arange(1, 17)  # d_i <= 16
WIDTHS = np.arange(8, 1025, 8)  # w_i <= 1024, multiples of 8
BOT_RATIOS = np.array([1, 2, 4])  # b_i: w_b = w / b
GROUP_WIDTHS = np.array([1, 2, 4, 8, 16, 32])


@dataclass
class Candidates:
    """Per-stage arrays of shape (n, stages) and the space's own parameters (n,)."""

    ws: np.ndarray
    ds: np.ndarray
    bs: np.ndarray  # bottleneck multipliers 1/b
    gs: np.ndarray
    valid: np.ndarray  # (n,) bool: the candidate is a network of the space
    own: dict = field(default_factory=dict)


@dataclass(frozen=True)
class AnyNetSpace:
    """AnyNetX: per-stage d, w, b, g; A is unconstrained, B–E add the paper's constraints."""

    name: str
    shared_b: bool = False
    shared_g: bool = False
    increasing_w: bool = False
    increasing_d: bool = False
    stages: int = 4
    block: str = "x"
    restriction: str = ""  # Table 1's column

    @property
    def dim(self) -> int:
        s = self.stages
        return 2 * s + (1 if self.shared_b else s) + (1 if self.shared_g else s)

    def size(self, exact: bool = False) -> float:
        """Number of models. The paper divides by s! for an ordering constraint; `exact`
        counts non-decreasing sequences (multisets) instead."""
        s = self.stages

        def per(n_values: int, ordered: bool) -> float:
            if not ordered:
                return float(n_values) ** s
            return float(math.comb(n_values + s - 1, s)) if exact else n_values**s / math.factorial(s)

        n = per(len(DEPTHS), self.increasing_d) * per(len(WIDTHS), self.increasing_w)
        n *= len(BOT_RATIOS) if self.shared_b else len(BOT_RATIOS) ** s
        n *= len(GROUP_WIDTHS) if self.shared_g else len(GROUP_WIDTHS) ** s
        return n

    def allowed(self) -> dict:
        """Each parameter's range (lo, hi) or set, as the draw rules take them."""
        return {"d": (1, 16), "w": (8, 1024), "b": tuple(BOT_RATIOS.tolist()), "g": tuple(GROUP_WIDTHS.tolist())}

    def draw(self, rng: np.random.Generator, n: int, draw: str | None = None) -> Candidates:
        s, rules, allowed = self.stages, get_draw(draw).anynet, self.allowed()
        ds = rules["d"].sample(rng, allowed["d"], (n, s)).astype(np.int64)
        ws = rules["w"].sample(rng, allowed["w"], (n, s)).astype(np.int64)
        b = rules["b"].sample(rng, allowed["b"], (n, 1 if self.shared_b else s)).astype(np.int64)
        g = rules["g"].sample(rng, allowed["g"], (n, 1 if self.shared_g else s)).astype(np.int64)
        b, g = np.broadcast_to(b, (n, s)), np.broadcast_to(g, (n, s))
        if self.increasing_w:
            ws = np.sort(ws, axis=1)
        if self.increasing_d:
            ds = np.sort(ds, axis=1)
        bot_mul = 1.0 / b
        ws_adj, gs_adj = adjust_groups(ws.T, bot_mul.T, g.T)
        ws_adj, gs_adj = np.stack(ws_adj, 1), np.stack(gs_adj, 1)
        # the adjustment clamps g to the bottleneck width per stage; keep only candidates
        # that still satisfy the space's constraints afterwards
        valid = np.ones(n, bool)
        if self.shared_g:
            valid &= (gs_adj == gs_adj[:, :1]).all(1)
        if self.increasing_w:
            valid &= (np.diff(ws_adj, axis=1) >= 0).all(1)
        own = {
            f"{k}{i + 1}": arr[:, i] for k, arr in (("d", ds), ("w", ws_adj), ("b", b), ("g", gs_adj)) for i in range(s)
        }
        return Candidates(ws_adj, ds, bot_mul, gs_adj, valid, own)


@dataclass(frozen=True)
class RegNetSpace:
    """RegNet: widths and depths from the quantized linear rule (6 DoF: d, w0, wa, wm, b, g)."""

    name: str
    depth: tuple[int, int] = (1, 63)  # d < 64
    w0: tuple[int, int] = (8, 248)  # w0 < 256, multiple of 8
    wa: tuple[float, float] = (8.0, 255.9)  # wa < 256
    wm: tuple[float, float] = (1.5, 3.0)
    bot_ratios: tuple[int, ...] = (1, 2, 4)
    group_ws: tuple[int, ...] = tuple(GROUP_WIDTHS)
    stages: int = 4
    block: str = "x"
    limit_params_acts: bool = False  # refined RegNetX: the paper's Fig. 12 param/act limits
    restriction: str = ""  # Table 1's column
    q: int = 8

    dim = 6

    def size(self, exact: bool = False) -> float:
        """d (64) · w0 (256) · wa (256) · wm · b · g. The paper does not say how it counts the
        continuous wm; a 0.5 grid over [1.5, 3] (4 values) reproduces its ≈3.0e8."""
        n_wm = round((self.wm[1] - self.wm[0]) / 0.5) + 1
        return 64.0 * 256 * 256 * n_wm * len(self.bot_ratios) * len(self.group_ws)

    def allowed(self) -> dict:
        """Each parameter's range (lo, hi) or set, as the draw rules take them."""
        return {
            "depth": self.depth,
            "w0": self.w0,
            "wa": self.wa,
            "wm": self.wm,
            "b": self.bot_ratios,
            "g": self.group_ws,
        }

    def draw(self, rng: np.random.Generator, n: int, draw: str | None = None) -> Candidates:
        """Draw n candidates; only those that can have `stages` stages are returned."""
        s, q, rules, allowed = self.stages, self.q, get_draw(draw).regnet, self.allowed()
        d, w0, wa, wm, b, g = (rules[k].sample(rng, allowed[k], n) for k in ("depth", "w0", "wa", "wm", "b", "g"))
        d, b, g = d.astype(np.int64), b.astype(np.int64), g.astype(np.int64)

        # u_j grows with j, so the last block has the largest exponent: a candidate can only
        # have `s` stages if that exponent is s-1. Checking it first skips most of the work.
        last = exponents(w0 + wa * (d - 1), w0, wm)
        keep = np.flatnonzero(last == s - 1)
        d, w0, wa, wm, b, g = d[keep], w0[keep], wa[keep], wm[keep], b[keep], g[keep]
        n = len(keep)

        widths, exps = quantized_widths(w0, wa, wm, self.depth[1], q)
        in_net = np.arange(self.depth[1])[None, :] < d[:, None]
        # widths are non-decreasing along the blocks, so each change starts a new stage
        change = np.concatenate([np.zeros((n, 1), bool), widths[:, 1:] != widths[:, :-1]], 1) & in_net
        stage_of_block = np.cumsum(change, 1)
        n_stages = stage_of_block.max(1, where=in_net, initial=0) + 1
        n_exps = exps.max(1, where=in_net, initial=0) + 1
        valid = (n_stages == s) & (n_exps == s)  # no skipped or merged stage, right count

        ws = np.zeros((n, s), np.int64)
        ds = np.zeros((n, s), np.int64)
        for k in range(s):
            in_stage = (stage_of_block == k) & in_net
            ds[:, k] = in_stage.sum(1)
            ws[:, k] = np.where(in_stage, widths, 0).max(1)
        valid &= (ds > 0).all(1)
        ws = np.where(valid[:, None], ws, q)  # placeholders keep the arithmetic below finite
        ds = np.where(valid[:, None], ds, 1)
        bot_mul = np.broadcast_to((1.0 / b)[:, None], (n, s))
        ws_adj, gs_adj = adjust_groups(ws.T, bot_mul.T, np.broadcast_to(g[:, None], (n, s)).T)
        own = {"depth": d, "w0": w0.astype(np.int64), "wa": wa, "wm": wm, "group_w": g, "bot_mul": 1.0 / b}
        return Candidates(np.stack(ws_adj, 1), ds, bot_mul, np.stack(gs_adj, 1), valid, own)


def _anynet(letter: str, restriction: str, **constraints) -> AnyNetSpace:
    return AnyNetSpace(f"anynetx_{letter}", restriction=restriction, **constraints)


# Adding a space: one entry here (its Hydra option `space=<name>` is generated from it).
SPACES = {
    s.name: s
    for s in [
        _anynet("a", "none"),
        _anynet("b", "b_{i+1} = b_i", shared_b=True),
        _anynet("c", "+ g_{i+1} = g_i", shared_b=True, shared_g=True),
        _anynet("d", "+ w_{i+1} >= w_i", shared_b=True, shared_g=True, increasing_w=True),
        _anynet("e", "+ d_{i+1} >= d_i", shared_b=True, shared_g=True, increasing_w=True, increasing_d=True),
        RegNetSpace("regnetx", restriction="quantized linear (d<64, w0,wa<256, 1.5<=wm<=3)"),
        RegNetSpace("regnety", block="y", restriction="RegNetX + SE (Y block)"),
        RegNetSpace(
            "regnetx_refined",
            depth=(1, 40),
            wm=(2.0, 3.0),
            bot_ratios=(1,),
            limit_params_acts=True,
            restriction="RegNetX, b=1, d<=40, wm>=2, param/act limits",
        ),
    ]
}


def space_names() -> list[str]:
    return list(SPACES)


def get_space(name: str):
    key = name.lower().replace("-", "_")
    if key not in SPACES:
        raise UserError(f"unknown space {name!r}; allowed: {', '.join(SPACES)}")
    return SPACES[key]
