//! Rate and pause events: bradycardia, tachycardia, pauses and asystole, with their evidence.
//!
//! - **Pause**: an RR interval longer than 2 s ([`EventKind::Pause2s`]) or 3 s
//!   ([`EventKind::Pause3s`]), the thresholds of ambulatory (Holter) reporting.
//! - **Asystole**: no beat for 4 s or more, the default asystole delay of bedside monitors
//!   (e.g. Philips IntelliVue, GE CARESCAPE). Asystole is raised *while it lasts*: an open event
//!   (no end) as soon as the stream has gone 4 s past the last beat seen, closed by the next beat.
//! - **Bradycardia / tachycardia**: the smoothed heart rate below 50 bpm / above 120 bpm (the usual
//!   adult alarm defaults) for four consecutive beats; it ends when the rate has been back inside
//!   the limits, with 5 bpm of hysteresis, for four beats.
//!
//! Each gap-based event is exact to the beat: it starts at the R peak before the gap and ends at
//! the R peak after it. Whether the signal around it was usable is the caller's to judge (see
//! [`crate::analysis`]), so a lead-off is not taken for asystole.

use crate::SampleRate;
use crate::heart_rate::HeartRate;
use crate::rr::RrInterval;
use crate::snapshot::{Reader, SnapshotError, put_f32, put_flag, put_opt_u64, put_u32, put_u64};

/// Thresholds of the events, with their units in their names.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EventThresholds {
    /// Below this smoothed rate: bradycardia.
    pub bradycardia_bpm: f32,
    /// Above this smoothed rate: tachycardia.
    pub tachycardia_bpm: f32,
    /// How far back inside the limits the rate must come to end an episode.
    pub hysteresis_bpm: f32,
    /// Consecutive beats needed to start or end bradycardia or tachycardia.
    pub confirm_beats: u32,
    /// An RR longer than this is a pause.
    pub pause_ms: f32,
    /// An RR longer than this is a long pause.
    pub long_pause_ms: f32,
    /// No beat for this long is asystole.
    pub asystole_ms: f32,
}

impl Default for EventThresholds {
    fn default() -> Self {
        Self {
            bradycardia_bpm: 50.0,
            tachycardia_bpm: 120.0,
            hysteresis_bpm: 5.0,
            confirm_beats: 4,
            pause_ms: 2000.0,
            long_pause_ms: 3000.0,
            asystole_ms: 4000.0,
        }
    }
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Smoothed rate below the bradycardia limit.
    Bradycardia,
    /// Smoothed rate above the tachycardia limit.
    Tachycardia,
    /// RR interval over 2 s (and not over 3 s).
    Pause2s,
    /// RR interval over 3 s (and under the asystole limit).
    Pause3s,
    /// No beat for the asystole limit or longer.
    Asystole,
    /// Ventricular flutter or fibrillation (from [`crate::vf`]): no beats, the most urgent alarm.
    /// Raised open as soon as it is confirmed (`start` dated back to its onset), closed when it ends.
    VentricularFibrillation,
}

/// The measurements that back an event.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Evidence {
    /// Beats (RR intervals) inside the event.
    pub beats: u32,
    /// Shortest RR inside the event, in ms (for a gap: the gap).
    pub min_rr_ms: f32,
    /// Longest RR inside the event, in ms (for a gap: the gap so far).
    pub max_rr_ms: f32,
    /// Extreme smoothed rate reached (lowest for bradycardia, highest for tachycardia), in bpm.
    pub extreme_bpm: f32,
}

/// One event, open (`end: None`) or finished.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RhythmEvent {
    /// What happened.
    pub kind: EventKind,
    /// R peak where it started (for a gap: the last beat before it).
    pub start: u64,
    /// R peak where it ended (for a gap: the first beat after it); `None` while it lasts.
    pub end: Option<u64>,
    /// The measurements that back it.
    pub evidence: Evidence,
}

