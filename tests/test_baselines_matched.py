"""Baselines matched to a regime (space/matched.py, models/matched.py, model=baselines) and
baselines in the analysis (analysis/baselines.py, `analyze --baselines`)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY, compose_train, run_train
from netspaces.cli import main
from netspaces.errors import UserError
from netspaces.space.complexity import complexity
from netspaces.space.matched import (
    BASELINES,
    get_rule,
    match_resnext,
    resnext_spec,
    scale_resnext,
    solve_width,
)
from netspaces.space.regimes import get_regime, regime_names
from netspaces.space.zoo import get_model_spec
from netspaces.train import hydra_conf, identity
from netspaces.train.settings import check_config, optim_settings

FAST_REGIMES = ("200mf", "400mf")  # solving an EfficientNet's width takes ~20 meta-device counts (~5 s)


def _groups(spec):
    return [round(w * b) // g for w, b, g in zip(spec.ws, spec.bs, spec.gs)]


# ---------------------------------------------------------------- the rule (torch-free)


def test_width_one_is_the_published_resnet_and_resnext():
    for name in ("ResNet-50", "ResNeXt-50"):
        spec = get_model_spec(name)
        assert scale_resnext(spec, 1.0) == spec


@pytest.mark.parametrize("regime", regime_names())
def test_resnext_baselines_lie_in_every_window_with_their_groups(regime):
    r = get_regime(regime)
    for key in ("resnet50", "resnext50"):
        m = match_resnext(BASELINES[key], r)
        spec = resnext_spec(BASELINES[key], m.width_mult)
        assert r.lo <= m.flops <= r.hi, (key, m)
        assert m.flops == complexity(spec).flops  # the number reported is the built spec's
        if key == "resnet50":  # plain 3x3 convs stay plain
            assert _groups(spec) == [1, 1, 1, 1]
        else:  # ResNeXt 32x4d: the group widths stay 4, 8, 16, 32; the number of groups scales
            assert spec.gs == (4, 8, 16, 32) and spec.bs == (0.5,) * 4
        assert spec.ds == get_model_spec(BASELINES[key].published).ds


def test_at_200mf_the_scaled_resnext_is_closest_to_the_midpoint():
    r = get_regime("200mf")
    m = match_resnext(BASELINES["resnext50"], r)
    assert (m.name, m.scaled) == ("ResNeXt-50-200MF", True)
    flops = lambda w: complexity(resnext_spec(BASELINES["resnext50"], w)).flops  # noqa: E731
    # every other width whose flops lie in the window is no closer to 190 MF
    grid = [w for w in np.linspace(0.1, 0.3, 401) if r.lo <= flops(float(w)) <= r.hi]
    assert grid and min(abs(flops(float(w)) - 190e6) for w in grid) >= abs(m.flops - 190e6)


def test_solve_width_on_a_step_function():
    steps = lambda w: int(np.floor(w * 10)) * 100  # noqa: E731  0, 100, 200, ... every 0.1
    assert solve_width(steps, 240, 360) == 0.3  # 300 is the midpoint itself, fewest decimals
    assert steps(solve_width(steps, 250, 420)) == 300  # 335: 300 is closer than 400
    assert solve_width(steps, 310, 390) is None  # the function jumps over the window
    assert solve_width(lambda w: 7, 1, 5) is None  # never reaches it


def test_a_member_is_named_by_key_or_index_and_anything_else_is_refused():
    assert get_rule(0).key == "efficientnet_b0" and get_rule("resnext50").key == "resnext50"
    assert get_rule("2").key == "resnet50"
    with pytest.raises(
        UserError, match=r"sample='vgg16' is not a baseline of model=baselines; allowed: efficientnet_b0"
    ):
        get_rule("vgg16")


# ---------------------------------------------------------------- EfficientNets (timm, meta device)


def test_efficientnet_multipliers_one_are_timms_b0_and_b1():
    import timm

    from netspaces.models.matched import efficientnet

    for key, name in (("efficientnet_b0", "efficientnet_b0"), ("efficientnet_b1", "efficientnet_b1")):
        ours = efficientnet(BASELINES[key], 1.0, num_classes=10)
        ref = timm.create_model(name, pretrained=False, num_classes=10)
        assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in ref.parameters()]


@pytest.mark.parametrize(
    "regime", [r if r in FAST_REGIMES else pytest.param(r, marks=pytest.mark.slow) for r in regime_names()]
)
def test_every_regime_has_two_baselines_per_family_in_its_window(regime):
    from netspaces.models.matched import matched_baselines

    r = get_regime(regime)
    found = matched_baselines(r)
    assert [m.family for m in found] == ["efficientnet", "efficientnet", "resnext", "resnext"]
    for m in found:
        assert r.lo <= m.flops <= r.hi, m
    published = {"400mf": "EfficientNet-B0", "600mf": "EfficientNet-B1"}  # 386 and 570 MF at 224 px: as is
    for m in found:
        if m.published == published.get(regime):
            assert (m.name, m.width_mult, m.scaled) == (m.published, 1.0, False)
        else:
            assert m.scaled and m.name == f"{m.published}-{regime.upper()}"


def test_netspaces_baselines_lists_them_with_their_complexity(capsys):
    assert main(["baselines", "--regime", "200mf", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sum(r["family"] == "efficientnet" for r in rows) >= 2 and sum(r["family"] == "resnext" for r in rows) >= 2
    assert all(180e6 <= r["flops"] <= 200e6 and r["params"] > 0 and r["acts"] > 0 for r in rows)
    assert main(["baselines", "--regime", "200mf"]) == 0  # the same, as a table
    text = capsys.readouterr().out
    assert "[180, 200] MF" in text and all(r["name"] in text for r in rows)
    assert main(["baselines", "--regime", "300mf"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown regime '300mf'" in err


# ---------------------------------------------------------------- model=baselines (config)


def test_model_baselines_sweeps_its_members_with_their_family_recipe():
    assert hydra_conf.sample_sweep("matched", 100, ["model=baselines"]) == ",".join(BASELINES)
    assert hydra_conf.sample_sweep("sampled", 3, []) == "range(0,3)"
    assert hydra_conf.run_subdir("matched", "resnext50", "model=baselines,model.stem=cifar", 0) == (
        "resnext50,model.stem=cifar"
    )
    assert hydra_conf.run_subdir("matched", 0, "", 0) == "efficientnet_b0"
    hashes = set()
    for key in BASELINES:
        cfg = compose_train(["model=baselines", "regime=200mf", f"sample={key}", "paths.run_dir=unused"])
        choice = check_config(cfg)
        assert (choice.kind, choice.name, choice.regime.name) == ("matched", key, "200mf")
        o = optim_settings(cfg, 1)
        want = (0.2, 1e-5) if key.startswith("efficientnet") else (0.1, 5e-5)
        assert (o.base_lr, o.weight_decay) == want
        hashes.add(identity.of(cfg)[0])
    assert len(hashes) == 1  # the members are one experiment: one population table
    assert compose_train(["model=baselines", "regime=200mf"]).sweep.name == "baselines-200mf-digits-population-s0"
    with pytest.raises(UserError, match="sample=7 is not a baseline"):
        check_config(compose_train(["model=baselines", "sample=7", "paths.run_dir=unused"]))


# ---------------------------------------------------------------- trained on digits, then analysed


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """A tiny RegNetX population and the four 200mf baselines, trained on digits alike."""
    tmp = tmp_path_factory.mktemp("baselines")
    common = ["regime=200mf", *TINY, f"paths.output={tmp}"]
    population = run_train(["-m", "space=regnetx", "sweep.n=3", *common], tmp, timeout=600)
    assert population.returncode == 0, population.stderr[-3000:]
    baselines = run_train(["-m", "model=baselines", *common], tmp, timeout=600)
    assert baselines.returncode == 0, baselines.stderr[-3000:]
    return {
        "tmp": tmp,
        "population": tmp / "sweeps" / "regnetx-200mf-digits-quick-s0",
        "baselines": tmp / "sweeps" / "baselines-200mf-digits-quick-s0",
    }


def _analyze(capsys, *args: str) -> tuple[int, str, str]:
    """`netspaces analyze ARGS` in this process: exit code, stdout, stderr."""
    code = main(["analyze", *args, "--n-boot", "50"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_baselines_train_on_digits_as_one_experiment(trained):
    sweep = trained["baselines"]
    # each job in <sweep>/<key>[,its other overrides]/
    records = {p.parent.name.split(",")[0]: json.loads(p.read_text()) for p in sweep.glob("*/result.json")}
    assert set(records) == set(BASELINES)
    window = get_regime("200mf")
    assert {r["identity"] for r in records.values()} == {json.loads((sweep / "identity.json").read_text())["hash"]}
    for key, r in records.items():
        assert r["status"] == "ok" and 0 <= r["top1_err"] <= 100 and r["regime"] == "200mf"
        assert window.lo <= r["flops"] <= window.hi and r["arch"]["baseline"] == key
        assert r["trained"]["num_classes"] == 10 and r["trained"]["resolution"] == 32
        assert r["lr"] == pytest.approx((0.2 if key.startswith("efficientnet") else 0.1) * 64 / 128)
    assert len((sweep / "population.csv").read_text().splitlines()) == 1 + len(BASELINES)


def test_analyze_places_each_baseline_in_the_population(trained, capsys):
    out = trained["tmp"] / "analysis"
    code, stdout, stderr = _analyze(
        capsys, str(trained["population"]), "--baselines", str(trained["baselines"]), "--out", str(out)
    )
    assert code == 0, stderr
    summary = json.loads((out / "summary.json").read_text())
    errors = np.array(
        [json.loads(p.read_text())["top1_err"] for p in trained["population"].glob("sample_*/result.json")]
    )
    assert len(errors) == 3 and set(summary["baselines"]) == {
        json.loads(p.read_text())["name"] for p in trained["baselines"].glob("*/result.json")
    }
    for name, b in summary["baselines"].items():
        share = b["populations"]["regnetx"]
        assert share["beats_pct"] == pytest.approx(100 * np.mean(errors > b["error"]))
        assert share["n"] == 3 and share["identity_checked"] is True
        assert share["text"] == f"{name} beats {share['beats_pct']:.0f}% of regnetx models"
        assert 180e6 <= b["flops"] <= 200e6
        assert f"baseline {name}: error {b['error']:.3f}" in stdout
    page = (out / "report.html").read_text()
    table = re.search(r'<table id="baselines">.*?</table>', page, re.S)
    assert table and all(name in table.group(0) for name in summary["baselines"])
    assert (out / "edf.png").stat().st_size > 0 and (out / "edf_norm.png").stat().st_size > 0


def test_edf_plots_draw_the_baselines(trained):
    from netspaces.analysis.baselines import load_baselines
    from netspaces.analysis.plots import edf_plot
    from netspaces.analysis.populations import load_population

    p = load_population(str(trained["population"]))
    found = load_baselines([str(trained["baselines"])])
    assert edf_plot([p], None, "error EDF", found.baselines) != edf_plot([p], None, "error EDF")


def test_baselines_trained_otherwise_are_refused_with_one_line(trained, tmp_path, capsys):
    other = tmp_path / "other-baselines"
    shutil.copytree(trained["baselines"], other)
    ident = json.loads((other / "identity.json").read_text())
    ident["payload"]["schedule.epochs"] = 5
    (other / "identity.json").write_text(json.dumps(ident))
    out = tmp_path / "refused"
    code, _, stderr = _analyze(capsys, str(trained["population"]), "--baselines", str(other), "--out", str(out))
    assert code == 2 and not out.exists()
    assert stderr.count("\n") == 1 and "schedule.epochs 2 -> 5" in stderr
    assert "trained under another experiment than population regnetx" in stderr


def test_a_baseline_table_is_placed_but_not_checked(trained, tmp_path, capsys):
    table = tmp_path / "published.csv"
    table.write_text("name,top1_err,flops\nsomething,50.0,190000000\nworst,100.0,\n")
    out = tmp_path / "table"
    code, _, stderr = _analyze(capsys, str(trained["population"]), "--baselines", str(table), "--out", str(out))
    assert code == 0, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["baselines"]["worst"]["populations"]["regnetx"]["beats_pct"] == 0.0
    assert summary["baselines"]["worst"]["flops"] is None
    assert summary["baselines"]["something"]["populations"]["regnetx"]["identity_checked"] is False
    assert any("were not checked" in n for n in summary["notes"])
    bad = tmp_path / "bad.csv"
    bad.write_text("name,top1_err\nx,140\n")
    code, _, stderr = _analyze(
        capsys, str(trained["population"]), "--baselines", str(bad), "--out", str(tmp_path / "no")
    )
    assert code == 2 and "top1_err must be a number in [0, 100], got 140" in stderr


def test_headless_chromium_shows_the_baseline_table(trained, tmp_path, capsys):
    import subprocess

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    out = tmp_path / "analysis"
    code, _, stderr = _analyze(
        capsys, str(trained["population"]), "--baselines", str(trained["baselines"]), "--out", str(out)
    )
    assert code == 0, stderr
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", (out / "report.html").as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    table = re.search(r'<table id="baselines">.*?</table>', dom.stdout, re.S)
    names = json.loads((out / "summary.json").read_text())["baselines"]
    assert table and len(names) == len(BASELINES) and all(name in table.group(0) for name in names)
    assert "What was trained" in dom.stdout  # the header, in the same rendered page
