"""Draw rule sets (space/draws.py): pycls's conventions by default, the old draw kept bit for
bit, sensitivity draws selectable, and the choice part of a population's identity."""

import math
import subprocess
import sys

import numpy as np
import pytest

from netspaces.errors import UserError
from netspaces.space import draws as D
from netspaces.space.sampling import sample_models

N = 200_000


def test_pycls_uniform_gives_every_integer_equally():
    x = D.uniform(np.random.default_rng(0), 1, 16, 1, N)
    values, counts = np.unique(x, return_counts=True)
    assert values.tolist() == list(range(1, 17))
    assert np.allclose(counts / N, 1 / 16, atol=0.003)


def test_pycls_log_uniform_is_log_linear_on_multiples_of_q():
    x = D.log_uniform(np.random.default_rng(1), 8, 1024, 8, N)
    assert x.min() == 8 and x.max() == 1024 and np.all(x % 8 == 0)
    # f is log-uniform on (4, 1024] and ceiled to 8: P(x <= 64) = log(64/4) / log(1024/4)
    assert abs((x <= 64).mean() - math.log(16) / math.log(256)) < 0.005


def test_pycls_group_width_is_power2_or_log_uniform():
    x = D.power2_or_log_uniform(np.random.default_rng(2), 1, 32, 8, N)
    values = set(np.unique(x).tolist())
    assert values == {1, 2, 4, 8, 16, 24, 32}  # 24: pycls's log-uniform part over multiples of 8
    for small in (1, 2, 4):
        assert abs((x == small).mean() - 1 / 6) < 0.005
    assert abs((x >= 8).mean() - 1 / 2) < 0.005


def test_pycls_bottleneck_is_uniform_over_powers_of_2():
    x = D.power2_uniform(np.random.default_rng(3), 1, 4, 1, N)
    assert set(np.unique(x).tolist()) == {1, 2, 4}
    assert all(abs((x == v).mean() - 1 / 3) < 0.005 for v in (1, 2, 4))


def test_the_old_draw_reproduces_older_populations_bit_for_bit():
    # golden: the third 400mf sample of seed 0, drawn by netspaces before `space.draw` existed
    a = sample_models("anynetx_a", "400mf", 3, 0, draw="loguniform")[2]
    assert (a.spec.ws, a.spec.ds, a.spec.gs, a.flops) == ((64, 8, 16, 528), (4, 1, 8, 9), (16, 2, 2, 1), 373287288)
    r = sample_models("regnetx", "400mf", 3, 0, draw="loguniform")[2]
    assert (r.spec.ws, r.spec.ds, r.flops) == ((128, 128, 256, 448), (3, 9, 14, 1), 396676328)


def test_the_default_draw_is_pycls_and_depth_follows_it():
    got = sample_models("anynetx_a", "200mf", 40, 5)
    assert {s.draw for s in got} == {"pycls"}
    depths = np.array([s.spec.ds for s in got]).ravel()
    # per-stage depths uniform on 1..16 (before the flop window) have mean 8.5; the old
    # log-uniform draw had mean ≈ 5.4. The window shifts it, but not back to the old one.
    old = np.array([s.spec.ds for s in sample_models("anynetx_a", "200mf", 40, 5, draw="loguniform")]).ravel()
    assert depths.mean() > old.mean() + 1.5


@pytest.mark.parametrize("draw", list(D.DRAWS))
def test_every_draw_samples_every_space_inside_its_window(draw):
    from netspaces.space.regimes import get_regime
    from netspaces.space.spaces import space_names

    rg = get_regime("400mf")
    for space in space_names():
        for s in sample_models(space, "400mf", 3, 1, draw=draw):
            assert rg.lo <= s.flops <= rg.hi and s.draw == draw


def test_an_unknown_draw_is_one_clear_line():
    with pytest.raises(UserError, match="unknown space.draw 'bogus'; allowed: pycls, loguniform, uniform"):
        sample_models("regnetx", "400mf", 1, 0, draw="bogus")


def test_the_draw_is_part_of_the_identity_and_old_populations_keep_theirs():
    from conftest import compose_train
    from netspaces.train import identity

    default = identity.of(compose_train(["space=regnetx"]))[0]
    old = identity.of(compose_train(["space=regnetx", "space.draw=loguniform"]))[0]
    uniform = identity.of(compose_train(["space=regnetx", "space.draw=uniform"]))[0]
    assert len({default, old, uniform}) == 3
    # a config from before the key existed hashes like space.draw=loguniform
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(compose_train(["space=regnetx"]))
    del cfg["space"]["draw"]
    assert identity.of(OmegaConf.create(cfg))[0] == old


def test_spaces_verbose_prints_each_draw_with_its_source(tmp_path):
    from conftest import subprocess_env

    r = subprocess.run(
        [sys.executable, "-m", "netspaces", "spaces", "--verbose"],
        capture_output=True,
        text=True,
        env=subprocess_env(tmp_path),
    )
    assert r.returncode == 0, r.stderr
    assert "draw pycls: pycls's sweep sampler conventions (pycls/sweep/random.py" in r.stdout
    assert "anynetx_a        d uniform(1, 16, q=1); w log_uniform(8, 1024, q=8)" in r.stdout
    assert "draw loguniform:" in r.stdout and "draw uniform:" in r.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "netspaces", "spaces", "-v", "--draw", "nope"],
        capture_output=True,
        text=True,
        env=subprocess_env(tmp_path),
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        "netspaces: error: unknown space.draw 'nope'; allowed: pycls, loguniform, uniform"
    ]
