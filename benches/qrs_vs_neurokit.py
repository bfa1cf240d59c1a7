"""Run by qrs_vs_neurokit.sh: NeuroKit2 pantompkins1985 vs `mimamori-dsp` on the same records."""

import os
import re
import subprocess
import sys
import tempfile
import time

import neurokit2 as nk
import numpy as np
import wfdb

BEAT_SYMBOLS = set("NLRBAaJSVrFejnE/fQ?")
MATCH_WINDOW_S = 0.150
PASSES = 3


def records(folder):
    for name in sorted(f[:-4] for f in os.listdir(folder) if f.endswith(".hea")):
        record = wfdb.rdrecord(os.path.join(folder, name))
        lead = record.sig_name.index("MLII") if "MLII" in record.sig_name else 0
        annotation = wfdb.rdann(os.path.join(folder, name), "atr")
        beats = np.array([s for s, sym in zip(annotation.sample, annotation.symbol) if sym in BEAT_SYMBOLS])
        yield name, record.fs, record.p_signal[:, lead].astype(np.float64), beats


def score(reference, detected, window):
    """(TP, FN, FP): one-to-one matching, closest pairs first, as `mimamori-dsp eval` does."""
    pairs = []
    for r, ref in enumerate(reference):
        lo, hi = np.searchsorted(detected, [ref - window, ref + window], side="left")
        hi = np.searchsorted(detected, ref + window, side="right")
        pairs.extend((abs(int(detected[d]) - int(ref)), r, d) for d in range(lo, hi))
    pairs.sort()
    used_r, used_d = set(), set()
    for _, r, d in pairs:
        if r not in used_r and d not in used_d:
            used_r.add(r)
            used_d.add(d)
    tp = len(used_r)
    return tp, len(reference) - tp, len(detected) - tp


def f1(tp, fn, fp):
    return 100.0 * 2 * tp / max(1, 2 * tp + fn + fp)


def main():
    folder, binary = sys.argv[1], sys.argv[2]
    data = list(records(folder))
    samples = sum(len(x) for _, _, x, _ in data)

    # NeuroKit2: peaks only (no ecg_clean), the fastest way to call it.
    best_cpu = best_wall = float("inf")
    found = {}
    for _ in range(PASSES):
        cpu, wall = time.thread_time(), time.perf_counter()
        for name, fs, x, _ in data:
            _, info = nk.ecg_peaks(x, sampling_rate=fs, method="pantompkins1985")
            found[name] = np.asarray(info["ECG_R_Peaks"], dtype=np.int64)
        best_cpu = min(best_cpu, time.thread_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    totals = np.zeros(3, dtype=np.int64)
    for name, fs, _, reference in data:
        totals += score(reference, np.sort(found[name]), int(round(MATCH_WINDOW_S * fs)))
    nk_rates = (samples / best_cpu / 1e6, samples / best_wall / 1e6)
    print(f"records: {len(data)} in {folder}, samples: {samples}")
    print(f"neurokit2 {nk.__version__} ecg_peaks(pantompkins1985): "
          f"{nk_rates[0]:.2f} M samples/s cpu, {nk_rates[1]:.2f} M samples/s wall; "
          f"gross F1 {f1(*totals):.2f} % (TP {totals[0]} FN {totals[1]} FP {totals[2]})")

    # mimamori: its own bench (records preloaded, same clocks), then its detections scored here.
    bench = subprocess.run([binary, "bench", folder, "--passes", str(PASSES)],
                           check=True, capture_output=True, text=True).stdout
    ours = {clock: float(rate) for clock, rate in
            re.findall(r"detector \((\w+) clock\): [\d.]+ s, ([\d.]+) M samples/s", bench)}
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([binary, "detect", folder, "--out", out], check=True, capture_output=True)
        totals = np.zeros(3, dtype=np.int64)
        for name, fs, _, reference in data:
            detected = np.sort(np.loadtxt(os.path.join(out, f"{name}.txt"), dtype=np.int64, ndmin=1))
            totals += score(reference, detected, int(round(MATCH_WINDOW_S * fs)))
    print(f"mimamori-dsp streaming: {ours['cpu']:.2f} M samples/s cpu, {ours['wall']:.2f} M samples/s wall; "
          f"gross F1 {f1(*totals):.2f} % (TP {totals[0]} FN {totals[1]} FP {totals[2]})")
    print(f"speed-up over neurokit2: {ours['cpu'] / nk_rates[0]:.1f}x (cpu clock), "
          f"{ours['wall'] / nk_rates[1]:.1f}x (wall clock)")


if __name__ == "__main__":
    main()
