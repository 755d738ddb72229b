"""Two checkouts share the heavy environment but never run each other's code."""

from __future__ import annotations

import os
import subprocess

from conftest import REPO


def _copy_checkout(dest):
    """The working tree as git sees it (tracked and untracked, not ignored files)."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src, dst = REPO / name.decode(), dest / name.decode()
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
            dst.chmod(src.stat().st_mode)


def test_each_checkout_runs_its_own_code(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _copy_checkout(a)
    _copy_checkout(b)
    init = b / "src" / "netspaces" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "9.9.9+b-'))  # B runs other code
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"NETSPACES_SKIP_CHROMIUM": "1"}
    for tree in (a, b, a):  # installing one never re-points the other
        done = subprocess.run(["make", "-s", "install"], cwd=tree, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]

    def versions(tree):
        cli = subprocess.run(
            [str(tree / ".venv/bin/netspaces"), "--version"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        module = subprocess.run(
            [str(tree / ".venv/bin/python"), "-m", "netspaces", "--version"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        imported = subprocess.run(
            [str(tree / ".venv/bin/python"), "-c", "import netspaces; print(netspaces.__file__)"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return cli, module, imported

    for tree in (a, b):
        cli, module, imported = versions(tree)
        assert str(tree / "src") in cli and cli == module and imported.startswith(str(tree / "src"))
        assert ("9.9.9+b" in cli) == (tree == b)
