"""Progress a researcher can read: the rich bar of a run on a terminal (a real pseudo-terminal),
the epoch line on a line of its own, and a sweep's "model k of N done" lines."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

from conftest import REPO, TINY, subprocess_env

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_on_a_terminal(args: list[str], tmp_path: Path, timeout: float = 300) -> str:
    """train.py ARGS with stdout and stderr on a pseudo-terminal; everything it drew."""
    main, other = pty.openpty()
    env = {**subprocess_env(tmp_path), "COLUMNS": "160", "LINES": "40", "TERM": "xterm"}
    fcntl.ioctl(other, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # a 160-column terminal
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *args], cwd=REPO, env=env, stdin=other, stdout=other, stderr=other
    )
    os.close(other)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([main], [], [], 1.0)
            if ready:
                try:
                    data = os.read(main, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                out += data
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=timeout) == 0, out.decode(errors="replace")[-3000:]
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
    return out.decode(errors="replace")


def test_a_run_on_a_terminal_shows_a_rich_bar_and_the_epoch_lines_stand_alone(tmp_path):
    args = [*TINY, "trainer.limit_train_batches=4", f"paths.output={tmp_path}"]
    drawn = run_on_a_terminal(args, tmp_path)
    # every state the terminal showed: pieces between carriage returns and newlines
    pieces = [ANSI.sub("", p) for p in re.split(r"[\r\n]", drawn)]
    bars = [p for p in pieces if p.startswith("epoch ") and " step " in p]
    finished = [p for p in bars if "step 4/4" in p]
    # numbered like the log (rich may draw a finished bar more than once)
    assert sorted({p.split(" ")[1] for p in finished}) == ["1/2", "2/2"], bars[-4:]
    for bar in finished:
        assert re.search(r"step 4/4 \d+ img/s  loss \d+\.\d{4}  lr 0\.0\d+ elapsed \d+:\d\d  ETA \d+:\d\d", bar), bar
    lines = [p for p in pieces if "epoch 1/2  " in p or "epoch 2/2  " in p]
    assert len(lines) == 2, lines
    for line in lines:  # the log line starts a line of its own: no bar text in front of it
        assert line.startswith("[") and "] - epoch " in line and "━" not in line, line
    assert "Epoch 0" not in ANSI.sub("", drawn)  # no second, 0-based bar


def test_progress_line_counts_the_ended_models_and_extrapolates_the_pace():
    import time

    from netspaces.train.sweep import progress_line

    ok, failed = {"status": "ok", "top1_err": 41.0}, {"status": "failed", "top1_err": None}
    started = time.time() - 120  # this command ended 2 models in 2 minutes
    assert progress_line(ok, 3, 2, 6, started) == "model 3 of 6 done (ok, top1_err 41.00%), ETA 3:00"  # 3 left
    assert progress_line(ok, 3, 2, 3, started).endswith("ETA 0:00")
    assert progress_line(ok, 1, 0, 4, started).endswith("ETA not yet known")
    assert progress_line(failed, 3, 2, None, started) == "model 3 done (failed, top1_err n/a)"
