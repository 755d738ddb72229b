"""Design spaces, flop regimes and samplers."""

import math

import pytest
import torch

from netspaces.errors import UserError
from netspaces.models.anynet import build_model
from netspaces.space.complexity import complexity
from netspaces.space.regimes import get_regime
from netspaces.space.sampling import sample_at, sample_models
from netspaces.space.spaces import space_names
from netspaces.space.table1 import table1

REGIMES = ["200mf", "400mf", "1.6gf"]


@pytest.mark.parametrize("regime", REGIMES)
@pytest.mark.parametrize("space", space_names())
def test_samples_lie_in_the_window_and_are_deterministic(space, regime):
    rg = get_regime(regime)
    a = sample_models(space, regime, n=6, seed=3)
    b = sample_models(space, regime, n=6, seed=3)
    assert [s.to_dict() for s in a] == [s.to_dict() for s in b]
    for s in a:
        assert rg.lo <= s.flops <= rg.hi
        cx = complexity(s.spec)  # the bulk counter agrees with the per-model counter
        assert (cx.flops, cx.params, cx.acts) == (s.flops, s.params, s.acts)
        assert len(s.spec.ws) == 4


@pytest.mark.parametrize("space", space_names())
def test_samples_build_and_train_one_step_at_32px(space):
    s = sample_models(space, "400mf", n=1, seed=0)[0]
    from dataclasses import replace

    model = build_model(replace(s.spec, num_classes=10)).to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 32, 32).to(memory_format=torch.channels_last)
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert math.isfinite(loss.item())
    assert sum(p.numel() for p in model.parameters()) == complexity(replace(s.spec, num_classes=10)).params
    assert all(p.grad is not None for p in model.parameters())


def test_different_seeds_differ_and_streams_are_prefix_stable():
    a = sample_models("regnetx", "400mf", n=8, seed=0)
    assert [s.to_dict() for s in a[:3]] == [s.to_dict() for s in sample_models("regnetx", "400mf", n=3, seed=0)]
    assert sample_at("regnetx", "400mf", 0, 5).to_dict() == a[5].to_dict()
    assert a[0].to_dict() != sample_models("regnetx", "400mf", n=1, seed=1)[0].to_dict()


def test_space_constraints_hold():
    for s in sample_models("anynetx_e", "400mf", n=20, seed=0):
        sp = s.spec
        assert len(set(sp.bs)) == 1 and len(set(sp.gs)) == 1
        assert list(sp.ds) == sorted(sp.ds)
        assert all(d <= 16 for d in sp.ds) and all(w <= 1024 for w in sp.ws)
    for s in sample_models("anynetx_b", "400mf", n=20, seed=0):
        assert len(set(s.spec.bs)) == 1
    for s in sample_models("regnetx_refined", "400mf", n=20, seed=0):
        assert s.own["bot_mul"] == 1.0 and s.own["depth"] <= 40 and s.own["wm"] >= 2.0
        assert s.params / 1e6 <= 3.0 + 5.5 * s.flops / 1e9 and s.acts / 1e6 <= 6.5 * math.sqrt(s.flops / 1e9)
    for s in sample_models("regnety", "400mf", n=5, seed=0):
        assert s.spec.block == "y" and s.spec.se_r == 0.25


def test_regnet_samples_reproduce_their_own_parameters():
    from netspaces.space.regnet import RegNetParams

    for s in sample_models("regnetx", "400mf", n=10, seed=7):
        o = s.own
        p = RegNetParams(o["depth"], o["w0"], o["wa"], o["wm"], o["group_w"], o["bot_mul"])
        assert p.to_spec() == s.spec


def test_400mf_window_is_the_papers():
    rg = get_regime("400mf")
    assert (rg.lo, rg.hi) == (360e6, 400e6)
    one = get_regime("400mf", tolerance=0.01)
    assert (one.lo, one.hi) == pytest.approx((396e6, 404e6))


def test_unreachable_regime_is_a_user_error():
    with pytest.raises(UserError, match="found only 0 of 1"):
        sample_models("regnetx_refined", "32gf", n=1, seed=0, max_candidates=4096)


def test_table1_sizes_match_the_paper():
    paper = {
        "anynetx_a": 1.8e18,
        "anynetx_b": 6.8e16,
        "anynetx_c": 3.2e14,
        "anynetx_d": 1.3e13,
        "anynetx_e": 5.5e11,
        "regnetx": 3.0e8,
    }
    dims = {"anynetx_a": 16, "anynetx_b": 13, "anynetx_c": 10, "regnetx": 6}
    rows = {r["space"]: r for r in table1()}
    for name, size in paper.items():
        assert float(f"{rows[name]['size_paper']:.1e}") == size, name
    for name, dim in dims.items():
        assert rows[name]["dim"] == dim
    # the exact count of non-decreasing sequences is larger than the paper's n^4/4! estimate
    assert rows["anynetx_e"]["size_exact"] > rows["anynetx_e"]["size_paper"]
    assert rows["anynetx_a"]["size_exact"] == 36864.0**4


def test_design_space_maths_does_not_import_torch_or_hydra():
    import subprocess
    import sys

    code = (
        "import sys, netspaces.space.sampling, netspaces.space.fit, netspaces.space.table1, netspaces.space.zoo, netspaces.space.complexity;"
        "bad = [m for m in ('torch', 'hydra', 'omegaconf', 'lightning') if m in sys.modules];"
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, f"imported: {r.stdout} {r.stderr}"
