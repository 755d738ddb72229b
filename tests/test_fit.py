import pytest

from netspaces.space.fit import fit_quantized_linear, per_block
from netspaces.space.regnet import quantized_widths
from netspaces.space.zoo import REGNETS, get_model_spec


@pytest.mark.parametrize("name", ["RegNetX-400MF", "RegNetX-1.6GF", "RegNetY-4.0GF", "RegNetX-32GF"])
def test_e_fit_is_zero_for_a_regnets_own_widths(name):
    p = REGNETS[name]
    w, _ = quantized_widths(p.w0, p.wa, p.wm, p.depth)
    r = fit_quantized_linear(w)
    assert r.e_fit == pytest.approx(0.0, abs=1e-12)
    assert (r.widths == w).all()


def test_e_fit_is_positive_for_a_resnet():
    s = get_model_spec("ResNet-50")
    r = fit_quantized_linear(per_block(s.ws, s.ds))
    assert r.e_fit > 0.01  # ResNet's stage widths double exactly, but its depths are not linear
    assert len(r.widths) == 16


def test_per_block():
    assert per_block([8, 16], [2, 1]).tolist() == [8, 8, 16]
