#!/usr/bin/env bash
# The GPU check (benchmarks/README.md, "GPU check"): one `NAME: value` line per figure, in
# under 7 minutes on one GPU (the timeouts below sum to 400 s). Without CUDA the parts that need it print `NAME: skipped (no CUDA)`.
#
#   scripts/gpu_check.sh            # everything: pytest -m gpu, train img/s vs timm, decode img/s, sweep kill+resume,
#                                   # sweep.pack=K models/h and peak memory
#   scripts/gpu_check.sh --quick    # a few steps/images per figure: checks the script itself (tests/test_gpu_check.py)
#
# On a GPU machine without a package registry: run scripts/gpu_wheels.sh where there is one
# first; this script installs the wheels it left in .whl/ (carried beside the tree) into
# /tmp/site. Imagenette is read from ../shared/data, $NETSPACES_DATA or .gpu_data/ (carried).
set -uo pipefail
cd "$(dirname "$0")/.."
QUICK=""
case "${1:-}" in
    --quick) QUICK=--quick ;;
    "") ;;
    *) echo "error: unknown option ${1}: use --quick or nothing" >&2; exit 2 ;;
esac
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON; elif [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi

if ls .whl/*.whl >/dev/null 2>&1 && ! "$PY" -c "import hydra, omegaconf" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "error: could not install the wheels in .whl/" >&2; exit 1; }
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
start=$(date +%s)

"$PY" -c 'import sys, torch; print(f"python: {sys.version.split()[0]}"); print(f"torch: {torch.__version__}"); print("cuda: " + (torch.cuda.get_device_name() if torch.cuda.is_available() else "none"))'
HAVE_CUDA=$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))')

if [ "$HAVE_CUDA" = 1 ]; then
    log=$(mktemp)
    timeout 90 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py >"$log" 2>&1
    rc=$?
    echo "pytest_gpu: $(tail -1 "$log") (exit $rc)"
    [ $rc -eq 0 ] || tail -40 "$log" >&2
else
    echo "pytest_gpu: skipped (no CUDA)"
fi
timeout 120 "$PY" benchmarks/gpu_check.py train $QUICK || echo "train_img_s: FAILED or timed out (exit $?)"
timeout 40 "$PY" benchmarks/gpu_check.py decode $QUICK || echo "decode_img_s: FAILED or timed out (exit $?)"
timeout 75 "$PY" benchmarks/gpu_check.py sweep $QUICK || echo "sweep_kill_resume: FAILED or timed out (exit $?)"
timeout 75 "$PY" benchmarks/gpu_check.py pack $QUICK || echo "pack_models_h: FAILED or timed out (exit $?)"
echo "gpu_check_s: $(( $(date +%s) - start ))"
