"""DDP that fails fast: when a rank dies, the whole job stops (rank 0, the job's own process,
included), a `failed` record names the rank and its last lines, and a sweep goes on; a hang
is bounded by trainer.collective_timeout_s.

The timeouts here are generous on purpose (an hour for the collectives): a job that did not
stop by itself would hit the test's own limit and fail it. Nothing measures how long a stop
takes, so the tests do not depend on the machine's load."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from datetime import timedelta

import pytest

from conftest import REPO, TINY, compose_train, subprocess_env
from netspaces.train import ddp

SWEEP = "regnetx-400mf-digits-quick-s0"
STARTED = re.compile(r"^\[rank 1\] DDP worker started \(pid (\d+)\)")
EPOCH = re.compile(r"epoch 1/\d+")
DDP_CPU = ["trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu", "trainer.collective_timeout_s=3600"]


def _sweep_killing_rank_1(tmp_path, extra: list[str], kill_after: re.Pattern | None) -> tuple[int, str, list[int]]:
    """`train.py -m` whose first job's rank 1 is SIGKILLed as soon as it starts (or, with
    `kill_after`, once a line of the job matches it); returns (exit code, stderr, worker pids)."""
    cmd = [sys.executable, str(REPO / "train.py"), "-m", *DDP_CPU, *TINY, *extra, f"paths.output={tmp_path}"]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=subprocess_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    pids: list[int] = []
    killed = threading.Event()

    def read(stream) -> None:
        for line in stream:
            lines.append(line)
            started = STARTED.match(line)
            if started:
                pids.append(int(started.group(1)))
            if pids and not killed.is_set() and (kill_after is None or kill_after.search(line)):
                killed.set()
                os.kill(pids[0], signal.SIGKILL)

    readers = [threading.Thread(target=read, args=(s,), daemon=True) for s in (proc.stdout, proc.stderr)]
    for r in readers:
        r.start()
    try:
        code = proc.wait(timeout=900)  # far below the 3600 s collective timeout
    finally:
        proc.kill()
    for r in readers:
        r.join(timeout=10)
    assert killed.is_set(), "".join(lines)[-3000:]
    return code, "".join(lines), pids


def _records(tmp_path) -> dict[str, dict]:
    found = [json.loads(p.read_text()) for p in (tmp_path / "sweeps" / SWEEP).rglob("result.json")]
    return {f"sample_{r['sample']:03d}": r for r in found}


def _printed_by_rank_1(error: str, out: str) -> bool:
    """The record's last lines are lines rank 1 wrote (the job forwarded them as `[rank 1] …`)."""
    last = error.split("its last lines: ", 1)[1].split(" | ")
    rank_1 = [line for line in out.splitlines() if line.startswith("[rank 1] ")]
    return bool(last) and all(any(x in line for line in rank_1) for x in last)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_a_killed_rank_fails_its_job_with_a_record_naming_it_and_the_sweep_goes_on(tmp_path):
    # rank 1 dies as it starts: rank 0 (the sweep's own process) would otherwise wait for it
    # at the rendezvous for the whole collective timeout
    # one attempt: the failure itself is under test (a retry would succeed; tests/test_retries.py)
    code, out, pids = _sweep_killing_rank_1(tmp_path, ["sweep.n=2", "sweep.retries=0"], kill_after=None)
    assert code == 1, out[-3000:]
    recs = _records(tmp_path)
    assert sorted(recs) == ["sample_000", "sample_001"], out[-3000:]
    failed = recs["sample_000"]
    assert failed["status"] == "failed", failed["error"]
    assert "RankFailed: DDP rank 1 of 2 died (killed by SIGKILL)" in failed["error"]
    assert _printed_by_rank_1(failed["error"], out)
    assert recs["sample_001"]["status"] == "ok"  # the sweep moved on to the next model
    assert "error: DDP rank 1 of 2 died (killed by SIGKILL)" in out  # one line naming it
    assert len(pids) == 2 and all(_gone(p) for p in pids)  # no rank outlives its job
    assert not list((tmp_path / "sweeps").rglob(".ddp"))


