"""The quantized linear rule of RegNet, in the paper's notation (d, w0, wa, wm, g, b).

u_j = w0 + wa·j  (j = 0..d-1)
s_j = round(log(u_j / w0) / log(wm))
w_j = round(w0 · wm^s_j / q) · q
Stages are the distinct w_j (widths) and their counts (depths). Then each stage's group
width is clamped to its bottleneck width and the bottleneck width rounded to a multiple
of the group width. All rounding is half-to-even (numpy and Python agree).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from netspaces.errors import UserError
from netspaces.space.plan import SE_RATIO
from netspaces.space.spec import NetSpec


def quantized_widths(w0, wa, wm, depth: int, q: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Per-block widths w_j and exponents s_j, j = 0..depth-1: the one implementation of the
    rule, used by RegNetParams, the bulk sampler (spaces.RegNetSpace) and the fit (fit.py).

    w0, wa, wm are numbers (result shape (depth,)) or arrays of shape (n,), one RegNet each
    (result shape (n, depth)); all arithmetic is float64, rounding half-to-even."""
    w0, wa, wm = (np.asarray(v, dtype=np.float64)[..., None] for v in (w0, wa, wm))
    u = w0 + wa * np.arange(depth)
    s = exponents(u, w0, wm)
    return np.round(w0 * np.power(wm, s) / q) * q, s


def exponents(u, w0, wm):
    """s = round(log(u / w0) / log(wm)): the stage index of a linear width u."""
    return np.round(np.log(u / w0) / np.log(wm))


def quantized_stages(d: int, w0: float, wa: float, wm: float, q: int = 8) -> tuple[list[int], list[int], int]:
    """Stage widths and depths, and the number of stages the exponents span (> len(ws) when
    quantization merged or skipped one)."""
    w, s = quantized_widths(w0, wa, wm, d, q)
    ws, ds = np.unique(w.astype(np.int64), return_counts=True)
    return [int(x) for x in ws], [int(x) for x in ds], int(s.max()) + 1


def adjust_groups(ws, bs, gs):
    """Make group widths compatible with the bottleneck widths (works on ints or arrays).

    g = min(g, w_b); w_b = max(g, round(w_b / g) · g); w = w_b / b.
    """
    ws_out, gs_out = [], []
    for w, b, g in zip(ws, bs, gs):
        vb = np.maximum(1, (np.asarray(w) * b).astype(np.int64))
        g = np.minimum(g, vb)
        vb = np.maximum(g, (np.round(vb / g) * g).astype(np.int64))
        ws_out.append((vb / b).astype(np.int64))
        gs_out.append(g.astype(np.int64))
    return ws_out, gs_out


@dataclass(frozen=True)
class RegNetParams:
    """One RegNet: the six design parameters (+ SE ratio) of the paper."""

    depth: int
    w0: float
    wa: float
    wm: float
    group_w: int
    bot_mul: float = 1.0
    se_r: float = 0.0
    q: int = 8

    def validate(self) -> None:
        for name in ("w0", "wa", "wm", "bot_mul", "se_r"):
            if not math.isfinite(getattr(self, name)):
                raise UserError(f"{name} must be a finite number; got {getattr(self, name)}")
        if not 0 <= self.se_r < 1:
            raise UserError(f"se_r (squeeze-excitation ratio) must be in [0, 1); got {self.se_r}")
        if self.depth < 1:
            raise UserError(f"depth must be >= 1; got {self.depth}")
        if self.w0 <= 0 or self.w0 % self.q:
            raise UserError(f"w0 must be a positive multiple of {self.q}; got {self.w0}")
        if self.wa < 0:
            raise UserError(f"wa must be >= 0; got {self.wa}")
        if self.wm <= 1:
            raise UserError(f"wm must be > 1; got {self.wm}")
        if self.group_w < 1:
            raise UserError(f"group width must be >= 1; got {self.group_w}")
        if self.bot_mul <= 0:
            raise UserError(f"bot_mul must be > 0; got {self.bot_mul}")

    def stages(self) -> tuple[list[int], list[int], list[int]]:
        """Stage widths, depths and group widths after the compatibility adjustment."""
        self.validate()
        ws, ds, _ = quantized_stages(self.depth, self.w0, self.wa, self.wm, self.q)
        n = len(ws)
        ws_adj, gs_adj = adjust_groups(ws, [self.bot_mul] * n, [self.group_w] * n)
        return [int(w) for w in ws_adj], ds, [int(g) for g in gs_adj]

    def to_spec(
        self,
        *,
        block: str | None = None,
        stem: str = "simple",
        stem_w: int = 32,
        num_classes: int = 1000,
        in_chans: int = 3,
    ) -> NetSpec:
        ws, ds, gs = self.stages()
        block = block or ("y" if self.se_r else "x")
        se_r = self.se_r or SE_RATIO.get(block, 0.0)
        return NetSpec(
            ws=ws,
            ds=ds,
            bs=[self.bot_mul] * len(ws),
            gs=gs,
            block=block,
            se_r=se_r,
            stem=stem,
            stem_w=stem_w,
            num_classes=num_classes,
            in_chans=in_chans,
        )
