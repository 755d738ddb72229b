"""logger=wandb without a key: an offline run with the record in its summary, no network."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading

from conftest import REPO, TINY, subprocess_env


class ConnectionCounter:
    """A local TCP listener standing in for the internet: it counts who tried to connect."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.count += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def test_offline_wandb_run_holds_the_record_and_touches_no_network(tmp_path):
    proxy, api = ConnectionCounter(), ConnectionCounter()
    env = subprocess_env(tmp_path)
    env.pop("WANDB_MODE")  # no key: netspaces must choose offline by itself
    env.update(
        {
            "HTTP_PROXY": f"http://127.0.0.1:{proxy.port}",
            "HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}",
            "http_proxy": f"http://127.0.0.1:{proxy.port}",
            "https_proxy": f"http://127.0.0.1:{proxy.port}",
            "WANDB_BASE_URL": f"http://127.0.0.1:{api.port}",
            "HOME": str(tmp_path),
        }
    )  # no ~/.netrc key
    for key in ("NO_PROXY", "no_proxy"):
        env.pop(key, None)
    try:
        out = subprocess.run(
            [
                sys.executable,
                str(REPO / "train.py"),
                "-m",
                "sweep.n=1",
                "logger=wandb",
                *TINY,
                f"paths.output={tmp_path / 'out'}",
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        proxy.close()
        api.close()
    assert out.returncode == 0, out.stderr[-3000:]
    record_path = next((tmp_path / "out").rglob("result.json"))
    record = json.loads(record_path.read_text())
    runs = list(record_path.parent.glob("wandb/offline-run-*"))
    assert len(runs) == 1, list(record_path.parent.rglob("*"))[:20]
    # the record travels with the run's files, and its fields went into the run summary (the
    # offline transaction log, uploaded by `wandb sync`); group and name identify the sample
    assert json.loads((runs[0] / "files" / "result.json").read_text()) == record
    log = next(runs[0].glob("run-*.wandb")).read_bytes()
    for key in (
        "status",
        "space",
        "regime",
        "sample",
        "top1_err",
        "top1_err_best",
        "top5_err",
        "flops",
        "params",
        "acts",
        "epochs",
        "train_time_s",
        "arch",
    ):
        assert key.encode() in log, key
    assert b"regnetx-400mf-digits-quick-s0" in log and b"regnetx-400mf-s0-000" in log  # group, run name
    assert (proxy.count, api.count) == (0, 0)  # no connection was even attempted
    assert "WANDB_API_KEY" not in env
