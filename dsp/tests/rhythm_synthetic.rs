//! The whole rhythm chain (detector → RR → HR → HRV → events → AF, with signal quality) run on
//! synthetic ECG whose truth is known: every output is checked against what was put in.

use mimamori_dsp::SampleRate;
use mimamori_dsp::analysis::{Analysis, AnalysisConfig, AnalysisOutput};
use mimamori_dsp::events::EventKind;
use mimamori_dsp::quality::QualityFlags;
use mimamori_dsp::synth::{
    BeatKind, GroundTruth, LeadOffKind, NoiseKind, Rhythm, SynthConfig, TruthBeat,
};

const RATES_HZ: [f64; 4] = [125.0, 250.0, 360.0, 500.0];

/// Everything the chain produced over a whole synthetic recording, fed in one-second chunks.
fn analyse(config: SynthConfig, seconds: f64) -> (AnalysisOutput, GroundTruth, SampleRate) {
    let mut ecg = config.build().expect("valid synthetic configuration");
    let rate = ecg.rate();
    let chunk_len = rate.as_hz().round() as usize;
    let mut chunk = vec![0.0_f32; chunk_len];
    let mut analysis = Analysis::new(rate, AnalysisConfig::default());
    let mut all = AnalysisOutput::default();
    let mut out = AnalysisOutput::with_capacity();
    let append = |out: &mut AnalysisOutput, all: &mut AnalysisOutput| {
        all.beats.append(&mut out.beats);
        all.heart_rates.append(&mut out.heart_rates);
        all.hrv.append(&mut out.hrv);
        all.events.append(&mut out.events);
        all.af_windows.append(&mut out.af_windows);
        all.quality.append(&mut out.quality);
    };
    for _ in 0..(seconds as usize) {
        ecg.fill_mv(&mut chunk);
        analysis.push(&chunk, &mut out);
        append(&mut out, &mut all);
    }
    analysis.finish(&mut out);
    append(&mut out, &mut all);
    (all, ecg.take_truth(), rate)
}

fn truth_rr_ms(truth: &[TruthBeat], rate: SampleRate) -> Vec<f64> {
    truth
        .windows(2)
        .map(|w| rate.ms_of_samples((w[1].r_peak - w[0].r_peak) as f64))
        .collect()
}

#[test]
fn heart_rate_of_a_known_rate_is_within_one_bpm_at_every_sampling_rate() {
    for hz in RATES_HZ {
        for bpm in [40.0, 60.0, 75.0, 110.0, 150.0, 180.0] {
            let config = SynthConfig::new(SampleRate::hz(hz), 21)
                .heart_rate_bpm(bpm)
                .sdnn_ms(0.0);
            let (out, _, _) = analyse(config, 120.0);
            assert!(
                out.heart_rates.len() as f64 > 120.0 * bpm / 60.0 - 10.0,
                "{hz} Hz {bpm} bpm: {} rates, events {:?}",
                out.heart_rates.len(),
                out.events
            );
            // Past the first nine beats, every smoothed value is the known rate.
            let worst = out.heart_rates[9..]
                .iter()
                .map(|hr| (f64::from(hr.smoothed_bpm) - bpm).abs())
                .fold(0.0, f64::max);
            println!("{hz} Hz {bpm} bpm: largest smoothed-rate error {worst:.3} bpm");
            for hr in &out.heart_rates[9..] {
                assert!(
                    (f64::from(hr.smoothed_bpm) - bpm).abs() <= 1.0,
                    "{hz} Hz {bpm} bpm: smoothed {} at {}",
                    hr.smoothed_bpm,
                    hr.at
                );
            }
        }
    }
}

