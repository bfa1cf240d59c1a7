//! The streaming QRS detector on synthetic ECG with known R peaks, at every supported rate and
//! through the disturbances a home recording has.

use mimamori_dsp::qrs::QrsDetector;
use mimamori_dsp::qrs::scoring::{MATCH_WINDOW_MS, Score};
use mimamori_dsp::synth::{NoiseKind, Rhythm, SynthConfig};
use mimamori_dsp::{Beat, SampleRate};

const RATES_HZ: [f64; 4] = [125.0, 250.0, 360.0, 500.0];

/// Runs a fresh detector over `samples` in chunks of `chunk` samples; beats sorted by R peak.
fn detect(rate: SampleRate, samples: &[f32], chunk: usize) -> Vec<Beat> {
    let mut detector = QrsDetector::new(rate);
    let mut beats = Vec::new();
    for part in samples.chunks(chunk) {
        detector.push(part, |beat| beats.push(beat));
    }
    beats.sort_by_key(|beat| beat.r_peak);
    beats
}

fn r_peaks(beats: &[Beat]) -> Vec<u64> {
    beats.iter().map(|beat| beat.r_peak).collect()
}

/// Scores the detector on `config`'s output, skipping truth beats in the last second (which the
/// detector may not have confirmed yet when the stream stops).
fn score(config: SynthConfig, rate: SampleRate, seconds: f64, gain: f32) -> (Score, Vec<Beat>) {
    let (samples, truth) = config.generate_mv(seconds).unwrap();
    let samples: Vec<f32> = samples.iter().map(|&mv| mv * gain).collect();
    let beats = detect(rate, &samples, 97);
    let end = samples.len() as u64 - u64::from(rate.samples_in_ms(1000.0));
    let reference: Vec<u64> = truth
        .beats
        .iter()
        .map(|b| b.r_peak)
        .filter(|&r| r < end)
        .collect();
    let detected: Vec<u64> = r_peaks(&beats).into_iter().filter(|&r| r < end).collect();
    let window = u64::from(rate.samples_in_ms(MATCH_WINDOW_MS));
    (Score::compare(&reference, &detected, window), beats)
}

/// Every beat found, nothing else, each R peak within `max_error_ms`.
fn assert_all_beats_found(score: &Score, rate: SampleRate, max_error_ms: f64, what: &str) {
    assert!(
        score.true_positives > 30,
        "{what}: only {} beats",
        score.true_positives
    );
    assert_eq!(
        (score.false_negatives, score.false_positives),
        (0, 0),
        "{what}: missed {:?}, false {:?}",
        score.missed,
        score.false_detections
    );
    let worst = score.abs_placement_quantile(1.0).unwrap();
    assert!(
        rate.ms_of_samples(worst) <= max_error_ms,
        "{what}: R peak off by {} ms",
        rate.ms_of_samples(worst)
    );
}

#[test]
fn finds_every_beat_at_each_rate_with_hrv_and_ectopy() {
    for hz in RATES_HZ {
        let rate = SampleRate::hz(hz);
        let config = SynthConfig::new(rate, 7)
            .heart_rate_bpm(72.0)
            .sdnn_ms(50.0)
            .pvc_probability(0.05)
            .pac_probability(0.05)
            .white_noise_mv(0.02)
            .baseline_wander_mv(0.3);
        let (score, beats) = score(config, rate, 120.0, 1.0);
        // One sample period of quantisation plus a few ms of noise.
        assert_all_beats_found(&score, rate, 1000.0 / hz + 12.0, &format!("{hz} Hz"));
        let primary: Vec<&Beat> = beats.iter().filter(|beat| !beat.late).collect();
        assert!(
            primary.len() * 10 >= beats.len() * 8,
            "{hz} Hz: most beats are primary"
        );
        for beat in primary {
            assert!(
                rate.ms_of_samples(f64::from(beat.delay)) <= 250.0,
                "{hz} Hz: {beat:?}"
            );
        }
    }
}

