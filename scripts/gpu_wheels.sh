#!/usr/bin/env bash
# Fetch, on a machine with a package registry, the wheels scripts/gpu_check.sh installs on a
# GPU machine that has none: its own Python 3.12 with torch, torchvision, lightning, timm,
# torchmetrics, scikit-learn, matplotlib and rich, but not Hydra, OmegaConf or the launchers.
# The wheels go to .whl/ (git-ignored; ~1 MiB, under the 64 MiB carried beside the tree), at
# the versions of requirements.lock; gpu_check.sh installs them with
#   python3 -m pip install --no-index --no-deps --target /tmp/site .whl/*.whl
#
#   scripts/gpu_wheels.sh              # hydra-core, omegaconf, antlr4, launchers, submitit
#   scripts/gpu_wheels.sh --with-wandb # and wandb with what it needs (~25 MiB more)
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.whl
PY=${PYTHON:-python3}
lock() { grep -i "^$1==" requirements.lock | head -1; }

NEED=(hydra-core omegaconf hydra-joblib-launcher hydra-submitit-launcher submitit)
# wandb and those of its needs the GPU image lacks (it has protobuf, requests, click, psutil, pyyaml)
WANDB=(wandb pydantic pydantic-core annotated-types typing-inspection sentry-sdk gitpython gitdb smmap platformdirs)
case "${1:-}" in
    --with-wandb) NEED+=("${WANDB[@]}") ;;
    "") ;;
    *) echo "error: unknown option ${1}: use --with-wandb or nothing" >&2; exit 2 ;;
esac

mkdir -p "$DEST"
PLATFORMS=()
for n in 17 27 28 34 35; do PLATFORMS+=(--platform "manylinux_2_${n}_x86_64"); done
for name in "${NEED[@]}"; do
    pin=$(lock "$name")
    [ -n "$pin" ] || { echo "error: $name is not in requirements.lock" >&2; exit 1; }
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --abi cp312 --abi abi3 --abi none "${PLATFORMS[@]}" --platform manylinux2014_x86_64 --platform any \
        -d "$DEST" "$pin"
done
# antlr4-python3-runtime 4.9.3 (what OmegaConf 2.3 needs) is published as a source archive
# only: build its pure-Python wheel here
"$PY" -m pip wheel -q --no-deps -w "$DEST" "$(lock antlr4-python3-runtime)"
ls -1 "$DEST"
du -sh "$DEST"