#[test]
fn heart_rate_with_variability_and_ectopy_tracks_the_true_mean_rate() {
    for hz in RATES_HZ {
        let config = SynthConfig::new(SampleRate::hz(hz), 5)
            .heart_rate_bpm(72.0)
            .sdnn_ms(50.0)
            .pvc_probability(0.05);
        let (out, truth, rate) = analyse(config, 300.0);
        let true_rr = truth_rr_ms(&truth.beats, rate);
        let true_bpm = 60_000.0 * true_rr.len() as f64 / true_rr.iter().sum::<f64>();
        let mean_bpm = out
            .heart_rates
            .iter()
            .map(|h| f64::from(h.smoothed_bpm))
            .sum::<f64>()
            / out.heart_rates.len() as f64;
        assert!(
            (mean_bpm - true_bpm).abs() <= 1.0,
            "{hz} Hz: {mean_bpm} vs {true_bpm}"
        );
    }
}

#[test]
fn hrv_matches_the_truth_over_each_five_minute_window() {
    for hz in [250.0, 500.0] {
        let config = SynthConfig::new(SampleRate::hz(hz), 8)
            .heart_rate_bpm(65.0)
            .sdnn_ms(60.0);
        let (out, truth, rate) = analyse(config, 660.0);
        let full: Vec<_> = out
            .hrv
            .iter()
            .filter(|s| s.start > 0 && s.end - s.start == (300.0 * hz) as u64)
            .collect();
        assert!(full.len() >= 10, "{} full windows", full.len());
        for s in full {
            // The truth's NN intervals ending inside the window, and the one before (for the
            // first successive difference).
            let first = truth
                .beats
                .iter()
                .position(|b| b.r_peak >= s.start)
                .unwrap();
            let last = truth.beats.iter().rposition(|b| b.r_peak < s.end).unwrap();
            let rr = truth_rr_ms(&truth.beats[first - 2..=last], rate);
            let in_window = &rr[1..];
            let mean = in_window.iter().sum::<f64>() / in_window.len() as f64;
            let sdnn = (in_window.iter().map(|x| (x - mean).powi(2)).sum::<f64>()
                / (in_window.len() - 1) as f64)
                .sqrt();
            let diffs: Vec<f64> = rr.windows(2).map(|w| w[1] - w[0]).collect();
            let rmssd = (diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64).sqrt();
            let pnn50 =
                100.0 * diffs.iter().filter(|d| d.abs() > 50.0).count() as f64 / diffs.len() as f64;
            let got_sdnn = f64::from(s.sdnn_ms.unwrap());
            let got_rmssd = f64::from(s.rmssd_ms.unwrap());
            let got_pnn50 = f64::from(s.pnn50_pct.unwrap());
            assert!(
                (got_sdnn - sdnn).abs() <= 0.05 * sdnn,
                "{hz} Hz SDNN {got_sdnn} vs {sdnn}"
            );
            assert!(
                (got_rmssd - rmssd).abs() <= 0.05 * rmssd,
                "{hz} Hz RMSSD {got_rmssd} vs {rmssd}"
            );
            assert!(
                (got_pnn50 - pnn50).abs() <= 5.0,
                "{hz} Hz pNN50 {got_pnn50} vs {pnn50}"
            );
            assert!(s.coverage > 0.9, "coverage {}", s.coverage);
        }
    }
}

#[test]
fn pauses_and_asystole_are_exact_to_the_beat() {
    for hz in RATES_HZ {
        let config = SynthConfig::new(SampleRate::hz(hz), 31)
            .heart_rate_bpm(70.0)
            .pause(40.0, 2.5)
            .pause(80.0, 3.6)
            .pause(120.0, 6.0);
        let (out, truth, rate) = analyse(config, 160.0);
        let tolerance = u64::from(rate.samples_in_ms(150.0));
        let finished: Vec<_> = out
            .events
            .iter()
            .filter(|e| e.event.end.is_some())
            .map(|e| e.event)
            .collect();
        let expected = [EventKind::Pause2s, EventKind::Pause3s, EventKind::Asystole];
        assert_eq!(finished.len(), 3, "{hz} Hz: {finished:?}");
        for ((event, kind), pause) in finished.iter().zip(expected).zip(&truth.pauses) {
            assert_eq!(event.kind, kind, "{hz} Hz");
            assert!(
                event.start.abs_diff(pause.before) <= tolerance,
                "{hz} Hz {event:?} vs {pause:?}"
            );
            assert!(
                event.end.unwrap().abs_diff(pause.after) <= tolerance,
                "{hz} Hz {event:?} vs {pause:?}"
            );
        }
        // The 6-s asystole was also raised while it lasted, from the same beat.
        let open: Vec<_> = out
            .events
            .iter()
            .filter(|e| e.event.end.is_none())
            .collect();
        assert_eq!(open.len(), 1, "{hz} Hz: {open:?}");
        assert_eq!(open[0].event.kind, EventKind::Asystole);
        assert_eq!(open[0].event.start, finished[2].start);
        assert!(out.events.iter().all(|e| e.signal_usable));
    }
}

