"""perf.keep_freed_memory: on glibc a freed large block is reused from the heap instead of being
unmapped and faulted in again; measured as page faults in fresh processes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO

PROBE = """
import resource, sys
sys.path.insert(0, {src!r})
from netspaces.perf import keep_freed_memory
took = keep_freed_memory() if sys.argv[1] == "keep" else None
import numpy as np
np.ones(16 * 2**20, dtype=np.float32)  # one 64 MB block first, so both processes start alike
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    block = np.ones(16 * 2**20, dtype=np.float32)
    del block
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(src=str(REPO / "src")), mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_blocks_come_back_without_page_faults():
    took, kept = _faults("keep")
    _, default = _faults("default")
    assert took == "True"
    assert default >= 20 * 32  # each 64 MB block mapped afresh: >= one fault per 2 MB page
    assert kept < 50  # the same heap memory, reused


def test_the_switch_is_a_perf_setting():
    from netspaces.perf import PerfSettings, process_setup

    assert process_setup(PerfSettings(keep_freed_memory=False), on_gpu=False) == []
    assert process_setup(PerfSettings(), on_gpu=True) == []  # a GPU run's host side is left alone
