"""The allocator setting of CPU training: freed large blocks stay in the heap (no page faults
to get them back), measured in fresh processes."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

PROBE = """
import resource, sys
sys.path.insert(0, {src!r})
from netspaces.malloc import keep_freed_memory
took = keep_freed_memory() if sys.argv[1] == "keep" else None
import numpy as np
np.ones(16 * 2**20, dtype=np.float32)  # 64 MB, once, so both processes start alike
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    a = np.ones(16 * 2**20, dtype=np.float32)
    del a
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(src=str(REPO / "src")), mode], capture_output=True,
                         text=True, check=True, timeout=120).stdout.split()
    return out[0], int(out[1])


def test_freed_blocks_are_reused_without_page_faults():
    took, kept = _faults("keep")
    _, default = _faults("default")
    assert took == "True"  # glibc on Linux
    # glibc maps and unmaps each 64 MB block, so every page faults again: at least one fault
    # per 2 MB (huge pages, where numpy asks for them) of each of the 20 blocks
    assert default >= 20 * 32
    assert kept < 50  # the block is reused from the heap
