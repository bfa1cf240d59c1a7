#!/usr/bin/env bash
# npm packages of the dashboard's browser tests, exactly as locked in
# dashboards/e2e/package-lock.json. Skipped when node_modules already matches the lock.
set -euo pipefail
cd "$(dirname "$0")/../../dashboards/e2e"
stamp=node_modules/.lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
