//! The detector allocates only when built: feeding it samples never touches the heap.
//! `allocation-counter` installs a counting global allocator in this test binary.

use mimamori_dsp::SampleRate;
use mimamori_dsp::qrs::QrsDetector;
use mimamori_dsp::synth::{NoiseKind, SynthConfig};

#[test]
fn pushing_samples_never_allocates() {
    for hz in [125.0, 250.0, 360.0, 500.0] {
        let rate = SampleRate::hz(hz);
        let (samples, truth) = SynthConfig::new(rate, 1)
            .heart_rate_bpm(70.0)
            .pvc_probability(0.1)
            .noise_burst(NoiseKind::Motion, 2.0, 20.0, 3.0)
            .generate_mv(60.0)
            .unwrap();
        let mut built = None;
        let construction = allocation_counter::measure(|| built = Some(QrsDetector::new(rate)));
        // Proves the counter is live: building allocates the detector's buffers.
        assert!(construction.count_total >= 1);
        let Some(mut detector) = built else {
            unreachable!()
        };
        // A fixed output buffer: the test must not allocate either.
        let mut found = [0u64; 256];
        let mut count = 0;
        let info = allocation_counter::measure(|| {
            for chunk in samples.chunks(113) {
                detector.push(chunk, |beat| {
                    found[count % found.len()] = beat.r_peak;
                    count += 1;
                });
            }
            let mut snapshot = detector.clone();
            detector.reset();
            std::mem::swap(&mut detector, &mut snapshot);
            drop(snapshot);
        });
        // Clone-and-drop of one snapshot allocates its buffers once and frees them.
        assert!(
            info.count_total <= 4,
            "{hz} Hz: {} allocations while streaming",
            info.count_total
        );
        assert_eq!(info.count_current, 0, "{hz} Hz: leaked");
        assert!(
            count + 5 >= truth.beats.len(),
            "{hz} Hz: found {count} of {} beats",
            truth.beats.len()
        );

        let info = allocation_counter::measure(|| {
            detector.push(&samples, |_| {});
        });
        assert_eq!(info.count_total, 0, "{hz} Hz: streaming allocated");
    }
}

/// The QRS detector with its VF/VFL guard: no allocation per sample, through a flutter episode
/// (beats held and dropped, episode reported), and within the 8 KiB per-stream budget.
#[test]
fn the_vf_guarded_detector_never_allocates_and_fits_the_budget() {
    use mimamori_dsp::synth::Rhythm;
    use mimamori_dsp::vf::{Detection, GuardedQrsDetector};

    for hz in [125.0, 250.0, 360.0, 500.0] {
        let rate = SampleRate::hz(hz);
        let (samples, _) = SynthConfig::new(rate, 2)
            .heart_rate_bpm(90.0)
            .pvc_probability(0.1)
            .rhythm_episode(Rhythm::VentricularFlutter, 20.0, 15.0)
            .rhythm_episode(Rhythm::VentricularTachycardia { bpm: 180 }, 45.0, 10.0)
            .generate_mv(70.0)
            .unwrap();
        let mut built = None;
        let construction =
            allocation_counter::measure(|| built = Some(GuardedQrsDetector::new(rate)));
        assert!(construction.count_total >= 1);
        let Some(mut detector) = built else {
            unreachable!()
        };
        assert!(
            detector.state_bytes() <= 8 * 1024,
            "{hz} Hz: {} bytes",
            detector.state_bytes()
        );
        let (mut beats, mut changes) = (0usize, 0usize);
        let info = allocation_counter::measure(|| {
            for chunk in samples.chunks(113) {
                detector.push(chunk, |d| match d {
                    Detection::Beat(_) => beats += 1,
                    Detection::Vf(_) => changes += 1,
                });
            }
            detector.finish(|_| {});
        });
        assert_eq!(info.count_total, 0, "{hz} Hz: streaming allocated");
        assert_eq!(changes, 2, "{hz} Hz: one episode, opened and closed");
        assert!(beats > 50, "{hz} Hz: {beats} beats");
    }
}
