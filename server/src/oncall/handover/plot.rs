//! Small inline SVG plots: a 72-hour trend per vital sign and an ECG strip on paper grid.
//!
//! Plain SVG, no script and no external resource, so the page prints and can be saved as one
//! file. Numbers are written with a fixed precision, which keeps the output reproducible.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use mimamori_dsp::SampleRate;

use super::input::{EcgStrip, VitalSeries};

/// Trend plot size in CSS pixels.
const TREND_WIDTH: f64 = 220.0;
const TREND_HEIGHT: f64 = 64.0;
const TREND_PAD: f64 = 4.0;
/// A pause longer than this between two points breaks the line: missing data is shown as missing.
const MAX_TREND_GAP: Duration = Duration::minutes(90);
/// Up to this many points, each reading is also drawn as a dot.
const MAX_SPOT_READINGS: usize = 40;
/// Above this many points, each pixel column keeps only its minimum and maximum.
const MAX_TREND_POINTS: usize = 2 * TREND_WIDTH as usize;

/// ECG paper: 25 mm/s and 10 mm/mV, drawn in millimetre user units.
const ECG_MM_PER_S: f64 = 25.0;
const ECG_MM_PER_MV: f64 = 10.0;
/// Vertical extent of the strip, ±1.5 mV around the baseline.
const ECG_HALF_HEIGHT_MV: f64 = 1.5;

/// Beat-to-beat figures of a strip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RhythmFigures {
    /// Mean RR interval, ms.
    pub(super) mean_rr_ms: f64,
    /// Shortest and longest RR interval, ms.
    pub(super) min_rr_ms: f64,
    pub(super) max_rr_ms: f64,
    /// Heart rate from the mean RR, /min.
    pub(super) heart_rate_per_min: f64,
}

/// The sampling rate, if the strip's is usable.
fn sample_rate(strip: &EcgStrip) -> Option<SampleRate> {
    (strip.sample_rate_hz.is_finite() && strip.sample_rate_hz > 0.0)
        .then(|| SampleRate::hz(strip.sample_rate_hz))
}

/// RR and HR from the strip's R peaks; `None` with fewer than two peaks or a bad sampling rate.
pub(super) fn rhythm_figures(strip: &EcgStrip) -> Option<RhythmFigures> {
    let rate = sample_rate(strip)?;
    let rr: Vec<f64> = strip
        .r_peaks
        .windows(2)
        .filter(|w| w[1] > w[0])
        .map(|w| rate.ms_of_samples((w[1] - w[0]) as f64))
        .collect();
    if rr.is_empty() {
        return None;
    }
    let mean = rr.iter().sum::<f64>() / rr.len() as f64;
    Some(RhythmFigures {
        mean_rr_ms: mean,
        min_rr_ms: rr.iter().copied().fold(f64::INFINITY, f64::min),
        max_rr_ms: rr.iter().copied().fold(0.0, f64::max),
        heart_rate_per_min: 60_000.0 / mean,
    })
}

