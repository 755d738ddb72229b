"""NetSpec: the per-stage description of one AnyNet — what a model is built from.

Design-space parameters (RegNet's d, w0, wa, wm, …) turn into a NetSpec (see regnet.py);
the module (models/anynet.py) and the complexity (complexity.py) both read `spec.plan()`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from netspaces.errors import UserError
from netspaces.space import plan as P

BLOCK_TYPES = tuple(P.BLOCKS)
STEM_TYPES = tuple(P.STEMS)


@dataclass(frozen=True)
class NetSpec:
    ws: tuple[int, ...]  # stage widths
    ds: tuple[int, ...]  # stage depths
    bs: tuple[float, ...]  # bottleneck multipliers: w_b = round(w · b)
    gs: tuple[int, ...]  # group widths
    strides: tuple[int, ...] = field(default=())  # default: 2 per stage
    block: str = "x"
    se_r: float = 0.0  # squeeze-excitation ratio (Y block: 0.25)
    stem: str = "simple"
    stem_w: int = 32
    num_classes: int = 1000
    in_chans: int = 3

    def __post_init__(self) -> None:
        # normalise sequences to tuples of plain numbers (JSON, numpy and lists all welcome)
        for name, cast in (("ws", int), ("ds", int), ("bs", float), ("gs", int), ("strides", int)):
            object.__setattr__(self, name, tuple(cast(v) for v in getattr(self, name)))
        if not self.strides:
            object.__setattr__(self, "strides", (2,) * len(self.ws))
        if not self.se_r and self.block in P.SE_RATIO:
            object.__setattr__(self, "se_r", P.SE_RATIO[self.block])
        self.validate()

    def validate(self) -> None:
        n = len(self.ws)
        if n < 1:
            raise UserError("a network needs at least one stage; got ws=()")
        for name in ("ds", "bs", "gs", "strides"):
            if len(getattr(self, name)) != n:
                raise UserError(
                    f"{name} has {len(getattr(self, name))} entries but ws has {n}; one per stage is required"
                )
        if self.block not in BLOCK_TYPES:
            raise UserError(f"unknown block {self.block!r}; allowed: {', '.join(BLOCK_TYPES)}")
        if self.stem not in STEM_TYPES:
            raise UserError(f"unknown stem {self.stem!r}; allowed: {', '.join(STEM_TYPES)}")
        for i, (w, d, b, g) in enumerate(zip(self.ws, self.ds, self.bs, self.gs)):
            if w < 1 or d < 1 or g < 1 or b <= 0:
                raise UserError(
                    f"stage {i + 1}: width {w}, depth {d}, group width {g} must be >= 1 and bot_mul {b} > 0"
                )
            if self.block in P.GROUPED:
                w_b = P.round_int(w * b)
                if w_b % g:
                    raise UserError(f"stage {i + 1}: bottleneck width {w_b} is not a multiple of group width {g}")
        if self.stem_w < 1 or self.num_classes < 1 or self.in_chans < 1:
            raise UserError("stem_w, num_classes and in_chans must be >= 1")

    @property
    def depth(self) -> int:
        return sum(self.ds)

    def plan(self) -> P.Net:
        return P.net_plan(
            ws=self.ws,
            ds=self.ds,
            bs=self.bs,
            gs=self.gs,
            strides=self.strides,
            block=self.block,
            se_r=self.se_r,
            stem=self.stem,
            stem_w=self.stem_w,
            num_classes=self.num_classes,
            in_chans=self.in_chans,
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("ws", "ds", "bs", "gs", "strides"):
            d[k] = list(d[k])
        return d
