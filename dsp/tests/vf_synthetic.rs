//! The VF/VFL guard on synthetic ECG: ventricular flutter is reported as an episode and its waves
//! are not beats; fast regular wide-complex rhythm (VT) and noise keep their beats and raise no
//! episode.

use mimamori_dsp::analysis::{Analysis, AnalysisConfig, AnalysisOutput};
use mimamori_dsp::events::EventKind;
use mimamori_dsp::qrs::scoring::{MATCH_WINDOW_MS, Score};
use mimamori_dsp::synth::{NoiseKind, Rhythm, SynthConfig};
use mimamori_dsp::vf::{Detection, GuardedQrsDetector, VfChange};
use mimamori_dsp::{Beat, SampleRate};

const RATES_HZ: [f64; 4] = [125.0, 250.0, 360.0, 500.0];

/// Beats (sorted) and VF/VFL changes (in order) of a fresh guarded detector over `samples`.
fn run(rate: SampleRate, samples: &[f32], chunk: usize) -> (Vec<Beat>, Vec<(u64, VfChange)>) {
    let mut detector = GuardedQrsDetector::new(rate);
    let (mut beats, mut changes) = (Vec::new(), Vec::new());
    let mut position = 0u64;
    for part in samples.chunks(chunk) {
        position += part.len() as u64;
        detector.push(part, |d| match d {
            Detection::Beat(beat) => beats.push(beat),
            Detection::Vf(change) => changes.push((position, change)),
        });
    }
    detector.finish(|d| match d {
        Detection::Beat(beat) => beats.push(beat),
        Detection::Vf(change) => changes.push((position, change)),
    });
    beats.sort_by_key(|b| b.r_peak);
    (beats, changes)
}

fn score(rate: SampleRate, reference: &[u64], beats: &[Beat]) -> Score {
    let detected: Vec<u64> = beats.iter().map(|b| b.r_peak).collect();
    Score::compare(
        reference,
        &detected,
        u64::from(rate.samples_in_ms(MATCH_WINDOW_MS)),
    )
}

#[test]
fn ventricular_flutter_is_one_episode_without_beats_and_the_beats_around_it_stay() {
    for hz in RATES_HZ {
        for seed in [1, 2, 3] {
            let rate = SampleRate::hz(hz);
            let (samples, truth) = SynthConfig::new(rate, seed)
                .heart_rate_bpm(75.0)
                .white_noise_mv(0.02)
                .baseline_wander_mv(0.1)
                .rhythm_episode(Rhythm::VentricularFlutter, 60.0, 20.0)
                .generate_mv(120.0)
                .unwrap();
            let flutter = truth.rhythms[0];
            assert_eq!(flutter.label, Rhythm::VentricularFlutter);
            let (beats, changes) = run(rate, &samples, (hz as usize) / 2);
            let s = |seconds: f64| (seconds * hz) as u64;

            // One episode: confirmed within 6 s of the onset, dated within 2.5 s of the truth.
            let [(confirmed_at, onset), (_, offset)] = changes[..] else {
                panic!("{hz} Hz seed {seed}: changes {changes:?}");
            };
            let VfChange::Onset { start } = onset else {
                panic!("{onset:?}")
            };
            let VfChange::Offset { start: s2, end } = offset else {
                panic!("{offset:?}")
            };
            assert_eq!(start, s2);
            assert!(
                start.abs_diff(flutter.start) <= s(2.5),
                "{hz} Hz seed {seed}: onset {start} vs {}",
                flutter.start
            );
            assert!(
                confirmed_at <= flutter.start + s(6.0),
                "confirmed at {confirmed_at}"
            );
            assert!(
                end.abs_diff(flutter.end) <= s(2.5),
                "{hz} Hz seed {seed}: end {end} vs {}",
                flutter.end
            );

            // No beat inside the flutter (but for at most its first wave, reported before
            // anything looked like flutter); the beats before and after it all found.
            let inside: Vec<u64> = beats
                .iter()
                .map(|b| b.r_peak)
                .filter(|r| (flutter.start..flutter.end).contains(r))
                .collect();
            assert!(
                inside.len() <= 1 && inside.iter().all(|&r| r < flutter.start + s(1.0)),
                "{hz} Hz seed {seed}: beats inside the flutter {inside:?}"
            );
            let last = samples.len() as u64 - s(1.0);
            let reference: Vec<u64> = truth
                .beats
                .iter()
                .map(|b| b.r_peak)
                .filter(|&r| r < last)
                .collect();
            let found: Vec<Beat> = beats.into_iter().filter(|b| b.r_peak < last).collect();
            let score = score(rate, &reference, &found);
            assert!(
                score.false_negatives <= 2 && score.false_positives <= 2,
                "{hz} Hz seed {seed}: missed {:?} false {:?}",
                score.missed,
                score.false_detections
            );
        }
    }
}

