"""Packaging: the declared ranges admit the exact lock `make install` builds; metadata files."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement

from conftest import REPO


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name.strip().lower())] = version.strip()
    return pins


def test_the_lock_satisfies_every_declared_range():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    # dali is for GPU machines only (~700 MB): declared, never installed by `make install`
    declared = project["dependencies"] + [r for name, extra in extras.items() if name != "dali" for r in extra]
    pins = _lock()
    for text in declared:
        req = Requirement(text)
        name = re.sub(r"[-_.]+", "-", req.name.lower())
        assert name in pins, f"{req.name} is declared but not pinned in requirements.lock"
        assert req.specifier.contains(pins[name], prereleases=True), f"lock {name}=={pins[name]} is outside {req}"


def test_the_ranges_admit_the_gpu_machines_torch():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = {Requirement(r).name: Requirement(r) for r in project["dependencies"]}
    assert reqs["torch"].specifier.contains("2.11.0") and reqs["torchvision"].specifier.contains("0.26.0")
    from packaging.specifiers import SpecifierSet

    assert all(v in SpecifierSet(project["requires-python"]) for v in ("3.11.7", "3.12.3"))


def test_license_citation_changelog_and_one_version():
    import netspaces

    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    citation = (REPO / "CITATION.cff").read_text()
    assert "Designing Network Design Spaces" in citation and f"version: {netspaces.__version__}" in citation
    assert f"## {netspaces.__version__}" in (REPO / "CHANGELOG.md").read_text()
    assert 'dynamic = ["version"]' in (REPO / "pyproject.toml").read_text()