/// An ongoing rate episode.
#[derive(Clone, Copy, Debug)]
struct Episode {
    start: u64,
    last_inside: u64,
    evidence: Evidence,
    /// Beats in a row confirming the current state change (onset or offset).
    streak: u32,
    confirmed: bool,
}

/// Streaming RR/rate → events. Fixed memory.
#[derive(Clone, Debug)]
pub struct EventDetector {
    thresholds: EventThresholds,
    fs: f64,
    brady: Option<Episode>,
    tachy: Option<Episode>,
    /// Start (last beat) of the asystole reported open, if any.
    open_asystole: Option<u64>,
}

impl EventDetector {
    /// A detector with `thresholds` for a stream sampled at `rate`.
    pub fn new(rate: SampleRate, thresholds: EventThresholds) -> Self {
        Self {
            thresholds,
            fs: rate.as_hz(),
            brady: None,
            tachy: None,
            open_asystole: None,
        }
    }

    /// Checks for an ongoing asystole: `position` is the next sample index, `latest_beat` the
    /// newest R peak seen (committed or not).
    pub fn tick(
        &mut self,
        position: u64,
        latest_beat: Option<u64>,
        mut on_event: impl FnMut(RhythmEvent),
    ) {
        let Some(last) = latest_beat else { return };
        if self.open_asystole == Some(last) {
            return;
        }
        let gap_ms = ((position.saturating_sub(last)) as f64 * 1000.0 / self.fs) as f32;
        if gap_ms >= self.thresholds.asystole_ms {
            self.open_asystole = Some(last);
            on_event(RhythmEvent {
                kind: EventKind::Asystole,
                start: last,
                end: None,
                evidence: Evidence {
                    beats: 0,
                    min_rr_ms: gap_ms,
                    max_rr_ms: gap_ms,
                    extreme_bpm: 0.0,
                },
            });
        }
    }

    /// Takes the next committed interval and the rate at its end, if one was computed.
    pub fn push(
        &mut self,
        rr: &RrInterval,
        rate: Option<&HeartRate>,
        mut on_event: impl FnMut(RhythmEvent),
    ) {
        let t = self.thresholds;
        if rr.rr_ms > t.pause_ms {
            let kind = if rr.rr_ms >= t.asystole_ms {
                EventKind::Asystole
            } else if rr.rr_ms > t.long_pause_ms {
                EventKind::Pause3s
            } else {
                EventKind::Pause2s
            };
            on_event(RhythmEvent {
                kind,
                start: rr.start,
                end: Some(rr.end),
                evidence: Evidence {
                    beats: 1,
                    min_rr_ms: rr.rr_ms,
                    max_rr_ms: rr.rr_ms,
                    extreme_bpm: 0.0,
                },
            });
        }
        if self.open_asystole.is_some_and(|start| start <= rr.start) {
            self.open_asystole = None;
        }
        if let Some(rate) = rate {
            let bpm = rate.smoothed_bpm;
            let brady = bpm < t.bradycardia_bpm;
            let brady_over = bpm >= t.bradycardia_bpm + t.hysteresis_bpm;
            Self::track(
                &mut self.brady,
                EventKind::Bradycardia,
                brady,
                brady_over,
                rr,
                bpm,
                t.confirm_beats,
                &mut on_event,
            );
            let tachy = bpm > t.tachycardia_bpm;
            let tachy_over = bpm <= t.tachycardia_bpm - t.hysteresis_bpm;
            Self::track(
                &mut self.tachy,
                EventKind::Tachycardia,
                tachy,
                tachy_over,
                rr,
                bpm,
                t.confirm_beats,
                &mut on_event,
            );
        }
    }

    /// Closes open episodes at the end of the stream.
    pub fn finish(&mut self, mut on_event: impl FnMut(RhythmEvent)) {
        for (slot, kind) in [
            (&mut self.brady, EventKind::Bradycardia),
            (&mut self.tachy, EventKind::Tachycardia),
        ] {
            if let Some(e) = slot.take().filter(|e| e.confirmed) {
                on_event(RhythmEvent {
                    kind,
                    start: e.start,
                    end: Some(e.last_inside),
                    evidence: e.evidence,
                });
            }
        }
    }

