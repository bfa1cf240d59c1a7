#!/usr/bin/env bash
# Times mimamori's streaming QRS detector against NeuroKit2's Pan-Tompkins (batch) on the same
# MIT-BIH records, in one run, and scores both with the same rules (beat labels, ±150 ms, 1:1).
#
#   benches/qrs_vs_neurokit.sh [RECORDS_DIR]      (default: ../shared/data/mitdb-ds1)
#
# Installs neurokit2 and wfdb from PyPI into a virtual environment under the cargo target
# directory (reused on later runs). Both sides run on one core; figures use the thread's CPU
# time (steady on a shared machine) and the wall clock.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
records="${1:-$repo/../shared/data/mitdb-ds1}"
target="${CARGO_TARGET_DIR:-$repo/target}"
venv="$target/bench-venv-neurokit"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check neurokit2 wfdb

cargo build --quiet --release -p mimamori-dsp --manifest-path "$repo/Cargo.toml"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
exec "$venv/bin/python" "$repo/benches/qrs_vs_neurokit.py" "$records" "$target/release/mimamori-dsp"
