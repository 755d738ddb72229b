"""How a design space draws each of its parameters: named, sourced rule sets.

The ranges are the paper's (the space's constraints: AnyNetX d ≤ 16, w ≤ 1024 a multiple
of 8, b ∈ {1, 2, 4}, g ≤ 32; RegNet d < 64, w0, wa < 256, 1.5 ≤ wm ≤ 3). The paper does
not say with which distribution each is drawn, and at small scale the answer moves the
result (issue 13), so the rule set is a named choice (`space.draw`, identity) with a source:

- `pycls` (default): the conventions of pycls's sweep samplers (pycls/sweep/samplers.py
  `regnet_sampler`, pycls/sweep/random.py), applied to every space: counts uniform over
  their integers; width-like quantities log-uniform, quantized up to q (8 for widths);
  group width power-of-2-or-log-uniform (q = 8: {1, 2, 4} each 1/6, else log-uniform over
  the multiples of 8 in [8, 32], so 24 occurs although Table 1 counts only powers of 2);
  bottleneck ratio uniform over the powers of 2.
- `loguniform`: netspaces ≤ 0.4's draw, kept bit for bit so older populations re-derive
  their models: AnyNet depths and widths log-uniform rounded to nearest (an assumption
  with no source), b and g uniform over Table 1's sets; RegNet as pycls with rounding to
  nearest and g uniform over the powers of 2.
- `uniform`: every quantity uniform over its quantized range; b and g over Table 1's sets.

The last two are for sensitivity analyses, never chosen by their result. Rules are
vectorized (one numpy Generator call per parameter and batch), so streams are not pycls's
own bit for bit; their distributions are. Torch-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from netspaces.errors import UserError

PYCLS = "pycls/sweep/random.py, pycls/sweep/samplers.py (regnet_sampler)"


def _q(x: np.ndarray, q: float, op) -> np.ndarray:
    """x quantized to a multiple of q by `op`, cleaned of float noise (q ≥ 0.001)."""
    return np.round(op(np.round(x / q, 9)) * q, 6)


def uniform(rng, lo, hi, q, n):
    """pycls `uniform`: f in [lo, hi + q), floored to q, so lo..hi equally likely."""
    return _q(rng.uniform(lo, hi + q, n), q, np.floor)


def log_uniform(rng, lo, hi, q, n):
    """pycls `log_uniform`: f log-uniform in (lo − q*, hi], q* = min(q, lo/2), ceiled to q."""
    return _q(np.exp(rng.uniform(math.log(lo - min(q, lo / 2)), math.log(hi), n)), q, np.ceil)


def power2_uniform(rng, lo, hi, q, n):
    """pycls `power2_uniform`: uniform over the powers of 2 in [lo, hi]."""
    e = np.floor(rng.uniform(math.log2(lo), math.log2(hi) + 1, n))
    return _q(2.0**e, q, np.floor)


def power2_or_log_uniform(rng, lo, hi, q, n):
    """pycls `power2_or_log_uniform`: a power of 2 in [lo, hi]; those ≥ q are redrawn
    log-uniform over the multiples of q in [max(lo, q), hi]."""
    f = power2_uniform(rng, lo, hi, lo, n)
    redraw = log_uniform(rng, max(lo, q), hi, min(hi, q), n)  # drawn for all: a fixed stream
    return np.where(f >= q, redraw, f)


def log_uniform_round(rng, lo, hi, q, n):
    """netspaces ≤ 0.4: log-uniform on [lo, hi], rounded to the nearest multiple of q."""
    x = np.exp(rng.uniform(math.log(lo), math.log(hi), n))
    return np.clip(np.round(x / q) * q, lo, hi)


def integers(rng, lo, hi, q, n):
    """netspaces ≤ 0.4 RegNet depth: numpy's integers on [lo, hi] (q = 1)."""
    return rng.integers(lo, hi + 1, n)


KINDS = {
    f.__name__: f for f in (uniform, log_uniform, power2_uniform, power2_or_log_uniform, log_uniform_round, integers)
}


@dataclass(frozen=True)
class Rule:
    """One parameter's distribution: a kind from KINDS with its quantum q over the space's
    range [lo, hi], or "values": uniform over the space's set (Table 1's b and g)."""

    kind: str
    q: float = 1

    def sample(self, rng: np.random.Generator, allowed: tuple, shape) -> np.ndarray:
        """`allowed` is the space's range (lo, hi) or, for b and g, its set of values."""
        if self.kind == "values":
            return rng.choice(np.array(allowed), shape)
        n = int(np.prod(shape))
        return np.asarray(KINDS[self.kind](rng, min(allowed), max(allowed), self.q, n)).reshape(shape)

    def text(self, allowed: tuple) -> str:
        if self.kind == "values":
            return "uniform over {" + ", ".join(f"{v:g}" for v in allowed) + "}"
        return f"{self.kind}({min(allowed):g}, {max(allowed):g}, q={self.q:g})"


@dataclass(frozen=True)
class Draw:
    """A named rule set: one Rule per AnyNet parameter (d, w, b, g) and per RegNet
    parameter (depth, w0, wa, wm, b, g), and where it comes from."""

    name: str
    source: str
    anynet: dict
    regnet: dict


DRAWS = {
    d.name: d
    for d in (
        Draw(
            "pycls",
            f"pycls's sweep sampler conventions ({PYCLS}); ranges from the paper",
            anynet={
                "d": Rule("uniform", 1),
                "w": Rule("log_uniform", 8),
                "b": Rule("power2_uniform", 1),
                "g": Rule("power2_or_log_uniform", 8),
            },
            regnet={
                "depth": Rule("uniform", 1),
                "w0": Rule("log_uniform", 8),
                "wa": Rule("log_uniform", 0.1),
                "wm": Rule("log_uniform", 0.001),
                "b": Rule("power2_uniform", 1),
                "g": Rule("power2_or_log_uniform", 8),
            },
        ),
        Draw(
            "loguniform",
            "netspaces <= 0.4 (an assumption of its design note, no source); kept for older populations",
            anynet={
                "d": Rule("log_uniform_round", 1),
                "w": Rule("log_uniform_round", 8),
                "b": Rule("values"),
                "g": Rule("values"),
            },
            regnet={
                "depth": Rule("integers", 1),
                "w0": Rule("log_uniform_round", 8),
                "wa": Rule("log_uniform_round", 0.1),
                "wm": Rule("log_uniform_round", 0.001),
                "b": Rule("values"),
                "g": Rule("values"),
            },
        ),
        Draw(
            "uniform",
            "sensitivity: every quantity uniform over its quantized range, b and g over Table 1's sets",
            anynet={
                "d": Rule("uniform", 1),
                "w": Rule("uniform", 8),
                "b": Rule("values"),
                "g": Rule("values"),
            },
            regnet={
                "depth": Rule("uniform", 1),
                "w0": Rule("uniform", 8),
                "wa": Rule("uniform", 0.1),
                "wm": Rule("uniform", 0.001),
                "b": Rule("values"),
                "g": Rule("values"),
            },
        ),
    )
}
DEFAULT_DRAW = "pycls"


def get_draw(name: str | None) -> Draw:
    key = (name or DEFAULT_DRAW).lower()
    if key not in DRAWS:
        raise UserError(f"unknown space.draw {name!r}; allowed: {', '.join(DRAWS)}")
    return DRAWS[key]
