#!/usr/bin/env bash
# Set up .venv: this checkout's small environment layered on a shared, content-addressed one
# in the user cache. The key is the hash of the pinned requirements, so fresh clones and CI
# reuse one ~6 GB environment instead of building their own. Idempotent; safe to run
# concurrently.
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

# .venv is this checkout's own small environment layered on the shared one: its python sees
# the shared packages (a .pth that adds the shared site-packages) and this checkout's src/ ahead
# of them, so two checkouts never run each other's code. The shared environment holds no
# netspaces at all. (Re)made in about a second when missing or pointing elsewhere.
layer="shared: $target; src: $(pwd)/src"
if [ -L .venv ] || [ "$(cat .venv/.netspaces-layer 2>/dev/null || true)" != "$layer" ]; then
    rm -rf .venv
    "$PYTHON" -m venv --without-pip .venv
    site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    shared_site=$("$target/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    echo "$(pwd)/src" > "$site/00-netspaces-src.pth"
    echo "import site; site.addsitedir('$shared_site')" > "$site/zz-netspaces-shared.pth"
    # netspaces itself, editable, in this checkout's own environment (its metadata, license and
    # the `netspaces` command); pip and setuptools come from the shared environment
    env -u PYTHONPATH .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-index \
        --no-build-isolation -e .
    echo "$layer" > .venv/.netspaces-layer
fi
# an editable netspaces left in the shared environment by older versions would shadow nothing
# (src/ comes first) but could confuse `pip list`: remove it once
if [ -n "$(ls "$target"/lib/python*/site-packages/__editable__*netspaces* 2>/dev/null)" ]; then
    "$target/bin/pip" uninstall -q -y netspaces >/dev/null 2>&1 || true
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
