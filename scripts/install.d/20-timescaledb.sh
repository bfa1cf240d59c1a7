#!/usr/bin/env bash
# TimescaleDB, Apache-2 edition, built from Debian trixie's source package against the installed
# PostgreSQL (bookworm ships no TimescaleDB). See /work/shared/docs/real-services.md §2:
# the `+dfsg` source lacks the Timescale-licensed `tsl/` dir, hence -DAPACHE_ONLY=ON.
#
# Skipped when the extension is already installed for this PostgreSQL major version.
set -euo pipefail
source "$(dirname "$0")/lib.bash"

# Pinned for reproducibility; a pin vanishes at trixie's next point release, so we fall back to
# whatever version the mirror offers.
pinned_version=${TIMESCALEDB_DEB_VERSION:-2.19.3+dfsg-1+deb13u1}
source_suite=${TIMESCALEDB_SOURCE_SUITE:-trixie}

major=$(pg_major)
pg_config=/usr/lib/postgresql/$major/bin/pg_config
if [ ! -x "$pg_config" ]; then
    echo "20-timescaledb: $pg_config missing (postgresql-server-dev-$major not installed?)" >&2
    exit 1
fi
libdir=$("$pg_config" --pkglibdir)
extdir=$("$pg_config" --sharedir)/extension
if [ -f "$libdir/timescaledb.so" ] && [ -f "$extdir/timescaledb.control" ]; then
    echo "20-timescaledb: already installed for PostgreSQL $major ($libdir/timescaledb.so)"
    exit 0
fi

# The machine's own Debian mirror, taken from its apt sources.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
mirror=$(apt-get indextargets --no-release-info --format '$(SITE) $(RELEASE)' |
    awk -v c="$codename" '$2 == c { print $1; exit }')
mirror=${mirror:-http://deb.debian.org/debian}

work=$(mktemp -d /tmp/timescaledb-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
# An apt configuration of its own, so the system's apt keeps seeing only bookworm.
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial"
echo "deb-src $mirror $source_suite main" >"$work/apt/sources.list"
apt_opts=(
    -o "Dir::Etc::SourceList=$work/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache"
    -o APT::Sandbox::User=root
)
apt-get "${apt_opts[@]}" update -qq
cd "$work"
if ! apt-get "${apt_opts[@]}" source -qq "timescaledb=$pinned_version"; then
    echo "20-timescaledb: $pinned_version not on $mirror $source_suite; taking the mirror's version" >&2
    apt-get "${apt_opts[@]}" source -qq timescaledb
fi
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'timescaledb-*' | head -n 1)

cmake -S "$src" -B "$src/build" -DPG_CONFIG="$pg_config" -DAPACHE_ONLY=ON \
    -DUSE_TELEMETRY=OFF -DSEND_TELEMETRY_DEFAULT=OFF -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/cmake.log" || { cat "$work/cmake.log" >&2; exit 1; }
make -C "$src/build" -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -n 50 "$work/make.log" >&2; exit 1; }
as_root make -C "$src/build" install >"$work/install.log" 2>&1 || { tail -n 50 "$work/install.log" >&2; exit 1; }
echo "20-timescaledb: installed $(basename "$src") for PostgreSQL $major into $libdir"