#[test]
fn any_gain_and_inverted_polarity_give_the_same_beats() {
    let rate = SampleRate::hz(250.0);
    let config = || {
        SynthConfig::new(rate, 11)
            .heart_rate_bpm(80.0)
            .sdnn_ms(30.0)
            .white_noise_mv(0.01)
    };
    let (reference, _) = score(config(), rate, 60.0, 1.0);
    assert_all_beats_found(&reference, rate, 16.0, "unit gain");
    for gain in [1e-4, 1e4, -1.0] {
        let (scaled, _) = score(config(), rate, 60.0, gain);
        assert_all_beats_found(&scaled, rate, 16.0, &format!("gain {gain}"));
    }
    let (inverted, _) = score(config().inverted(true), rate, 60.0, 1.0);
    assert_all_beats_found(&inverted, rate, 16.0, "inverted");
}

#[test]
fn chunk_boundaries_do_not_change_the_beats() {
    let rate = SampleRate::hz(360.0);
    let (samples, _) = SynthConfig::new(rate, 3)
        .heart_rate_bpm(65.0)
        .generate_mv(40.0)
        .unwrap();
    let whole = detect(rate, &samples, samples.len());
    assert!(whole.len() > 35);
    for chunk in [1, 7, 360, 1000] {
        assert_eq!(detect(rate, &samples, chunk), whole, "chunk {chunk}");
    }
}

#[test]
fn sudden_rate_changes_are_followed() {
    for hz in RATES_HZ {
        let rate = SampleRate::hz(hz);
        let config = SynthConfig::new(rate, 5)
            .heart_rate_bpm(60.0)
            .rhythm_episode(Rhythm::AtrialFlutter { conduction: 2 }, 30.0, 30.0)
            .rhythm_episode(Rhythm::AtrialFibrillation, 70.0, 30.0);
        let (score, _) = score(config, rate, 110.0, 1.0);
        assert_all_beats_found(&score, rate, 1000.0 / hz + 12.0, &format!("{hz} Hz"));
    }
}

#[test]
fn recovers_after_a_noise_burst_and_an_amplitude_drop() {
    let rate = SampleRate::hz(250.0);
    let (mut samples, truth) = SynthConfig::new(rate, 9)
        .heart_rate_bpm(75.0)
        .noise_burst(NoiseKind::Motion, 3.0, 20.0, 4.0)
        .noise_burst(NoiseKind::Muscle, 0.5, 35.0, 3.0)
        .generate_mv(90.0)
        .unwrap();
    // The electrode half comes loose: the signal falls to a quarter from 50 s on.
    let drop_at = 50 * 250;
    samples[drop_at..].iter_mut().for_each(|mv| *mv *= 0.25);
    let beats = detect(rate, &samples, 250);
    // Judge beats away from the bursts (plus 5 s to recover) and from the drop (5 s to adapt).
    let clean = |r: u64| {
        let s = r as f64 / 250.0;
        !(19.0..29.0).contains(&s)
            && !(34.0..43.0).contains(&s)
            && !(50.0..55.0).contains(&s)
            && s < 89.0
    };
    let reference: Vec<u64> = truth
        .beats
        .iter()
        .map(|b| b.r_peak)
        .filter(|&r| clean(r))
        .collect();
    let detected: Vec<u64> = r_peaks(&beats).into_iter().filter(|&r| clean(r)).collect();
    let score = Score::compare(&reference, &detected, 37);
    assert_all_beats_found(&score, rate, 16.0, "outside disturbances");
}

#[test]
fn flat_line_and_lead_off_give_no_beats() {
    let rate = SampleRate::hz(500.0);
    assert!(detect(rate, &vec![0.0; 30 * 500], 500).is_empty());
    // A constant offset, then a step (electrode pops), then constant again.
    let mut step = vec![1.5f32; 10 * 500];
    step.extend(vec![-3.0f32; 20 * 500]);
    assert!(
        detect(rate, &step, 500).len() <= 1,
        "a single step may look like one beat at most"
    );
}

