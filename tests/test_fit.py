import numpy as np
import pytest

from netspaces.fit import block_widths, fit_quantized_linear
from netspaces.regnet import block_widths as rule_widths
from netspaces.zoo import REGNETS, get_model_spec


@pytest.mark.parametrize("name", ["RegNetX-400MF", "RegNetX-1.6GF", "RegNetY-4.0GF", "RegNetX-32GF"])
def test_e_fit_is_zero_for_a_regnets_own_widths(name):
    p = REGNETS[name]
    w, _ = rule_widths(p.depth, p.w0, p.wa, p.wm)
    r = fit_quantized_linear(w)
    assert r.e_fit == pytest.approx(0.0, abs=1e-12)
    assert (r.widths == w).all()


def test_e_fit_is_positive_for_a_resnet():
    s = get_model_spec("ResNet-50")
    r = fit_quantized_linear(block_widths(s.ws, s.ds))
    assert r.e_fit > 0.01  # ResNet's stage widths double exactly, but its depths are not linear
    assert len(r.widths) == 16


def test_block_widths():
    assert block_widths([8, 16], [2, 1]).tolist() == [8, 8, 16]