@pytest.mark.slow
def test_a_rank_killed_while_training_stops_the_job(tmp_path):
    # killed once rank 0 has logged its first epoch: it is inside fit, between collectives
    code, out, pids = _sweep_killing_rank_1(
        tmp_path, ["sweep.n=1", "sweep.retries=0", "schedule.epochs=200", "schedule.eval_every=0"], kill_after=EPOCH
    )
    assert code == 1, out[-3000:]
    failed = _records(tmp_path)["sample_000"]
    assert failed["status"] == "failed"
    assert "DDP rank 1 of 2 died (killed by SIGKILL)" in failed["error"]
    assert _printed_by_rank_1(failed["error"], out)
    assert failed["epochs"] < 200
    assert all(_gone(p) for p in pids)


RENDEZVOUS = """
import sys, datetime, torch.distributed as dist
from pathlib import Path
from netspaces.train import ddp
try:
    with ddp.local_ranks("{config}", Path(sys.argv[1]), 2, 1, timeout_s=3600):
        dist.init_process_group("gloo", rank=0, world_size=2, timeout=datetime.timedelta(seconds=3600))
except ddp.RankFailed as exc:
    print("RankFailed:", exc)
"""


def test_rank_0_waiting_at_the_rendezvous_for_a_dead_rank_gets_an_error(tmp_path):
    # the worker cannot even read its config: it dies before it reaches the rendezvous
    script = RENDEZVOUS.format(config="{not: [valid")
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RankFailed: DDP rank 1 of 2 died (exit code 1); its last lines: " in out.stdout
    assert "ParserError" in out.stdout  # the end of its traceback: why it died
    assert "[rank 1] DDP worker started" in out.stderr  # its output reached the job's log
    assert not (tmp_path / ".ddp").exists()


def _worker(code: str) -> ddp.Worker:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return ddp.Worker(1, 2, proc)


def test_rank_0_stuck_where_no_error_reaches_it_is_ended_with_its_record(capfd):
    # the last resort: rank 0 never leaves its collective (done is never set)
    dead = _worker("import sys; print('loading data'); print('CUDA error: out of memory'); sys.exit(3)")
    seen: dict[str, object] = {}
    ddp._watch(
        ddp.Watch([dead]),
        threading.Event(),
        on_dead=lambda w: seen.setdefault("dead", w),
        on_stuck=lambda why: seen.setdefault("stuck", why),
        grace_s=0.1,
    )
    assert seen["dead"] is dead
    assert (
        seen["stuck"] == "DDP rank 1 of 2 died (exit code 3); its last lines: loading data | CUDA error: out of memory"
    )
    assert "[rank 1] CUDA error: out of memory" in capfd.readouterr().err


def test_a_rank_stopped_by_its_job_is_not_the_one_blamed():
    first = _worker("import sys; sys.exit(5)")
    first.proc.wait()
    watch = ddp.Watch([_worker("import time; time.sleep(60)"), first])
    assert watch.check() is first
    ddp.stop_workers(watch.workers)  # the job stops the other rank: it dies too, later
    assert watch.close() is first and "exit code 5" in first.describe()


def test_the_collective_timeout_reaches_the_process_group(tmp_path):
    from netspaces.train.settings import run_settings
    from netspaces.train.trainer import build_trainer

    cfg = compose_train([*DDP_CPU[:3], "trainer.collective_timeout_s=42", f"paths.run_dir={tmp_path}"])
    trainer = build_trainer(run_settings(cfg), [])
    assert trainer.strategy._timeout == timedelta(seconds=42)


def test_a_bad_collective_timeout_is_refused_in_one_line(tmp_path):
    from conftest import run_train

    out = run_train([*DDP_CPU[:3], "trainer.collective_timeout_s=0", f"paths.output={tmp_path}"], tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == "error: trainer.collective_timeout_s=0 is not allowed: must be > 0"
