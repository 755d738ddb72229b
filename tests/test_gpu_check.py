"""scripts/gpu_check.sh on a machine without CUDA: every figure it promises gets its
`NAME: value` line, the CPU-safe decode figures are measured on the real Imagenette JPEGs,
and each part that needs CUDA says so instead of failing."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import IMAGENETTE, REPO, needs, subprocess_env

LINE = re.compile(r"^([a-z0-9_.]+): (.+)$")
NEEDS_CUDA = [
    "pytest_gpu",
    "train_img_s.netspaces_regnetx_400mf.fp32.nchw",
    "train_img_s.timm_regnetx_004.bf16.nhwc",
    "train_ratio.bf16.nhwc",
    "train_img_s.netspaces_regnetx_400mf.bf16.nhwc.compiled",
    "decode_img_s.gpu_decode_jpeg",
    "sweep_kill_resume",
    "pack_models_h.k1",
    "pack_speedup.k8",
    "pack_peak_mem_gib.k8",
]


@needs(IMAGENETTE)
def test_gpu_check_runs_its_cpu_parts_and_names_what_it_skips(tmp_path):
    import torch

    if torch.cuda.is_available():
        import pytest

        pytest.skip("a CUDA machine runs the whole check (scripts/gpu_check.sh)")
    done = subprocess.run(
        [str(REPO / "scripts" / "gpu_check.sh"), "--quick"],
        cwd=REPO,
        env={**subprocess_env(tmp_path), "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert all(LINE.match(line) for line in lines), [x for x in lines if not LINE.match(x)]
    figures = dict(LINE.match(line).groups() for line in lines)
    assert figures["cuda"] == "none"
    for name in NEEDS_CUDA:
        assert figures[name] == "skipped (no CUDA)", name
    assert figures["decode_images"].startswith("16 ")
    for name in ("decode_img_s.pil_float", "decode_img_s.pil_uint8"):
        assert float(figures[name]) > 0, name
    assert figures["decode_img_s.dali"].startswith("not measured")


def test_gpu_check_refuses_an_unknown_option(tmp_path):
    done = subprocess.run(
        [str(REPO / "scripts" / "gpu_check.sh"), "--fast"],
        cwd=REPO,
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "error: unknown option --fast: use --quick or nothing"