/// A 72-hour trend ending at `end`, with the target range shaded and values outside it marked.
pub(super) fn trend_svg(series: &VitalSeries, end: DateTime<Utc>, title: &str) -> String {
    let start = end - Duration::hours(72);
    let points: Vec<(DateTime<Utc>, f64)> = series
        .points
        .iter()
        .filter(|p| p.at >= start && p.at <= end && p.value.is_finite())
        .map(|p| (p.at, p.value))
        .collect();
    let points = decimate(&points, start);

    let mut lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let mut hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    if let Some((a, b)) = series.target_range {
        lo = lo.min(a);
        hi = hi.max(b);
    }
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let margin = ((hi - lo) * 0.1).max(0.5);
    let (lo, hi) = (lo - margin, hi + margin);

    let x = |t: DateTime<Utc>| {
        TREND_PAD
            + (t - start).num_seconds() as f64 / (72.0 * 3600.0) * (TREND_WIDTH - 2.0 * TREND_PAD)
    };
    let y = |v: f64| TREND_PAD + (hi - v) / (hi - lo) * (TREND_HEIGHT - 2.0 * TREND_PAD);

    let mut svg = String::with_capacity(4096);
    let _ = write!(
        svg,
        r#"<svg class="trend" viewBox="0 0 {TREND_WIDTH} {TREND_HEIGHT}" width="{TREND_WIDTH}" height="{TREND_HEIGHT}" role="img" aria-label="{title}">"#,
    );
    if let Some((a, b)) = series.target_range {
        let _ = write!(
            svg,
            r#"<rect class="target" x="{TREND_PAD}" y="{:.1}" width="{:.1}" height="{:.1}"/>"#,
            y(b),
            TREND_WIDTH - 2.0 * TREND_PAD,
            (y(a) - y(b)).max(0.5),
        );
    }
    // Day boundaries every 24 h back from the end.
    for h in [24, 48] {
        let gx = x(end - Duration::hours(h));
        let _ = write!(
            svg,
            r#"<line class="day" x1="{gx:.1}" y1="0" x2="{gx:.1}" y2="{TREND_HEIGHT}"/>"#
        );
    }
    // Spot readings (temperature three times a day, weight daily) are joined across their usual
    // spacing; only a pause well beyond it counts as missing data.
    let mut spacings: Vec<Duration> = points.windows(2).map(|w| w[1].0 - w[0].0).collect();
    spacings.sort_unstable();
    let usual = spacings
        .get(spacings.len() / 2)
        .copied()
        .unwrap_or_default();
    let max_gap = MAX_TREND_GAP.max(usual * 3);
    let mut segment = String::new();
    let mut previous: Option<DateTime<Utc>> = None;
    for &(t, v) in &points {
        if previous.is_some_and(|p| t - p > max_gap) {
            push_polyline(&mut svg, &segment);
            segment.clear();
        }
        let _ = write!(segment, "{:.1},{:.1} ", x(t), y(v));
        previous = Some(t);
    }
    push_polyline(&mut svg, &segment);
    if points.len() <= MAX_SPOT_READINGS {
        for &(t, v) in &points {
            let _ = write!(
                svg,
                r#"<circle class="pt" cx="{:.1}" cy="{:.1}" r="1.3"/>"#,
                x(t),
                y(v)
            );
        }
    }
    if let Some((a, b)) = series.target_range {
        for &(t, v) in points.iter().filter(|p| p.1 < a || p.1 > b) {
            let _ = write!(
                svg,
                r#"<circle class="out" cx="{:.1}" cy="{:.1}" r="1.6"/>"#,
                x(t),
                y(v)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn push_polyline(svg: &mut String, points: &str) {
    if !points.is_empty() {
        let _ = write!(svg, r#"<polyline points="{}"/>"#, points.trim_end());
    }
}

/// Keeps the minimum and maximum of each pixel column when there are too many points to draw,
/// so a short desaturation still shows at 72 hours' scale.
fn decimate(points: &[(DateTime<Utc>, f64)], start: DateTime<Utc>) -> Vec<(DateTime<Utc>, f64)> {
    if points.len() <= MAX_TREND_POINTS {
        return points.to_vec();
    }
    let column_seconds = (72 * 3600) / (TREND_WIDTH as i64);
    let mut out: Vec<(DateTime<Utc>, f64)> = Vec::with_capacity(MAX_TREND_POINTS + 2);
    let column_of = |t: DateTime<Utc>| (t - start).num_seconds() / column_seconds;
    for chunk in points.chunk_by(|a, b| column_of(a.0) == column_of(b.0)) {
        let min = chunk.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1));
        let max = chunk.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1));
        if let (Some(min), Some(max)) = (min, max) {
            // Keep time order inside the column.
            let (first, second) = if min.0 <= max.0 {
                (min, max)
            } else {
                (max, min)
            };
            out.push(first);
            if second != first {
                out.push(second);
            }
        }
    }
    out
}

/// The strip on ECG paper (1 mm small squares, 5 mm large ones), R peaks marked with their RR in ms.
pub(super) fn ecg_svg(strip: &EcgStrip, title: &str) -> Option<String> {
    let rate = sample_rate(strip)?;
    if strip.samples_mv.is_empty() {
        return None;
    }
    let seconds = strip.samples_mv.len() as f64 / rate.as_hz();
    let width = seconds * ECG_MM_PER_S;
    let height = 2.0 * ECG_HALF_HEIGHT_MV * ECG_MM_PER_MV;
    let baseline = height / 2.0;
    let x = |i: f64| i / rate.as_hz() * ECG_MM_PER_S;
    let y = |mv: f64| (baseline - mv * ECG_MM_PER_MV).clamp(0.0, height);

    let mut svg = String::with_capacity(strip.samples_mv.len() * 12 + 2048);
    let _ = write!(
        svg,
        r#"<svg class="ecg" viewBox="0 0 {width:.1} {height:.1}" preserveAspectRatio="xMinYMid meet" role="img" aria-label="{title}">"#
    );
    svg.push_str(concat!(
        r##"<defs><pattern id="ecg-small" width="1" height="1" patternUnits="userSpaceOnUse">"##,
        r##"<path d="M1 0H0V1" fill="none" stroke="#f4c7c3" stroke-width="0.08"/></pattern>"##,
        r##"<pattern id="ecg-large" width="5" height="5" patternUnits="userSpaceOnUse">"##,
        r##"<rect width="5" height="5" fill="url(#ecg-small)"/>"##,
        r##"<path d="M5 0H0V5" fill="none" stroke="#e8908a" stroke-width="0.18"/></pattern></defs>"##,
    ));
    let _ = write!(
        svg,
        r##"<rect width="{width:.1}" height="{height:.1}" fill="url(#ecg-large)"/>"##
    );
    // 1 mV calibration pulse at the left edge, as on a paper ECG.
    let _ = write!(
        svg,
        r#"<path class="cal" d="M0 {b:.2}h1v-{mv:.2}h3v{mv:.2}h1"/>"#,
        b = baseline,
        mv = ECG_MM_PER_MV
    );
    svg.push_str(r#"<polyline class="trace" points=""#);
    for (i, mv) in strip.samples_mv.iter().enumerate() {
        let _ = write!(svg, "{:.2},{:.2} ", x(i as f64), y(f64::from(*mv)));
    }
    svg.push_str(r#""/>"#);
    let peaks: Vec<u64> = strip
        .r_peaks
        .iter()
        .copied()
        .filter(|&p| (p as usize) < strip.samples_mv.len())
        .collect();
    for (i, &p) in peaks.iter().enumerate() {
        let px = x(p as f64);
        let _ = write!(
            svg,
            r#"<path class="rmark" d="M{:.2} 0.3h1.4l-0.7 1.2z"/>"#,
            px - 0.7
        );
        if let Some(&next) = peaks.get(i + 1) {
            let rr_ms = rate.ms_of_samples((next - p) as f64);
            let mid = (px + x(next as f64)) / 2.0;
            let _ = write!(
                svg,
                r#"<text class="rr" x="{mid:.2}" y="{:.2}">{rr_ms:.0}</text>"#,
                height - 0.8
            );
        }
    }
    svg.push_str("</svg>");
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oncall::handover::input::{VitalKind, VitalPoint};

    fn strip(rate: f64, peaks: Vec<u64>) -> EcgStrip {
        EcgStrip {
            recorded_at: DateTime::UNIX_EPOCH,
            lead: "I".into(),
            sample_rate_hz: rate,
            samples_mv: vec![0.0; 2500],
            r_peaks: peaks,
        }
    }

    #[test]
    fn rhythm_figures_from_r_peaks() {
        // 250 Hz, peaks 200 samples apart = 800 ms = 75/min; one at 250 samples = 1000 ms.
        let f = rhythm_figures(&strip(250.0, vec![100, 300, 500, 750])).unwrap();
        assert!((f.mean_rr_ms - 866.67).abs() < 0.01);
        assert_eq!((f.min_rr_ms, f.max_rr_ms), (800.0, 1000.0));
        assert!((f.heart_rate_per_min - 69.23).abs() < 0.01);
        assert_eq!(rhythm_figures(&strip(250.0, vec![100])), None);
        assert_eq!(rhythm_figures(&strip(0.0, vec![100, 300])), None);
        assert_eq!(ecg_svg(&strip(f64::NAN, vec![]), "x"), None);
    }

    #[test]
    fn trend_breaks_at_gaps_and_marks_values_outside_the_target() {
        let end: DateTime<Utc> = "2026-11-25T00:00:00Z".parse().unwrap();
        let at = |h: i64| end - Duration::hours(h);
        let series = VitalSeries {
            kind: VitalKind::Spo2,
            points: vec![
                VitalPoint {
                    at: at(80),
                    value: 50.0,
                }, // outside the window: not drawn
                VitalPoint {
                    at: at(10),
                    value: 95.0,
                },
                VitalPoint {
                    at: at(9),
                    value: 94.0,
                },
                VitalPoint {
                    at: at(8),
                    value: 94.0,
                },
                // four hours without data: more than three usual spacings
                VitalPoint {
                    at: at(4),
                    value: 86.0,
                },
                VitalPoint {
                    at: at(3),
                    value: 93.0,
                },
            ],
            target_range: Some((90.0, 100.0)),
        };
        let svg = trend_svg(&series, end, "SpO2");
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("class=\"out\"").count(), 1);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn dense_series_keep_their_extremes() {
        let end: DateTime<Utc> = "2026-11-25T00:00:00Z".parse().unwrap();
        let mut points: Vec<VitalPoint> = (0..4320)
            .map(|m| VitalPoint {
                at: end - Duration::minutes(4320 - m),
                value: 96.0,
            })
            .collect();
        points[2000].value = 81.0;
        let kept = decimate(
            &points.iter().map(|p| (p.at, p.value)).collect::<Vec<_>>(),
            end - Duration::hours(72),
        );
        assert!(kept.len() <= MAX_TREND_POINTS);
        assert!(kept.iter().any(|p| p.1 == 81.0));
    }
}
