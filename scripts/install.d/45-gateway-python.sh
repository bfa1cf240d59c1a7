#!/usr/bin/env bash
# Python venv for the gateway's fake BlueZ (gateway/tests/fake_bluez/): dbus-fast, a pure-Python
# D-Bus library (wheel, no system libraries). Lives in target-venv/ at the repository root (ignored
# by git); the gateway tests find it relative to their CARGO_MANIFEST_DIR. Idempotent: does nothing
# when the pinned version is already importable there.
set -euo pipefail
source "$(dirname "$0")/lib.bash"

DBUS_FAST_VERSION=5.2.0
venv="$(cd "$(dirname "$0")/../.." && pwd)/target-venv"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import dbus_fast, importlib.metadata as m; assert m.version('dbus-fast') == '$DBUS_FAST_VERSION'" 2>/dev/null; then
    echo "45-gateway-python: dbus-fast $DBUS_FAST_VERSION present in $venv"
    exit 0
fi

if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c "import ensurepip" 2>/dev/null; then
    apt_get update -qq
    apt_get install -y -qq --no-install-recommends python3-venv
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "dbus-fast==$DBUS_FAST_VERSION"
echo "45-gateway-python: installed dbus-fast $DBUS_FAST_VERSION in $venv"
