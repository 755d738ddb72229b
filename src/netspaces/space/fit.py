"""Fit the quantized linear rule to any model's per-block widths (paper §3.3, Fig. 8).

e_fit is the mean absolute log-ratio of fitted to observed per-block widths; it is 0 for
a RegNet's own widths. The fit is a coarse grid over (w0, wa, wm) refined locally,
vectorised over all grid points at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netspaces.errors import UserError
from netspaces.space.regnet import quantized_widths


@dataclass(frozen=True)
class FitResult:
    w0: float
    wa: float
    wm: float
    e_fit: float
    widths: np.ndarray  # fitted quantized per-block widths


def per_block(ws, ds) -> np.ndarray:
    """Per-block widths from stage widths and depths."""
    return np.repeat(np.asarray(ws, dtype=np.int64), np.asarray(ds, dtype=np.int64))


def _best(widths: np.ndarray, w0, wa, wm, q: int):
    g = np.stack(np.meshgrid(w0, wa, wm, indexing="ij"), -1).reshape(-1, 3)
    fit = quantized_widths(g[:, 0], g[:, 1], g[:, 2], len(widths), q)[0]
    err = np.abs(np.log(fit) - np.log(widths)[None, :]).mean(1)
    i = int(np.argmin(err))
    return g[i], float(err[i]), fit[i]


def fit_quantized_linear(widths, q: int = 8) -> FitResult:
    """Best (w0, wa, wm) of the quantized linear rule for per-block `widths`."""
    w = np.asarray(widths, dtype=np.float64)
    if w.ndim != 1 or len(w) < 1 or (w <= 0).any():
        raise UserError(f"widths must be a non-empty list of positive numbers; got {list(widths)}")
    # w_0 = round(w0 / q)·q, so the first block's width pins w0 to within a step or two
    w0_grid = np.unique(np.clip(np.round(w[0] / q) * q + q * np.arange(-2, 3), q, None))
    wa_grid = np.r_[0.0, np.geomspace(0.5, 512, 128)]
    (w0, wa, wm), err, fit = _best(w, w0_grid, wa_grid, np.arange(1.05, 4.0, 0.01), q)
    for span in (0.2, 0.05, 0.01):  # refine locally: the error surface is piecewise constant
        (w0, wa, wm), err, fit = _best(
            w,
            np.clip(w0 + q * np.arange(-1, 2), q, None),
            np.clip(wa * np.linspace(1 - span, 1 + span, 81), 0, None),
            np.clip(wm + np.linspace(-span, span, 81) / 2, 1.01, None),
            q,
        )
    return FitResult(float(w0), float(wa), float(wm), err, fit.astype(np.int64))
