#!/usr/bin/env bash
# Measures the resident memory of `mimamori-gateway run` with three connected devices (the fake
# BlueZ of the end-to-end test, all three of its devices allowed) publishing to a local Mosquitto.
# Prints VmRSS (now) and VmHWM (peak) after SECONDS (default 20).
#
#   gateway/benches/rss_run.sh [SECONDS]     (after scripts/install-test-deps)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-20}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build -q --profile bench -p mimamori-gateway
bin="$CARGO_TARGET_DIR/release/mimamori-gateway"
[ -x "$bin" ] || bin="$CARGO_TARGET_DIR/bench/mimamori-gateway"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

cat > "$work/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:dir=$work</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/>
<allow send_type="method_call"/><allow send_type="signal"/><allow send_type="method_return"/><allow send_type="error"/>
<allow receive_type="method_call"/><allow receive_type="signal"/><allow receive_type="method_return"/><allow receive_type="error"/>
</policy></busconfig>
CONF
dbus-daemon --config-file="$work/bus.conf" --nofork --print-address=1 > "$work/bus.addr" 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do [ -s "$work/bus.addr" ] && break; sleep 0.1; done
addr=$(head -n1 "$work/bus.addr")
target-venv/bin/python gateway/tests/fake_bluez/fake_bluez.py "$addr" > "$work/fake.log" &
pids+=($!)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" > "$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" > /dev/null 2>&1 &
pids+=($!)
sleep 0.5

cat > "$work/gateway.toml" <<TOML
outbox_dir = "$work/outbox"
[mqtt]
endpoint_host = "127.0.0.1"
endpoint_port = $port
gateway_id = "rss-home"
password = "unused"
[[devices]]
address = "AA:BB:CC:DD:EE:01"
[[devices]]
address = "AA:BB:CC:DD:EE:02"
[[devices]]
address = "AA:BB:CC:DD:EE:09"
TOML
DBUS_SYSTEM_BUS_ADDRESS="$addr" RUST_LOG=warn "$bin" run --config "$work/gateway.toml" 2> "$work/gateway.log" &
gw=$!
pids+=($gw)
sleep "$seconds"
connected=$(grep -c '^CONNECT' "$work/fake.log" || true)
echo "devices connected: $connected"
grep -E 'VmRSS|VmHWM' "/proc/$gw/status"
