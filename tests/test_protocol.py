"""The committed reproduce-small protocol: its hash, deviations made loud, confirmatory seeds
only under the committed file, and the hash passed to every run."""

import hashlib
import importlib.util
import shutil
import subprocess
import sys

import pytest

from conftest import REPO
from netspaces.errors import UserError
from netspaces.protocol import FIXED, load_protocol


def _script():
    sys.path.insert(0, str(REPO / "scripts"))
    spec = importlib.util.spec_from_file_location("reproduce_small_under_test", REPO / "scripts" / "reproduce_small.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _following(p) -> dict:
    return {k: p[k] for k in FIXED}


def test_the_protocol_is_complete_and_hashed_from_its_bytes():
    p = load_protocol("reproduce_small")
    assert p.hash == hashlib.sha256((REPO / "protocols" / "reproduce_small.yaml").read_bytes()).hexdigest()[:12]
    assert p["spaces"] == ["regnetx", "anynetx_a"] and p["draw"] == "pycls" and p["stem"] == "cifar"
    assert 0 < p["alpha"] < 1 and p["confirmatory_seeds"] == [100, 101, 102]
    assert not set(p["exploratory_seeds"]) & set(p["confirmatory_seeds"])
    assert p.deviations(_following(p)) == []
    assert p.deviations({**_following(p), "models_per_space": 12}) == ["N=12 (protocol: 20)"]


def test_an_unknown_protocol_is_one_line():
    with pytest.raises(UserError, match="no protocol 'nope'; known: chain, reproduce_small, scale_study$"):
        load_protocol("nope")


def test_committed_means_equal_to_the_committed_file(tmp_path):
    src = REPO / "protocols" / "reproduce_small.yaml"
    outside = tmp_path / "plain" / "reproduce_small.yaml"
    outside.parent.mkdir()
    shutil.copy(src, outside)
    assert load_protocol(outside).is_committed() is None  # not a git checkout: cannot tell
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    path = repo / "reproduce_small.yaml"
    shutil.copy(src, path)
    assert load_protocol(path).is_committed() is False  # untracked
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "protocol"], check=True)
    assert load_protocol(path).is_committed() is True
    path.write_text(path.read_text().replace("alpha: 0.01", "alpha: 0.05"))
    assert load_protocol(path).is_committed() is False


def test_a_confirmatory_seed_is_refused_under_an_uncommitted_protocol(tmp_path, monkeypatch, capsys):
    path = tmp_path / "reproduce_small.yaml"
    shutil.copy(REPO / "protocols" / "reproduce_small.yaml", path)
    subprocess.run(["git", "-C", str(tmp_path), "init", "-q"], check=True)  # a checkout, file untracked
    script = _script()
    monkeypatch.setattr(script, "load_protocol", lambda name: load_protocol(path))
    assert script.main(["--seed", "101", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "differs from its committed version; a confirmatory seed (101)" in err[0]
    assert not (tmp_path / "out").exists()  # nothing written


def test_runs_that_follow_the_protocol_carry_its_hash_and_deviating_ones_do_not():
    import populations as pop  # scripts/, on sys.path through _script()

    _script()
    p = load_protocol("reproduce_small")
    s = pop.Setup(
        ("regnetx",),
        20,
        5,
        "200mf",
        500,
        REPO,
        REPO / "o",
        100,
        "joblib",
        2,
        stem="cifar",
        draw="pycls",
        protocol=p.hash,
    )
    ov = pop.train_overrides(s, "regnetx")
    assert {f"protocol={p.hash}", "model.stem=cifar", "space.draw=pycls", "data.limit_per_class=500"} <= set(ov)
    assert s.sweep_name("regnetx") == "regnetx-200mf-cifar10-500pc-e5-cifarstem-pycls-s100"
    from dataclasses import replace

    assert not any(o.startswith("protocol=") for o in pop.train_overrides(replace(s, protocol=None), "regnetx"))
