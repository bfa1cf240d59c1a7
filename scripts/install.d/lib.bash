# Helpers shared by the install steps. Sourced, not run: the dispatcher only runs `*.sh`.

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Succeeds when every named Debian package is installed.
all_installed() {
    local pkg status
    for pkg in "$@"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        [ "$status" = installed ] || return 1
    done
}

# apt-get, non-interactive, waiting for the dpkg lock rather than failing: other jobs on the same
# machine may be installing at the same moment.
apt_get() {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0 "$@"
}

# The PostgreSQL major version the tests use: $PG_MAJOR if set, else the newest server installed,
# else the one the distribution's `postgresql` metapackage depends on.
pg_major() {
    if [ -n "${PG_MAJOR:-}" ]; then echo "$PG_MAJOR"; return; fi
    local newest
    newest=$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sed -E 's#.*/postgresql/([0-9]+)/.*#\1#' | sort -n | tail -n 1)
    if [ -n "$newest" ]; then echo "$newest"; return; fi
    newest=$(apt-cache depends postgresql 2>/dev/null | sed -nE 's/^ *Depends: postgresql-([0-9]+)$/\1/p' | head -n 1)
    echo "${newest:-15}"
}
