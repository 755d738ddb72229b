"""The architecture, pinned: which rooms may import what, and every config option composes."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from conftest import REPO, compose_train, group_options

SRC = REPO / "src" / "netspaces"


def _imported(module: str) -> set[str]:
    """sys.modules after importing `module` (and its submodules) in a fresh interpreter."""
    code = (
        "import importlib, json, pkgutil, sys\n"
        f"m = importlib.import_module({module!r})\n"
        "for info in pkgutil.walk_packages(getattr(m, '__path__', []), m.__name__ + '.'):\n"
        "    importlib.import_module(info.name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return set(json.loads(out.stdout))


def _roots(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_the_design_space_maths_is_torch_free():
    loaded = _imported("netspaces.space")
    assert not _roots(loaded) & {"torch", "hydra", "omegaconf", "lightning", "pandas", "matplotlib"}
    assert not {
        m
        for m in loaded
        if m.startswith(("netspaces.train", "netspaces.perf", "netspaces.models", "netspaces.analysis"))
    }


@pytest.mark.parametrize("package", ["netspaces.models", "netspaces.analysis"])
def test_models_and_analysis_import_nothing_of_training_hydra_or_the_perf_seam(package):
    loaded = _imported(package)
    assert not {m for m in loaded if m.startswith(("netspaces.train", "netspaces.perf"))}
    assert not _roots(loaded) & {"hydra", "omegaconf", "lightning"}


def test_the_record_schema_and_the_cli_load_no_heavy_library():
    for module in ("netspaces.record", "netspaces.cli"):
        assert not _roots(_imported(module)) & {"torch", "hydra", "lightning", "pandas", "matplotlib", "scipy"}


def _imports(path) -> set[str]:
    """Every module an `import` or `from … import` statement of the file names (lazy ones too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize(
    "room,forbidden",
    [
        ("space", ("netspaces.models", "netspaces.train", "netspaces.analysis", "netspaces.perf", "torch", "hydra")),
        ("models", ("netspaces.train", "netspaces.analysis", "netspaces.perf", "hydra", "omegaconf", "lightning")),
        ("analysis", ("netspaces.train", "netspaces.perf", "netspaces.models", "hydra", "lightning")),
    ],
)
def test_no_room_imports_back_up_the_chain_even_lazily(room, forbidden):
    # arrows point one way: space <- models <- train; space <- analysis; record shared by all
    for path in (SRC / room).glob("*.py"):
        bad = {m for m in _imports(path) if m.startswith(forbidden)}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_train_modules_have_no_import_cycle():
    graph = {
        f"netspaces.train.{p.stem}": {m for m in _imports(p) if m.startswith("netspaces.train.")}
        for p in (SRC / "train").glob("*.py")
    }
    for module, deps in graph.items():
        for dep in deps:
            assert module not in graph.get(dep, set()), f"{module} and {dep} import each other"


def _every_option() -> list[tuple[str, str]]:
    groups = ("space", "block", "regime", "model", "data", "schedule", "trainer", "logger")
    return [(g, option) for g in groups for option in group_options(g)]


@pytest.mark.parametrize("group,option", _every_option())
def test_every_option_of_every_group_composes(group, option):
    from omegaconf import OmegaConf

    from netspaces.train.settings import check_config

    overrides = [f"{group}={option}", "paths.run_dir=unused"]
    if (group, option) == ("model", "timm"):
        overrides.append("model.name=regnetx_004")
    cfg = compose_train(overrides)
    OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)  # every interpolation resolves
    choice = check_config(cfg)  # every value of the option is allowed
    if group in ("space", "block", "regime"):
        assert (choice.space, choice.block, choice.regime.name)[("space", "block", "regime").index(group)] == option
