//! A chain restored from a snapshot continues exactly as the uninterrupted chain would have: a
//! server that checkpoints a stream and resumes it after a restart reports the same beats,
//! rates, events, AF windows and quality, with no burst of re-learning.

use mimamori_dsp::SampleRate;
use mimamori_dsp::analysis::{Analysis, AnalysisConfig, AnalysisOutput};
use mimamori_dsp::snapshot::SnapshotError;
use mimamori_dsp::synth::{Rhythm, SynthConfig};

fn push_all(analysis: &mut Analysis, samples: &[f32], chunk: usize) -> String {
    let mut out = AnalysisOutput::with_capacity();
    let mut log = String::new();
    for part in samples.chunks(chunk) {
        analysis.push(part, &mut out);
        log.push_str(&format!("{out:?}\n"));
        out.clear();
    }
    log
}

#[test]
fn a_restored_chain_continues_exactly_like_the_uninterrupted_one() {
    for hz in [125.0, 250.0, 500.0] {
        let rate = SampleRate::hz(hz);
        let (samples, _) = SynthConfig::new(rate, 5)
            .heart_rate_bpm(72.0)
            .pvc_probability(0.05)
            .rhythm_episode(Rhythm::AtrialFibrillation, 40.0, 70.0)
            .pause(150.0, 4.5)
            .generate_mv(240.0)
            .unwrap();
        let chunk = (hz / 4.0) as usize;
        // Cut mid-AF, with beats held back and windows half full.
        let cut = (97.3 * hz) as usize;
        let mut whole = Analysis::new(rate, AnalysisConfig::default());
        push_all(&mut whole, &samples[..cut], chunk);
        let expected = push_all(&mut whole, &samples[cut..], chunk);

        let mut first = Analysis::new(rate, AnalysisConfig::default());
        push_all(&mut first, &samples[..cut], chunk);
        let mut bytes = Vec::new();
        first.snapshot(&mut bytes);
        assert!((2_000..12_000).contains(&bytes.len()), "{}", bytes.len());
        drop(first);
        let mut resumed = Analysis::restore(&bytes).unwrap();
        assert_eq!(resumed.position(), cut as u64);
        let got = push_all(&mut resumed, &samples[cut..], chunk);
        assert!(expected.contains("AtrialFibrillation") || expected.contains("af: true"));
        assert_eq!(got, expected, "at {hz} Hz");
    }
}

#[test]
fn a_chain_cut_inside_ventricular_flutter_resumes_exactly() {
    for hz in [250.0, 360.0] {
        let rate = SampleRate::hz(hz);
        let (samples, _) = SynthConfig::new(rate, 9)
            .heart_rate_bpm(80.0)
            .rhythm_episode(Rhythm::VentricularFlutter, 40.0, 20.0)
            .generate_mv(90.0)
            .unwrap();
        let chunk = (hz / 4.0) as usize;
        // Inside the episode, with the guard holding beats and the VF window half new.
        let cut = (51.7 * hz) as usize;
        let mut whole = Analysis::new(rate, AnalysisConfig::default());
        push_all(&mut whole, &samples[..cut], chunk);
        let expected = push_all(&mut whole, &samples[cut..], chunk);

        let mut first = Analysis::new(rate, AnalysisConfig::default());
        push_all(&mut first, &samples[..cut], chunk);
        let mut bytes = Vec::new();
        first.snapshot(&mut bytes);
        let mut resumed = Analysis::restore(&bytes).unwrap();
        let got = push_all(&mut resumed, &samples[cut..], chunk);
        assert!(
            expected.contains("VentricularFibrillation"),
            "the episode ends after the cut"
        );
        assert_eq!(got, expected, "at {hz} Hz");
    }
}

#[test]
fn damaged_snapshots_are_refused() {
    let mut analysis = Analysis::new(SampleRate::hz(250.0), AnalysisConfig::default());
    let (samples, _) = SynthConfig::new(SampleRate::hz(250.0), 1)
        .generate_mv(10.0)
        .unwrap();
    push_all(&mut analysis, &samples, 250);
    let mut bytes = Vec::new();
    analysis.snapshot(&mut bytes);
    assert_eq!(
        Analysis::restore(&bytes[..bytes.len() - 1]).unwrap_err(),
        SnapshotError::Truncated(bytes.len() - 8)
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        Analysis::restore(&longer).unwrap_err(),
        SnapshotError::TrailingBytes(1)
    );
    assert_eq!(
        Analysis::restore(b"MQRS\x01").unwrap_err(),
        SnapshotError::BadMagic
    );
}