    /// One step of a rate episode's state machine: `inside` the limit, or `over` (back past the
    /// hysteresis).
    #[allow(clippy::too_many_arguments)]
    fn track(
        slot: &mut Option<Episode>,
        kind: EventKind,
        inside: bool,
        over: bool,
        rr: &RrInterval,
        bpm: f32,
        confirm: u32,
        on_event: &mut impl FnMut(RhythmEvent),
    ) {
        let extreme = |a: f32, b: f32| {
            if kind == EventKind::Bradycardia {
                a.min(b)
            } else {
                a.max(b)
            }
        };
        match slot {
            None if inside => {
                *slot = Some(Episode {
                    start: rr.end,
                    last_inside: rr.end,
                    evidence: Evidence {
                        beats: 1,
                        min_rr_ms: rr.rr_ms,
                        max_rr_ms: rr.rr_ms,
                        extreme_bpm: bpm,
                    },
                    streak: 1,
                    confirmed: confirm <= 1,
                });
                if confirm <= 1
                    && let Some(e) = slot
                {
                    on_event(RhythmEvent {
                        kind,
                        start: e.start,
                        end: None,
                        evidence: e.evidence,
                    });
                }
            }
            None => {}
            Some(e) if !e.confirmed => {
                if inside {
                    e.streak += 1;
                    e.last_inside = rr.end;
                    e.evidence.beats += 1;
                    e.evidence.min_rr_ms = e.evidence.min_rr_ms.min(rr.rr_ms);
                    e.evidence.max_rr_ms = e.evidence.max_rr_ms.max(rr.rr_ms);
                    e.evidence.extreme_bpm = extreme(e.evidence.extreme_bpm, bpm);
                    if e.streak >= confirm {
                        e.confirmed = true;
                        e.streak = 0;
                        on_event(RhythmEvent {
                            kind,
                            start: e.start,
                            end: None,
                            evidence: e.evidence,
                        });
                    }
                } else {
                    *slot = None;
                }
            }
            Some(e) => {
                e.evidence.beats += 1;
                e.evidence.min_rr_ms = e.evidence.min_rr_ms.min(rr.rr_ms);
                e.evidence.max_rr_ms = e.evidence.max_rr_ms.max(rr.rr_ms);
                if inside {
                    e.last_inside = rr.end;
                    e.streak = 0;
                    e.evidence.extreme_bpm = extreme(e.evidence.extreme_bpm, bpm);
                } else if over {
                    e.streak += 1;
                    if e.streak >= confirm {
                        let event = RhythmEvent {
                            kind,
                            start: e.start,
                            end: Some(e.last_inside),
                            evidence: e.evidence,
                        };
                        *slot = None;
                        on_event(event);
                    }
                }
            }
        }
    }
}

/// Checkpoint support (see [`crate::analysis::Analysis::snapshot`]).
impl EventDetector {
    pub(crate) fn save(&self, out: &mut Vec<u8>) {
        for episode in [self.brady, self.tachy] {
            put_flag(out, episode.is_some());
            let e = episode.unwrap_or(Episode {
                start: 0,
                last_inside: 0,
                evidence: Evidence::default(),
                streak: 0,
                confirmed: false,
            });
            put_u64(out, e.start);
            put_u64(out, e.last_inside);
            put_u32(out, e.evidence.beats);
            put_f32(out, e.evidence.min_rr_ms);
            put_f32(out, e.evidence.max_rr_ms);
            put_f32(out, e.evidence.extreme_bpm);
            put_u32(out, e.streak);
            put_flag(out, e.confirmed);
        }
        put_opt_u64(out, self.open_asystole);
    }