#[test]
fn slow_and_fast_rates_raise_bradycardia_and_tachycardia_and_normal_rates_nothing() {
    let rate = SampleRate::hz(250.0);
    for (bpm, expected) in [
        (42.0, Some(EventKind::Bradycardia)),
        (75.0, None),
        (140.0, Some(EventKind::Tachycardia)),
    ] {
        let config = SynthConfig::new(rate, 71).heart_rate_bpm(bpm).sdnn_ms(20.0);
        let (out, truth, _) = analyse(config, 120.0);
        let kinds: Vec<(EventKind, bool)> = out
            .events
            .iter()
            .map(|e| (e.event.kind, e.event.end.is_some()))
            .collect();
        match expected {
            // Opened within the first beats, closed at the end of the stream.
            Some(kind) => {
                assert_eq!(kinds, [(kind, false), (kind, true)], "{bpm} bpm");
                let closed = out.events[1].event;
                assert!(
                    closed.start <= truth.beats[12].r_peak,
                    "{bpm} bpm: {closed:?}"
                );
                assert!(closed.evidence.beats as usize >= truth.beats.len() - 14);
            }
            None => assert!(kinds.is_empty(), "{bpm} bpm: {kinds:?}"),
        }
    }
}

#[test]
fn af_windows_follow_the_af_episode_and_spare_flutter_and_ectopy() {
    let rate = SampleRate::hz(250.0);
    let window = 30 * 250;
    let scenarios = [
        (
            "AF episode",
            SynthConfig::new(rate, 41)
                .heart_rate_bpm(85.0)
                .rhythm_episode(Rhythm::AtrialFibrillation, 300.0, 300.0),
        ),
        (
            "fast AF",
            SynthConfig::new(rate, 42)
                .heart_rate_bpm(130.0)
                .rhythm_episode(Rhythm::AtrialFibrillation, 0.0, 900.0),
        ),
        (
            "flutter 2:1",
            SynthConfig::new(rate, 43).rhythm_episode(
                Rhythm::AtrialFlutter { conduction: 2 },
                0.0,
                900.0,
            ),
        ),
        (
            "flutter 4:1",
            SynthConfig::new(rate, 44).rhythm_episode(
                Rhythm::AtrialFlutter { conduction: 4 },
                0.0,
                900.0,
            ),
        ),
        (
            "frequent PVCs",
            SynthConfig::new(rate, 45)
                .heart_rate_bpm(80.0)
                .pvc_probability(0.25),
        ),
        (
            "frequent PACs",
            SynthConfig::new(rate, 46)
                .heart_rate_bpm(70.0)
                .pac_probability(0.2),
        ),
        (
            "sinus arrhythmia",
            SynthConfig::new(rate, 47)
                .heart_rate_bpm(70.0)
                .sdnn_ms(70.0),
        ),
    ];
    for (name, config) in scenarios {
        let (out, truth, _) = analyse(config, 900.0);
        assert_eq!(out.af_windows.len(), 30, "{name}");
        let mut wrong = 0;
        for w in &out.af_windows {
            let expected = 2 * truth.af_samples_in(w.start, w.end) > w.end - w.start;
            // A window straddling an episode edge may go either way.
            let straddles = truth.af_samples_in(w.start, w.end) > 0
                && truth.af_samples_in(w.start, w.end) < window;
            if w.af != expected && !straddles {
                wrong += 1;
            }
        }
        assert_eq!(wrong, 0, "{name}: {:?}", out.af_windows);
    }
}

