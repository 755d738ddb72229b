"""OpenMP wait policy and the thread governor: decisions from CPU use, on fake and real /proc data."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from netspaces import openmp
from netspaces.openmp import CpuUse, ThreadGovernor, choose_wait_policy, others_busy, read_cpu_use

STAT = """cpu  900 0 300 5000 100 0 0 0 0 0
cpu0 400 0 100 2000 50 0 0 0 0 0
cpu1 500 0 200 3000 50 0 0 40 0 0
cpu2 7777 0 0 1 0 0 0 0 0 0
intr 1 2 3
"""


def test_read_cpu_use_sums_only_our_cpus(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(STAT)
    use = read_cpu_use({0, 1}, stat=str(stat))
    # steal (cpu1: 40) counts in the total, not as busy: no process here can give it back
    assert (use.busy, use.total, use.n_cpus) == (400 + 100 + 500 + 200, 2550 + 3790, 2)
    assert read_cpu_use({0, 1}, stat=str(tmp_path / "missing")) is None


def test_others_busy_subtracts_our_own_cpu_time():
    before = CpuUse(busy=1000, total=10000, own_s=5.0, n_cpus=2)
    after = CpuUse(busy=1000 + 300, total=10000 + 400, own_s=5.5, n_cpus=2)  # 75% of 2 CPUs busy
    assert others_busy(before, after, wall_s=1.0) == pytest.approx(1.5 - 0.5)
    assert others_busy(before, after, wall_s=0.0) is None and others_busy(None, after, 1.0) is None


def test_the_policy_sleeps_beside_busy_processes_and_spins_alone(tmp_path):
    env: dict[str, str] = {}
    why = choose_wait_policy(env, measure=lambda: 1.2, runs_dir=tmp_path)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"} and "1.2 CPUs busy" in why
    env = {}
    assert choose_wait_policy(env, measure=lambda: 0.1, runs_dir=tmp_path) is None and env == {}
    assert (tmp_path / str(os.getpid())).is_file()  # registered as the spinning run
    env = {"GOMP_SPINCOUNT": "1000"}
    assert choose_wait_policy(env, measure=lambda: 2.0, runs_dir=tmp_path) is None  # the user decides
    assert env == {"GOMP_SPINCOUNT": "1000"}


def test_a_second_run_sleeps_while_another_spins_and_stale_pids_are_dropped(tmp_path):
    spinner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / str(spinner.pid)).touch()
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout.strip()
        (tmp_path / dead).touch()
        env: dict[str, str] = {}
        why = choose_wait_policy(env, measure=lambda: 0.0, runs_dir=tmp_path)
        assert env["OMP_WAIT_POLICY"] == "PASSIVE" and f"run {spinner.pid} already spin" in why
        assert not (tmp_path / dead).exists() and not (tmp_path / str(os.getpid())).exists()
    finally:
        spinner.kill()
        spinner.wait()
    env = {}
    assert choose_wait_policy(env, measure=lambda: 0.0, runs_dir=tmp_path) is None  # the spinner is gone


class FakeMachine:
    """/proc/stat of 2 CPUs where other processes use `others` CPUs and we use none."""

    def __init__(self) -> None:
        self.t, self.busy, self.total, self.others = 0.0, 0, 0, 0.0

    def advance(self, seconds: float, others: float) -> None:
        self.t += seconds
        self.total += int(200 * seconds)  # 2 CPUs x 100 jiffies/s
        self.busy += int(100 * seconds * others)

    def read(self) -> CpuUse:
        return CpuUse(self.busy, self.total, 0.0, 2)


def test_governor_gives_cpus_back_and_takes_them_again():
    m, calls = FakeMachine(), []
    g = ThreadGovernor(2, calls.append, every_s=2.0, read=m.read, clock=lambda: m.t)
    m.advance(1.0, others=1.0)
    assert g.tick() == 2 and calls == []  # not yet time to look
    m.advance(1.5, others=1.0)
    assert g.tick() == 1 and calls == [1]
    m.advance(3.0, others=1.0)
    assert g.tick() == 1 and calls == [1]
    m.advance(3.0, others=0.0)
    assert g.tick() == 2 and calls == [1, 2] and [t for _, t in g.changes] == [1, 2]


def test_a_deterministic_run_keeps_its_threads_and_warns_once():
    m, calls, warnings = FakeMachine(), [], []
    g = ThreadGovernor(2, calls.append, adjust=False, warn=warnings.append, every_s=1.0, read=m.read,
                       clock=lambda: m.t)
    for _ in range(3):
        m.advance(2.0, others=1.5)
        assert g.tick() == 2
    assert calls == [] and warnings == [pytest.approx(1.5)]


def test_a_real_busy_process_is_measured():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # past its start-up
        assert openmp.measure_others_busy(0.5) >= 0.8  # the loop keeps one of our CPUs busy
    finally:
        busy.kill()
        busy.wait()


def test_the_training_callback_moves_torch_threads(monkeypatch):
    import torch

    from netspaces.train.share_cpus import ShareCpus

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        callback = ShareCpus(deterministic=False, every_s=0.4)
        callback.on_train_start(None, None)
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.5)
            callback.on_train_batch_end()
            assert torch.get_num_threads() == 1
        finally:
            busy.kill()
            busy.wait()
        time.sleep(0.5)
        callback.on_train_batch_end()
        assert torch.get_num_threads() == 2
        assert ShareCpus(deterministic=True).governor is None  # made at train start, when threads > 1
    finally:
        torch.set_num_threads(before)
