"""Code snapshots: a sweep runs the code it started with, whatever happens to the checkout.

At sweep start the launching process (SweepCallback.on_multirun_start) copies what a run
executes — train.py, conf/ and the netspaces package — into <sweep>/.code/<12 hex>/ and
re-executes itself from that copy (same arguments, same process id). From then on every
job imports the snapshot, wherever it runs: in this process (basic launcher), in joblib's
workers or as submitit/SLURM tasks that start hours later (they inherit PYTHONPATH, and
Hydra composes their configs from the snapshot's conf/). Re-executing is the one way to
cover the in-process launcher too: modules already imported cannot be swapped safely.

The code hash covers every file's path and content (no __pycache__); each record carries
the hash of the code that trained it (`code_hash`). A rerun whose code has the same hash
reuses the snapshot; code with another hash is another experiment, refused with one line
unless sweep.allow_code_change=true, which takes a new snapshot beside the old one (tasks
still queued by an earlier command keep running theirs) and is recorded. The hash is not
part of the population identity (train/identity.py): that one says what a run computes
from its config, and changing it for every commit would split populations that no code
change touched. Torch-free.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from netspaces.errors import UserError
from netspaces.record import CODE_DIR, read_json_object, write_atomic

CODE_PARTS = ("train.py", "conf", "src/netspaces")  # what a run executes, relative to a checkout
META_FILE = "snapshot.json"  # in a snapshot: its hash, where it came from, that checkout's commit
CURRENT_FILE = "current.json"  # in <sweep>/code: the snapshot this sweep's jobs run from


def code_root() -> Path | None:
    """The checkout (or snapshot) the running netspaces comes from: the directory holding
    train.py, conf/ and src/netspaces. None for an installed package (nothing to copy)."""
    import netspaces

    package = Path(netspaces.__file__).resolve().parent
    root = package.parent.parent
    if package.parent.name == "src" and (root / "train.py").is_file() and (root / "conf").is_dir():
        return root
    return None


def manifest(root: Path, parts: tuple[str, ...] = CODE_PARTS) -> dict[str, str]:
    """{relative path: sha256 of its content} of the code files under `root`."""
    out = {}
    for part in parts:
        top = Path(root) / part
        found = [top] if top.is_file() else sorted(top.rglob("*")) if top.is_dir() else []
        for f in found:
            if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc":
                out[f.relative_to(root).as_posix()] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def tree_hash(files: dict[str, str]) -> str:
    text = "".join(f"{path}\0{digest}\n" for path, digest in sorted(files.items()))
    return hashlib.sha256(text.encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def running_code_hash() -> str:
    """The hash of the code this process runs (a record's `code_hash`), looked up once: a
    process runs the code it imported."""
    root = code_root()
    if root is not None:
        return tree_hash(manifest(root))
    import netspaces

    package = Path(netspaces.__file__).resolve().parent
    return tree_hash(manifest(package.parent, (package.name,)))


def meta(root: Path) -> dict | None:
    """A snapshot's snapshot.json (None for a checkout)."""
    data = read_json_object(Path(root) / META_FILE)
    return data if data is not None and "hash" in data else None


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the checkout netspaces runs from, "+dirty" when it has uncommitted changes;
    None when it is not a git checkout (an installed package) or git is missing. Looked up once
    per process: a process runs the code it imported, whatever is committed later. Run from a
    sweep's code snapshot: the commit of the checkout it was copied from."""
    root = Path(__file__).resolve().parents[3]
    snapshot = meta(root)
    if snapshot is not None:
        return snapshot.get("git_commit")
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def current(sweep_dir: Path) -> dict | None:
    """{"hash", "dir", ...} of the snapshot the sweep's jobs run from, None before the first."""
    data = read_json_object(Path(sweep_dir) / CODE_DIR / CURRENT_FILE)
    ok = data is not None and "hash" in data and (Path(sweep_dir) / CODE_DIR / str(data.get("dir"))).is_dir()
    return data if ok else None


def allow_code_change(value: object) -> bool:
    """sweep.allow_code_change: an explicit opt-in, so only true or false."""
    if not isinstance(value, bool):
        raise UserError(f"sweep.allow_code_change={value!r} is not allowed: true or false")
    return value


def copy_code(root: Path, dest: Path) -> None:
    """CODE_PARTS of the checkout `root` into `dest` (no bytecode)."""
    for part in CODE_PARTS:
        src, dst = root / part, dest / part
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dst)