    pub(crate) fn load(&mut self, r: &mut Reader<'_>) -> Result<(), SnapshotError> {
        let mut episodes = [None; 2];
        for slot in &mut episodes {
            let present = r.flag("episode")?;
            let episode = Episode {
                start: r.u64()?,
                last_inside: r.u64()?,
                evidence: Evidence {
                    beats: r.u32()?,
                    min_rr_ms: r.f32()?,
                    max_rr_ms: r.f32()?,
                    extreme_bpm: r.f32()?,
                },
                streak: r.u32()?,
                confirmed: r.flag("confirmed")?,
            };
            *slot = present.then_some(episode);
        }
        [self.brady, self.tachy] = episodes;
        self.open_asystole = r.opt_u64("open asystole")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heart_rate::HeartRateTracker;
    use crate::rr::RrClass;

    fn run(rr_ms: &[f32]) -> Vec<RhythmEvent> {
        let rate = SampleRate::hz(1000.0);
        let mut events = EventDetector::new(rate, EventThresholds::default());
        let mut hr = HeartRateTracker::new();
        let mut out = Vec::new();
        let mut t = 0_u64;
        for &ms in rr_ms {
            let rr = RrInterval {
                start: t,
                end: t + ms as u64,
                rr_ms: ms,
                class: RrClass::Normal,
                usable: true,
            };
            events.tick(rr.end, Some(t), |e| out.push(e));
            let rate = hr.update(&rr);
            events.push(&rr, rate.as_ref(), |e| out.push(e));
            t = rr.end;
        }
        events.finish(|e| out.push(e));
        out
    }

    #[test]
    fn pauses_are_classed_by_length_and_bounded_by_their_beats() {
        let mut series = vec![800.0; 10];
        series.extend([2100.0, 800.0, 800.0, 3500.0, 800.0, 800.0, 5000.0, 800.0]);
        let events = run(&series);
        let gaps: Vec<(EventKind, u64, Option<u64>)> = events
            .iter()
            .filter(|e| e.kind != EventKind::Bradycardia)
            .map(|e| (e.kind, e.start, e.end))
            .collect();
        assert_eq!(
            gaps,
            [
                (EventKind::Pause2s, 8000, Some(10_100)),
                (EventKind::Pause3s, 11_700, Some(15_200)),
                (EventKind::Asystole, 16_800, None),
                (EventKind::Asystole, 16_800, Some(21_800)),
            ]
        );
    }

    #[test]
    fn bradycardia_starts_after_four_slow_beats_and_ends_with_hysteresis() {
        let mut series = vec![800.0; 12];
        series.extend(vec![1500.0; 20]); // 40 bpm
        series.extend(vec![1150.0; 12]); // 52 bpm: inside the hysteresis band, still brady
        series.extend(vec![800.0; 12]);
        let events: Vec<RhythmEvent> = run(&series)
            .into_iter()
            .filter(|e| e.kind == EventKind::Bradycardia)
            .collect();
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0].end, None);
        let done = events[1];
        // The smoothed (trimmed) rate falls below 50 bpm once three slow intervals dominate.
        let first_slow_end = 12 * 800 + 1500;
        assert!(
            done.start >= first_slow_end && done.start <= first_slow_end + 4 * 1500,
            "{done:?}"
        );
        assert!(done.end.unwrap() >= 12 * 800 + 20 * 1500, "{done:?}");
        assert!((done.evidence.extreme_bpm - 40.0).abs() < 0.5);
    }

    #[test]
    fn tachycardia_is_reported_with_its_fastest_rate() {
        let mut series = vec![800.0; 10];
        series.extend(vec![400.0; 30]); // 150 bpm
        series.extend(vec![800.0; 15]);
        let events: Vec<RhythmEvent> = run(&series)
            .into_iter()
            .filter(|e| e.kind == EventKind::Tachycardia)
            .collect();
        assert_eq!(events.len(), 2);
        assert!((events[1].evidence.extreme_bpm - 150.0).abs() < 0.5);
    }
}
