#!/usr/bin/env bash
# Debian packages the tests need: Mosquitto and its clients, PostgreSQL with the headers to build
# TimescaleDB against it, the build tools, and D-Bus for the fake BlueZ. Installs only what is
# missing, and refreshes the package lists only then (stale lists would offer a server-dev that does
# not match the installed server).
set -euo pipefail
source "$(dirname "$0")/lib.bash"

major=$(pg_major)
packages=(
    mosquitto mosquitto-clients openssl
    "postgresql-$major" "postgresql-server-dev-$major"
    cmake dpkg-dev build-essential pkg-config
    libdbus-1-dev dbus-daemon
)

if all_installed "${packages[@]}"; then
    echo "10-apt-base: all ${#packages[@]} packages present"
    exit 0
fi

apt_get update -qq
# server-dev must be the server's point release: apt upgrades postgresql-$major to match.
apt_get install -y -qq --no-install-recommends "${packages[@]}"
