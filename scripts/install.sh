#!/usr/bin/env bash
# Set up .venv: a link to a shared, content-addressed environment in the user cache.
# The key is the hash of the pinned requirements, so fresh clones and CI reuse one ~6 GB
# environment instead of building their own. Idempotent; safe to run concurrently.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
key=$( (cat requirements.txt requirements.lock; "$PYTHON" -c 'import sys; print(sys.version_info[:2])') | sha256sum | cut -c1-16)
cache=${NETSPACES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/netspaces}
target="$cache/venv-$key"
mkdir -p "$cache"

exec 9>"$cache/.lock-$key"
flock 9
if [ ! -f "$target/.complete" ]; then
    echo "netspaces: creating environment $target (first time only, ~3 min)"
    rm -rf "$target"
    "$PYTHON" -m venv "$target"
    "$target/bin/pip" install -q --disable-pip-version-check -r requirements.lock
    "$target/bin/pip" check
    touch "$target/.complete"
fi
flock -u 9

if [ "$(readlink .venv 2>/dev/null || true)" != "$target" ]; then
    rm -rf .venv
    ln -s "$target" .venv
fi

# The shared environment holds one editable install of netspaces; point it at this checkout.
if ! env -u PYTHONPATH .venv/bin/python - <<'PY' 2>/dev/null
import os, sys, netspaces
sys.exit(0 if os.path.realpath(netspaces.__file__).startswith(os.path.realpath("src") + os.sep) else 1)
PY
then
    .venv/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
fi

# Headless chromium for the HTML-report browser test (Debian package), only when absent.
if ! command -v chromium >/dev/null 2>&1 && [ "${NETSPACES_SKIP_CHROMIUM:-0}" != 1 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        (apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }) \
            || echo "netspaces: chromium could not be installed; the browser test will be skipped"
    else
        echo "netspaces: chromium absent and not root; the browser test will be skipped"
    fi
fi
