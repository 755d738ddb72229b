"""Flop regimes: a window of flops (multiply-adds at 224 px, 1000 classes) a sample must fall in.

The paper's 400MF populations use 360–400 MF, i.e. [0.9·F, F]; every named regime uses the
same relative window. Section 5's ±1% windows are available as `tolerance=0.01`.
"""

from __future__ import annotations

from dataclasses import dataclass

from netspaces.errors import UserError

NOMINAL_FLOPS = {
    "200mf": 200e6,
    "400mf": 400e6,
    "600mf": 600e6,
    "800mf": 800e6,
    "1.6gf": 1.6e9,
    "3.2gf": 3.2e9,
    "4gf": 4.0e9,
    "6.4gf": 6.4e9,
    "8gf": 8.0e9,
    "12gf": 12e9,
    "16gf": 16e9,
    "32gf": 32e9,
}


@dataclass(frozen=True)
class Regime:
    name: str
    lo: float  # flops, inclusive
    hi: float  # flops, inclusive
    resolution: int = 224
    max_params: float | None = None
    max_acts: float | None = None


def regime_names() -> list[str]:
    return list(NOMINAL_FLOPS)


def get_regime(
    name: str, *, tolerance: float | None = None, max_params: float | None = None, max_acts: float | None = None
) -> Regime:
    """A named regime: [0.9·F, F] by default, or [F·(1−tol), F·(1+tol)] with a tolerance."""
    key = name.lower().replace(" ", "")
    if key not in NOMINAL_FLOPS:
        raise UserError(f"unknown regime {name!r}; allowed: {', '.join(NOMINAL_FLOPS)}")
    f = NOMINAL_FLOPS[key]
    if tolerance is None:
        lo, hi = 0.9 * f, f
    elif 0 < tolerance < 1:
        lo, hi = f * (1 - tolerance), f * (1 + tolerance)
    else:
        raise UserError(f"regime tolerance must be in (0, 1); got {tolerance}")
    return Regime(key, lo, hi, max_params=max_params, max_acts=max_acts)
