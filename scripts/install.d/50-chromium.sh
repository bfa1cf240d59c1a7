#!/usr/bin/env bash
# Headless Chromium for the dashboard's browser tests (dashboards/e2e), from Debian.
# Never `npx playwright install`: it downloads a browser, which this network refuses.
# fonts-noto-cjk: without it Japanese renders as empty boxes in screenshots.
set -euo pipefail
if [ -x /usr/bin/chromium ] && dpkg -s fonts-noto-cjk >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null
/usr/bin/chromium --version
