"""Sample populations from a design space inside a flop regime.

Candidates are drawn in fixed-size batches from one seeded numpy Generator and counted in
bulk (the layer plan with numpy widths), so sample i is the i-th accepted candidate of a
deterministic stream: the same on any machine, and `sample_models(n=8)[:4]` equals
`sample_models(n=4)`. A sweep job for sample i re-derives it from (space, regime, seed, i).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from netspaces.errors import UserError
from netspaces.space import plan as P
from netspaces.space.complexity import count_net
from netspaces.space.draws import DEFAULT_DRAW, get_draw
from netspaces.space.regimes import Regime, get_regime
from netspaces.space.spaces import get_space
from netspaces.space.spec import NetSpec

BATCH = 4096  # part of the stream's definition: changing it changes which models are drawn
MAX_CANDIDATES = 2_000_000


@dataclass(frozen=True)
class Sample:
    index: int
    space: str
    regime: str
    seed: int
    spec: NetSpec
    flops: int
    params: int
    acts: int
    own: dict = field(default_factory=dict)  # the space's own parameters
    draw: str = DEFAULT_DRAW  # the rule set the space drew with (space/draws.py)

    @property
    def name(self) -> str:
        return f"{self.space}-{self.regime}-s{self.seed}-{self.index:03d}"

    @property
    def arch(self) -> dict:
        s = self.spec
        return {"ws": list(s.ws), "ds": list(s.ds), "gs": list(s.gs), "bs": list(s.bs), "block": s.block, **self.own}

    def to_dict(self) -> dict:
        s = self.spec
        return {
            "name": self.name,
            "index": self.index,
            "space": self.space,
            "regime": self.regime,
            "seed": self.seed,
            "ws": list(s.ws),
            "ds": list(s.ds),
            "gs": list(s.gs),
            "bs": list(s.bs),
            "block": s.block,
            "draw": self.draw,
            "flops": self.flops,
            "params": self.params,
            "acts": self.acts,
            **self.own,
        }


def bulk_complexity(
    ws: np.ndarray,
    ds: np.ndarray,
    bs: np.ndarray,
    gs: np.ndarray,
    *,
    block: str,
    resolution: int = 224,
    num_classes: int = 1000,
):
    """flops, params, acts of many AnyNets at once (arrays of shape (n, stages))."""
    stages = ws.shape[1]
    net = P.net_plan(
        ws=list(ws.T),
        ds=list(ds.T),
        bs=list(bs.T),
        gs=list(gs.T),
        strides=[2] * stages,
        block=block,
        se_r=P.SE_RATIO.get(block, 0.0),
        stem="simple",
        stem_w=32,
        num_classes=num_classes,
        in_chans=3,
    )
    return count_net(net, resolution)


def _plain(v):
    v = v.item() if isinstance(v, np.generic) else v
    return round(v, 6) if isinstance(v, float) else v


def sample_models(
    space: str,
    regime: str | Regime,
    n: int,
    seed: int,
    block: str | None = None,
    max_candidates: int = MAX_CANDIDATES,
    draw: str | None = None,
) -> list[Sample]:
    """The first n models of (space, regime, seed) whose flops fall in the regime's window,
    the space drawing its parameters by the rule set `draw` (default: pycls's conventions)."""
    if n < 1:
        raise UserError(f"n must be >= 1; got {n}")
    sp = get_space(space)
    draw = get_draw(draw).name
    rg = get_regime(regime) if isinstance(regime, str) else regime
    block = block or sp.block
    if block not in P.BLOCKS:
        raise UserError(f"unknown block {block!r}; allowed: {', '.join(P.BLOCKS)}")
    rng = np.random.default_rng(seed)
    out: list[Sample] = []
    drawn = 0
    while len(out) < n:
        if drawn >= max_candidates:
            raise UserError(
                f"space {sp.name} found only {len(out)} of {n} models in regime {rg.name} "
                f"({rg.lo / 1e6:.0f}-{rg.hi / 1e6:.0f} MF) after {drawn} candidates; "
                f"choose another regime or fewer models"
            )
        c = sp.draw(rng, BATCH, draw)
        drawn += BATCH
        cx = bulk_complexity(c.ws, c.ds, c.bs, c.gs, block=block, resolution=rg.resolution)
        ok = c.valid & (cx.flops >= rg.lo) & (cx.flops <= rg.hi)
        if rg.max_params is not None:
            ok &= cx.params <= rg.max_params
        if rg.max_acts is not None:
            ok &= cx.acts <= rg.max_acts
        if getattr(sp, "limit_params_acts", False):
            ok &= within_paper_limits(cx.flops, cx.params, cx.acts)
        for i in np.flatnonzero(ok)[: n - len(out)]:
            spec = NetSpec(ws=c.ws[i], ds=c.ds[i], bs=c.bs[i], gs=c.gs[i], block=block)
            own = {k: _plain(v[i]) for k, v in c.own.items()}
            out.append(
                Sample(
                    len(out),
                    sp.name,
                    rg.name,
                    seed,
                    spec,
                    int(cx.flops[i]),
                    int(cx.params[i]),
                    int(cx.acts[i]),
                    own,
                    draw,
                )
            )
    return out


def sample_at(
    space: str, regime: str | Regime, seed: int, index: int, block: str | None = None, draw: str | None = None
) -> Sample:
    """Sample `index` of the stream (what sweep job `index` trains)."""
    if index < 0:
        raise UserError(f"sample index must be >= 0; got {index}")
    return sample_models(space, regime, index + 1, seed, block, draw=draw)[index]


def within_paper_limits(flops, params, acts):
    """Refined RegNetX (paper §4, Fig. 12 fits of the best models): params ≤ 3.0 + 5.5·f and
    acts ≤ 6.5·√f, in millions, with f the flops in GF."""
    f = np.asarray(flops) / 1e9
    return (np.asarray(params) / 1e6 <= 3.0 + 5.5 * f) & (np.asarray(acts) / 1e6 <= 6.5 * np.sqrt(f))


def acceptance_note(space: str, regime: str, candidates: int = 40960, seed: int = 0) -> float:
    """Fraction of raw candidates accepted (for the sampler benchmark)."""
    sp, rg = get_space(space), get_regime(regime)
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(math.ceil(candidates / BATCH)):
        c = sp.draw(rng, BATCH)
        cx = bulk_complexity(c.ws, c.ds, c.bs, c.gs, block=sp.block)
        hits += int((c.valid & (cx.flops >= rg.lo) & (cx.flops <= rg.hi)).sum())
    return hits / (math.ceil(candidates / BATCH) * BATCH)
