//! Arbitrary input, including NaN, infinities and huge values, never makes the detector panic,
//! and what it reports stays consistent with what it was fed.

use mimamori_dsp::SampleRate;
use mimamori_dsp::qrs::QrsDetector;
use proptest::prelude::*;

fn sample() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => -5.0f32..5.0,
        1 => any::<f32>(),
        1 => Just(f32::NAN),
        1 => prop_oneof![Just(f32::INFINITY), Just(f32::NEG_INFINITY), Just(f32::MAX), Just(f32::MIN)],
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_input_never_panics(
        hz in prop_oneof![Just(125.0), Just(250.0), Just(360.0), Just(500.0), 50.0f64..2000.0],
        samples in proptest::collection::vec(sample(), 0..6000),
        chunk in 1usize..700,
    ) {
        let rate = SampleRate::hz(hz);
        let mut detector = QrsDetector::new(rate);
        let mut beats = Vec::new();
        for part in samples.chunks(chunk) {
            detector.push(part, |beat| beats.push(beat));
        }
        for beat in &beats {
            prop_assert!(beat.r_peak < samples.len() as u64);
            prop_assert!(beat.r_peak + u64::from(beat.delay) < samples.len() as u64);
        }
        let mut peaks: Vec<u64> = beats.iter().map(|beat| beat.r_peak).collect();
        peaks.sort_unstable();
        peaks.dedup();
        prop_assert_eq!(peaks.len(), beats.len(), "a beat reported twice");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn damaged_snapshots_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let rate = SampleRate::hz(250.0);
        let mut detector = QrsDetector::new(rate);
        let wave: Vec<f32> = (0..3000).map(|i| if i % 200 < 6 { 1.0 } else { 0.0 }).collect();
        detector.push(&wave, |_| {});
        let mut bytes = Vec::new();
        detector.snapshot(&mut bytes);
        for (at, value) in flips {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(mut restored) = QrsDetector::restore(&bytes) {
            restored.push(&wave, |_| {});
        }
    }
}