def _take(sweep_dir: Path, root: Path, h: str) -> Path:
    """Copy the code into <sweep>/.code/<12 hex> (a temporary directory renamed into place)."""
    target = Path(sweep_dir) / CODE_DIR / h[:12]
    if target.is_dir():  # taken before (then left by an allowed change): the same content
        return target
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    for left in target.parent.glob(f".{target.name}.*.tmp"):  # a copy killed half-way (its pid is gone)
        if not Path(f"/proc/{left.name.split('.')[2]}").exists():
            shutil.rmtree(left, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        copy_code(root, tmp)
        if tree_hash(manifest(tmp)) != h:
            raise UserError(f"the code in {root} changed while it was copied into {target}; run the command again")
        info = {
            "hash": h,
            "source": str(root),
            "git_commit": git_commit(),  # of the checkout copied: records of jobs run from here say it
            "taken_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        write_atomic(tmp / META_FILE, json.dumps(info, indent=1) + "\n")
        tmp.rename(target)
    except OSError:
        if not target.is_dir():  # another launcher of the same sweep may have won the rename
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _refusal(sweep_dir: Path, old: str, new: str, files: dict[str, str], snapshot: Path | None) -> str:
    if snapshot is not None:
        before = manifest(snapshot)
        changed = sorted(p for p in set(before) | set(files) if before.get(p) != files.get(p))
        what = f"{len(changed)} file(s) differ from its snapshot: " + ", ".join(changed[:3])
        what += ", …" if len(changed) > 3 else ""
    else:
        what = "its records say so"
    return (
        f"{sweep_dir} holds a population trained with code {old[:12]}, this checkout's code is {new[:12]} "
        f"({what}); new code is another experiment: give it its own directory (hydra.sweep.dir=...) or "
        "continue this population with it: sweep.allow_code_change=true"
    )


def enter(sweep_dir: Path, allow_change: bool, records: Callable[[], list[dict]]) -> None:
    """At sweep start, in the launching process: return when it already runs from the
    sweep's snapshot; otherwise refuse changed code (UserError), or take or reuse the
    snapshot, say which in one line and re-execute this command from it (never returns)."""
    sweep_dir = Path(sweep_dir).resolve()
    root = code_root()
    if root is None:
        print("no code snapshot: netspaces runs from an installed package, not a checkout", flush=True)
        return
    now = current(sweep_dir)
    if now is not None and root == (sweep_dir / CODE_DIR / now["dir"]).resolve():
        return  # the re-executed process
    if Path(sys.argv[0]).resolve() != root / "train.py":
        print(f"no code snapshot: this process was not started as {root / 'train.py'}", flush=True)
        return
    files = manifest(root)
    h = tree_hash(files)
    trained = {now["hash"]} if now is not None else {r["code_hash"] for r in records() if r.get("code_hash")}
    if trained and trained != {h} and not allow_change:
        old = now["hash"] if now is not None else sorted(trained)[0]
        snap = sweep_dir / CODE_DIR / now["dir"] if now is not None else None
        raise UserError(_refusal(sweep_dir, old, h, files, snap))
    if now is not None and now["hash"] == h:
        target = sweep_dir / CODE_DIR / now["dir"]
        line = f"code snapshot {h[:12]} reused: {target} (the checkout's code is unchanged)"
    else:
        target = _take(sweep_dir, root, h)
        changed = sorted(trained - {h})
        state = {
            "hash": h,
            "dir": target.name,
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "previous": changed,
        }
        write_atomic(sweep_dir / CODE_DIR / CURRENT_FILE, json.dumps(state, indent=1) + "\n")
        line = f"code snapshot {h[:12]} taken: {target}; every job of this sweep runs from it"
        if changed:
            line += f" (the population's code was {', '.join(c[:12] for c in changed)}: sweep.allow_code_change=true)"
    print(line, flush=True)
    _reexec(root, target)


def _reexec(root: Path, snapshot: Path) -> None:
    """This command again, from the snapshot: its src/ first on PYTHONPATH (inherited by
    every worker and task), the checkout's src/ off it."""
    old_src = os.path.realpath(root / "src")
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and os.path.realpath(p) != old_src]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(snapshot / "src"), *paths]))
    options = sys.orig_argv[1 : len(sys.orig_argv) - len(sys.argv)]  # interpreter flags (-u, -X ...)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *options, str(snapshot / "train.py"), *sys.argv[1:]], env)
