//! Scoring detected beats against reference annotations, as the MIT-BIH evaluations do
//! (ANSI/AAMI EC57): a detection within a fixed window of a reference beat is a hit, matched one
//! to one, closest pairs first.

/// Window within which a detection matches a reference beat, each side.
pub const MATCH_WINDOW_MS: f64 = 150.0;

/// Hits, misses, false detections and placement errors of one record (or a sum of records).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Score {
    /// Reference beats matched by a detection.
    pub true_positives: u64,
    /// Reference beats no detection matched.
    pub false_negatives: u64,
    /// Detections that matched no reference beat.
    pub false_positives: u64,
    /// For each hit, detection minus reference, in samples.
    pub placement_errors: Vec<i64>,
    /// Reference beats no detection matched (sample indices).
    pub missed: Vec<u64>,
    /// Detections that matched no reference beat (sample indices).
    pub false_detections: Vec<u64>,
}

impl Score {
    /// Matches sorted `detected` sample indices to sorted `reference` ones within `window` samples.
    pub fn compare(reference: &[u64], detected: &[u64], window: u64) -> Self {
        let mut pairs: Vec<(u64, usize, usize)> = Vec::new();
        let mut first = 0;
        for (r, &reference_at) in reference.iter().enumerate() {
            while first < detected.len() && detected[first] + window < reference_at {
                first += 1;
            }
            for (d, &detected_at) in detected.iter().enumerate().skip(first) {
                if detected_at > reference_at + window {
                    break;
                }
                pairs.push((detected_at.abs_diff(reference_at), r, d));
            }
        }
        pairs.sort_unstable();
        let mut reference_used = vec![false; reference.len()];
        let mut detected_used = vec![false; detected.len()];
        let mut placement_errors = Vec::new();
        for (_, r, d) in pairs {
            if !reference_used[r] && !detected_used[d] {
                reference_used[r] = true;
                detected_used[d] = true;
                placement_errors.push(detected[d] as i64 - reference[r] as i64);
            }
        }
        let unmatched = |indices: &[u64], used: &[bool]| -> Vec<u64> {
            indices
                .iter()
                .zip(used)
                .filter(|(_, used)| !**used)
                .map(|(&i, _)| i)
                .collect()
        };
        let hits = placement_errors.len() as u64;
        Self {
            true_positives: hits,
            false_negatives: reference.len() as u64 - hits,
            false_positives: detected.len() as u64 - hits,
            placement_errors,
            missed: unmatched(reference, &reference_used),
            false_detections: unmatched(detected, &detected_used),
        }
    }

    /// As [`compare`](Self::compare), leaving out reference beats and detections inside any of
    /// `excluded` (e.g. ventricular flutter episodes, which AAMI EC57 does not score beat by beat).
    pub fn compare_excluding(
        reference: &[u64],
        detected: &[u64],
        window: u64,
        excluded: &[std::ops::Range<u64>],
    ) -> Self {
        let outside = |samples: &[u64]| -> Vec<u64> {
            samples
                .iter()
                .copied()
                .filter(|s| !excluded.iter().any(|range| range.contains(s)))
                .collect()
        };
        Self::compare(&outside(reference), &outside(detected), window)
    }

    /// Adds another record's counts and errors to this one.
    pub fn add(&mut self, other: &Self) {
        self.true_positives += other.true_positives;
        self.false_negatives += other.false_negatives;
        self.false_positives += other.false_positives;
        self.placement_errors
            .extend_from_slice(&other.placement_errors);
    }

    /// Sensitivity, TP / (TP + FN), in percent.
    pub fn sensitivity_pct(&self) -> f64 {
        percent(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// Positive predictivity, TP / (TP + FP), in percent.
    pub fn positive_predictivity_pct(&self) -> f64 {
        percent(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// F1, 2·TP / (2·TP + FN + FP), in percent.
    pub fn f1_pct(&self) -> f64 {
        percent(
            2 * self.true_positives,
            2 * self.true_positives + self.false_negatives + self.false_positives,
        )
    }

    /// The `quantile` (0–1) of |placement error|, in samples; `None` without hits.
    pub fn abs_placement_quantile(&self, quantile: f64) -> Option<f64> {
        let mut errors: Vec<u64> = self
            .placement_errors
            .iter()
            .map(|e| e.unsigned_abs())
            .collect();
        if errors.is_empty() {
            return None;
        }
        errors.sort_unstable();
        let rank = (quantile.clamp(0.0, 1.0) * (errors.len() - 1) as f64).round() as usize;
        Some(errors[rank] as f64)
    }
}

/// `part / whole` in percent; 100 when `whole` is zero (nothing to find, nothing wrongly found).
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        100.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_one_to_one_closest_first() {
        // Two detections near reference 100: the closer one hits, the other is a false positive.
        let score = Score::compare(&[100, 400, 900], &[90, 104, 420, 1200], 54);
        assert_eq!(
            (
                score.true_positives,
                score.false_negatives,
                score.false_positives
            ),
            (2, 1, 2)
        );
        assert_eq!(score.placement_errors, [4, 20]);
        assert_eq!(
            (score.missed.as_slice(), score.false_detections.as_slice()),
            (&[900][..], &[90, 1200][..])
        );
        assert!((score.sensitivity_pct() - 200.0 / 3.0).abs() < 1e-9);
        assert!((score.positive_predictivity_pct() - 50.0).abs() < 1e-9);
        assert!((score.f1_pct() - 400.0 / 7.0).abs() < 1e-9);
        assert_eq!(score.abs_placement_quantile(0.5), Some(20.0));
    }

    #[test]
    fn a_detection_between_two_beats_counts_once() {
        let score = Score::compare(&[100, 200], &[150], 60);
        assert_eq!(
            (
                score.true_positives,
                score.false_negatives,
                score.false_positives
            ),
            (1, 1, 0)
        );
    }

    #[test]
    fn excluded_ranges_are_not_scored() {
        let score = Score::compare_excluding(
            &[100, 500, 900],
            &[120, 650, 700],
            30,
            &[600..800, 2000..2001],
        );
        assert_eq!(
            (
                score.true_positives,
                score.false_negatives,
                score.false_positives
            ),
            (1, 2, 0)
        );
    }

    #[test]
    fn empty_inputs_score_perfectly() {
        let score = Score::compare(&[], &[], 10);
        assert_eq!(score.f1_pct(), 100.0);
        assert_eq!(score.abs_placement_quantile(0.95), None);
    }
}
