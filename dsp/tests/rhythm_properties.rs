//! Arbitrary input never panics the rhythm stages: any beat sequence (out of order, duplicated,
//! late, absurd intervals) and any samples (NaN, infinities, rails) in chunks of any length.

use mimamori_dsp::af::AfDetector;
use mimamori_dsp::analysis::{Analysis, AnalysisConfig, AnalysisOutput};
use mimamori_dsp::events::{EventDetector, EventThresholds};
use mimamori_dsp::heart_rate::HeartRateTracker;
use mimamori_dsp::hrv::HrvWindow;
use mimamori_dsp::rr::RrTracker;
use mimamori_dsp::{Beat, SampleRate};
use proptest::prelude::*;

fn rate() -> impl Strategy<Value = SampleRate> {
    prop_oneof![
        Just(125.0),
        Just(250.0),
        Just(360.0),
        Just(500.0),
        1.0..2000.0_f64
    ]
    .prop_map(SampleRate::hz)
}

/// `len` samples mixing ECG-sized values with NaN, infinities, the f32 extremes and flat runs.
fn samples(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let bits = (state >> 33) as u32;
            match bits % 64 {
                0 => f32::NAN,
                1 => f32::INFINITY,
                2 => f32::NEG_INFINITY,
                3 => f32::MAX,
                4..=12 => 0.0,
                _ => (bits % 20_000) as f32 / 1000.0 - 10.0,
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_beat_sequences_never_panic_and_keep_order(
        rate in rate(),
        steps in prop::collection::vec((0_u64..5_000, any::<bool>(), 0_u64..3_000, 0_u64..20_000), 0..400),
    ) {
        let mut rr = RrTracker::new(rate);
        let mut hr = HeartRateTracker::new();
        let mut hrv = HrvWindow::new(rate);
        let mut af = AfDetector::new(rate);
        let mut events = EventDetector::new(rate, EventThresholds::default());
        let mut position = 0_u64;
        let mut last_end = None;
        let mut count = 0_usize;
        for (advance, late, back, ahead) in steps {
            position += advance;
            // A beat somewhere around the present: late ones may point far back.
            let r_peak = if late { position.saturating_sub(back) } else { position.saturating_sub(ahead.min(back)) };
            rr.push_beat(Beat { r_peak, delay: 0, late });
            rr.advance(position, |_, interval| {
                if let Some(interval) = interval {
                    assert!(interval.end > interval.start);
                    assert!(last_end.is_none_or(|e| interval.start == e));
                    last_end = Some(interval.end);
                    hrv.advance(interval.end, |s| assert!(s.coverage <= 1.0));
                    af.advance(interval.end, |_| {});
                    let rate = hr.update(&interval);
                    if let Some(r) = rate { assert!(r.smoothed_bpm.is_finite()); }
                    events.push(&interval, rate.as_ref(), |e| assert!(e.end.is_none_or(|end| end >= e.start)));
                    hrv.push(&interval);
                    af.push(&interval);
                    count += 1;
                }
            });
            events.tick(position, rr.latest_beat(), |_| {});
        }
        rr.flush(|_, _| {});
        af.finish(position, |_| {});
        events.finish(|_| {});
        prop_assert!(count <= 400);
    }

    #[test]
    fn arbitrary_samples_never_panic_the_chain(
        rate in rate(),
        // (chunk length, seed): samples are derived from the seed, so cases stay cheap to make.
        chunks in prop::collection::vec((0_usize..1500, any::<u64>()), 0..30),
    ) {
        let chunks: Vec<Vec<f32>> = chunks.iter().map(|&(len, seed)| samples(len, seed)).collect();
        let mut analysis = Analysis::new(rate, AnalysisConfig { rail_mv: Some(5.0), ..AnalysisConfig::default() });
        let mut out = AnalysisOutput::with_capacity();
        for chunk in &chunks {
            analysis.push(chunk, &mut out);
        }
        analysis.finish(&mut out);
        for w in &out.af_windows {
            prop_assert!(w.end > w.start);
        }
    }
}