#[test]
fn reset_and_snapshot_reproduce_the_stream() {
    let rate = SampleRate::hz(250.0);
    let (samples, _) = SynthConfig::new(rate, 21)
        .heart_rate_bpm(90.0)
        .generate_mv(30.0)
        .unwrap();
    let (first, second) = samples.split_at(samples.len() / 2);
    let fresh = detect(rate, &samples, 250);

    let mut detector = QrsDetector::new(rate);
    let mut beats = Vec::new();
    detector.push(first, |beat| beats.push(beat));
    let snapshot = detector.clone();
    detector.push(second, |beat| beats.push(beat));
    beats.sort_by_key(|beat| beat.r_peak);
    assert_eq!(beats, fresh);

    // Restoring the snapshot replays the second half identically.
    let mut restored = snapshot;
    let mut replayed = Vec::new();
    restored.push(second, |beat| replayed.push(beat));
    let tail: Vec<Beat> = fresh
        .iter()
        .copied()
        .filter(|b| b.r_peak + b.delay as u64 >= first.len() as u64)
        .collect();
    replayed.sort_by_key(|beat| beat.r_peak);
    assert_eq!(replayed, tail);

    detector.reset();
    let mut again = Vec::new();
    detector.push(&samples, |beat| again.push(beat));
    again.sort_by_key(|beat| beat.r_peak);
    assert_eq!(again, fresh);
}

#[test]
fn state_fits_in_8_kib_at_every_rate() {
    for hz in RATES_HZ {
        let bytes = QrsDetector::new(SampleRate::hz(hz)).state_bytes();
        assert!(bytes <= 8 * 1024, "{hz} Hz: {bytes} bytes");
    }
}

#[test]
fn a_restored_byte_snapshot_continues_the_stream_exactly() {
    for hz in RATES_HZ {
        let rate = SampleRate::hz(hz);
        let (samples, _) = SynthConfig::new(rate, 4)
            .heart_rate_bpm(100.0)
            .pvc_probability(0.1)
            .generate_mv(40.0)
            .unwrap();
        let fresh = detect(rate, &samples, 500);
        // Checkpoint at several points, including during learning and mid-beat.
        for split in [1, 700, samples.len() / 3, samples.len() / 2 + 17] {
            let mut detector = QrsDetector::new(rate);
            let mut beats = Vec::new();
            detector.push(&samples[..split], |beat| beats.push(beat));
            let mut bytes = Vec::new();
            detector.snapshot(&mut bytes);
            drop(detector);
            let mut restored = QrsDetector::restore(&bytes).unwrap();
            restored.push(&samples[split..], |beat| beats.push(beat));
            beats.sort_by_key(|beat| beat.r_peak);
            assert_eq!(beats, fresh, "{hz} Hz, split at {split}");
        }
    }
}

#[test]
fn damaged_snapshots_are_rejected_precisely() {
    use mimamori_dsp::qrs::SnapshotError;
    let mut bytes = Vec::new();
    QrsDetector::new(SampleRate::hz(250.0)).snapshot(&mut bytes);
    assert_eq!(
        QrsDetector::restore(&bytes[..10]).unwrap_err(),
        SnapshotError::Truncated(5)
    );
    assert_eq!(
        QrsDetector::restore(b"nope").unwrap_err(),
        SnapshotError::BadMagic
    );
    let mut versioned = bytes.clone();
    versioned[4] = 9;
    assert_eq!(
        QrsDetector::restore(&versioned).unwrap_err(),
        SnapshotError::UnsupportedVersion(9)
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        QrsDetector::restore(&longer).unwrap_err(),
        SnapshotError::TrailingBytes(1)
    );
    // A snapshot from another rate has buffers of another size: its bytes no longer line up.
    let mut other = Vec::new();
    QrsDetector::new(SampleRate::hz(500.0)).snapshot(&mut other);
    other[5..13].copy_from_slice(&250.0f64.to_le_bytes());
    assert!(QrsDetector::restore(&other).is_err());
}

#[test]
fn long_pauses_are_not_filled_with_false_beats() {
    for hz in RATES_HZ {
        let rate = SampleRate::hz(hz);
        let config = SynthConfig::new(rate, 13)
            .heart_rate_bpm(70.0)
            .white_noise_mv(0.02)
            .baseline_wander_mv(0.2)
            .pause(20.0, 3.0)
            .pause(40.0, 6.0);
        let (score, _) = score(config, rate, 70.0, 1.0);
        assert_all_beats_found(&score, rate, 1000.0 / hz + 12.0, &format!("{hz} Hz"));
    }
}