#[test]
fn fast_regular_wide_complex_tachycardia_is_not_flutter() {
    for hz in RATES_HZ {
        for bpm in [150, 180, 200] {
            let rate = SampleRate::hz(hz);
            let (samples, truth) = SynthConfig::new(rate, u64::from(bpm))
                .heart_rate_bpm(80.0)
                .white_noise_mv(0.02)
                .rhythm_episode(Rhythm::VentricularTachycardia { bpm }, 30.0, 60.0)
                .generate_mv(120.0)
                .unwrap();
            let (beats, changes) = run(rate, &samples, 97);
            assert!(changes.is_empty(), "{hz} Hz {bpm} bpm: {changes:?}");
            let last = samples.len() as u64 - u64::from(rate.samples_in_ms(1000.0));
            let reference: Vec<u64> = truth
                .beats
                .iter()
                .map(|b| b.r_peak)
                .filter(|&r| r < last)
                .collect();
            let found: Vec<Beat> = beats.into_iter().filter(|b| b.r_peak < last).collect();
            let score = score(rate, &reference, &found);
            assert!(
                score.sensitivity_pct() >= 99.5,
                "{hz} Hz {bpm} bpm: Se {:.2}, missed {:?}",
                score.sensitivity_pct(),
                score.missed
            );
        }
    }
}

#[test]
fn noise_and_fast_atrial_rhythms_raise_no_episode() {
    for hz in RATES_HZ {
        let rate = SampleRate::hz(hz);
        let (samples, _) = SynthConfig::new(rate, 11)
            .heart_rate_bpm(110.0)
            .pvc_probability(0.1)
            .baseline_wander_mv(0.3)
            .noise_burst(NoiseKind::Motion, 0.5, 20.0, 15.0)
            .noise_burst(NoiseKind::Muscle, 0.2, 50.0, 15.0)
            .rhythm_episode(Rhythm::AtrialFlutter { conduction: 2 }, 80.0, 30.0)
            .rhythm_episode(Rhythm::AtrialFibrillation, 120.0, 40.0)
            .generate_mv(180.0)
            .unwrap();
        let (_, changes) = run(rate, &samples, 250);
        assert!(changes.is_empty(), "{hz} Hz: {changes:?}");
    }
}

#[test]
fn the_analysis_chain_raises_vf_not_asystole_and_no_rr_spans_the_episode() {
    let rate = SampleRate::hz(250.0);
    let (samples, truth) = SynthConfig::new(rate, 5)
        .heart_rate_bpm(70.0)
        .rhythm_episode(Rhythm::VentricularFlutter, 40.0, 15.0)
        .generate_mv(90.0)
        .unwrap();
    let flutter = truth.rhythms[0];
    let mut analysis = Analysis::new(rate, AnalysisConfig::default());
    let mut out = AnalysisOutput::with_capacity();
    let (mut events, mut rr_ms) = (Vec::new(), Vec::new());
    let mut opened_at = None;
    for chunk in samples.chunks(250) {
        analysis.push(chunk, &mut out);
        if opened_at.is_none()
            && out
                .events
                .iter()
                .any(|e| e.event.kind == EventKind::VentricularFibrillation)
        {
            opened_at = Some(analysis.position());
        }
        events.extend(out.events.iter().map(|e| e.event));
        rr_ms.extend(out.beats.iter().filter_map(|b| b.rr.map(|rr| rr.rr_ms)));
        out.clear();
    }
    analysis.finish(&mut out);
    events.extend(out.events.iter().map(|e| e.event));
    rr_ms.extend(out.beats.iter().filter_map(|b| b.rr.map(|rr| rr.rr_ms)));

    let vf: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::VentricularFibrillation)
        .collect();
    assert_eq!(vf.len(), 2, "opened then closed: {events:?}");
    assert_eq!(vf[0].end, None);
    let end = vf[1].end.expect("closed");
    assert!(vf[1].start.abs_diff(flutter.start) <= 2 * 250 + 125);
    assert!(end.abs_diff(flutter.end) <= 2 * 250 + 125);
    // Raised live, seconds after the onset.
    assert!(opened_at.unwrap() <= flutter.start + 6 * 250);
    assert!(
        events.iter().all(|e| !matches!(
            e.kind,
            EventKind::Asystole | EventKind::Pause2s | EventKind::Pause3s
        )),
        "{events:?}"
    );
    assert!(rr_ms.iter().all(|&rr| rr < 1500.0), "{rr_ms:?}");
}