#[test]
fn lead_off_and_noise_are_flagged_and_beats_inside_are_unusable() {
    for hz in RATES_HZ {
        let rate = SampleRate::hz(hz);
        let config = SynthConfig::new(rate, 51)
            .heart_rate_bpm(75.0)
            .lead_off(LeadOffKind::Flat, 30.0, 12.0)
            .noise_burst(NoiseKind::Muscle, 0.4, 70.0, 10.0);
        let (out, truth, _) = analyse(config, 120.0);
        let second = hz as u64;
        for q in &out.quality {
            let s = q.start / second;
            if (30..42).contains(&s) {
                assert_eq!(q.flags, QualityFlags::FLAT, "{hz} Hz second {s}");
            }
            if (70..80).contains(&s) {
                assert!(
                    q.flags.contains(QualityFlags::HF_NOISE),
                    "{hz} Hz second {s}: {q:?}"
                );
            }
        }
        // No beat is reported in the flat line; beats in the noise are marked unusable.
        assert!(
            out.beats
                .iter()
                .all(|b| !(30 * second..42 * second).contains(&b.r_peak))
        );
        let noisy: Vec<_> = out
            .beats
            .iter()
            .filter(|b| (70 * second..80 * second).contains(&b.r_peak))
            .collect();
        assert!(
            !noisy.is_empty() && noisy.iter().all(|b| !b.usable),
            "{hz} Hz"
        );
        // The silent flat line raised asystole, marked as technical.
        let asystole: Vec<_> = out
            .events
            .iter()
            .filter(|e| e.event.kind == EventKind::Asystole)
            .collect();
        assert!(!asystole.is_empty(), "{hz} Hz");
        assert!(
            asystole.iter().all(|e| !e.signal_usable),
            "{hz} Hz: {asystole:?}"
        );
        // Elsewhere, beats are found and usable.
        let clean = |r: u64| {
            !(29 * second..43 * second).contains(&r) && !(69 * second..81 * second).contains(&r)
        };
        let tolerance = u64::from(rate.samples_in_ms(150.0));
        for t in truth
            .beats
            .iter()
            .filter(|b| clean(b.r_peak) && b.r_peak > 3 * second && b.kind == BeatKind::Normal)
        {
            assert!(
                out.beats
                    .iter()
                    .any(|b| b.usable && b.r_peak.abs_diff(t.r_peak) <= tolerance),
                "{hz} Hz: beat at {} missing",
                t.r_peak
            );
        }
    }
}

#[test]
fn chain_state_fits_in_sixteen_kibibytes_at_every_rate() {
    for hz in RATES_HZ {
        let analysis = Analysis::new(SampleRate::hz(hz), AnalysisConfig::default());
        let bytes = analysis.state_bytes();
        println!("chain state at {hz} Hz: {bytes} bytes");
        assert!(bytes <= 16 * 1024, "{hz} Hz: {bytes} bytes");
    }
}

#[test]
fn pushing_samples_does_not_allocate_after_warm_up() {
    let rate = SampleRate::hz(360.0);
    let (ecg, _) = SynthConfig::new(rate, 61)
        .pvc_probability(0.1)
        .rhythm_episode(Rhythm::AtrialFibrillation, 100.0, 100.0)
        .pause(250.0, 5.0)
        .noise_burst(NoiseKind::Muscle, 0.3, 150.0, 5.0)
        .generate_mv(400.0)
        .unwrap();
    let mut analysis = Analysis::new(rate, AnalysisConfig::default());
    let mut out = AnalysisOutput::with_capacity();
    let (warm_up, rest) = ecg.split_at(60 * 360);
    for chunk in warm_up.chunks(360) {
        analysis.push(chunk, &mut out);
        out.clear();
    }
    let mut beats = 0;
    let info = allocation_counter::measure(|| {
        for chunk in rest.chunks(360) {
            analysis.push(chunk, &mut out);
            beats += out.beats.len();
            out.clear();
        }
    });
    assert!(beats > 300);
    assert_eq!(info.count_total, 0, "{info:?}");
}
