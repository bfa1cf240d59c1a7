//! End-to-end acknowledgement watermarks: per `(gateway, epoch)`, the highest sequence `n` such
//! that every message `0..=n` is stored. Only what is at or below it may leave a gateway's outbox.

use std::collections::{BTreeSet, HashMap};

use mimamori_wire::{Epoch, GatewayId};

use crate::storage::{StoredWatermark, Watermark};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Contiguous {
    /// `None` until sequence 0 is stored.
    through: Option<u64>,
    /// Stored sequences above `through + 1`, waiting for the gap below them to fill.
    above: BTreeSet<u64>,
}

impl Contiguous {
    fn covers(&self, seq: u64) -> bool {
        self.through.is_some_and(|t| seq <= t) || self.above.contains(&seq)
    }

    fn insert(&mut self, seq: u64) {
        if self.covers(seq) {
            return;
        }
        self.above.insert(seq);
        let mut next = self.through.map_or(0, |t| t + 1);
        while self.above.remove(&next) {
            self.through = Some(next);
            next += 1;
        }
    }
}

/// The watermarks of every `(gateway, epoch)` seen.
#[derive(Clone, Debug, Default)]
pub struct Watermarks {
    streams: HashMap<(GatewayId, Epoch), Contiguous>,
}

impl Watermarks {
    /// Rebuilds the state persisted by previous runs.
    pub fn from_stored(stored: Vec<StoredWatermark>) -> Self {
        let mut marks = Self::default();
        for s in stored {
            let c = marks.streams.entry((s.gateway, s.epoch)).or_default();
            c.through = s.stored_through;
            for seq in s.stored_above {
                c.insert(seq);
            }
        }
        marks
    }

    /// Whether `seq` is known to be stored already (so a redelivery is a duplicate).
    pub fn covers(&self, gateway: &GatewayId, epoch: Epoch, seq: u64) -> bool {
        self.streams
            .get(&(gateway.clone(), epoch))
            .is_some_and(|c| c.covers(seq))
    }

    /// The watermarks after also storing `keys`, without changing `self`: what a batch will
    /// write in its transaction. Returns only the `(gateway, epoch)`s the keys touch that have one.
    pub fn after<'a>(
        &self,
        keys: impl IntoIterator<Item = (&'a GatewayId, Epoch, u64)>,
    ) -> (Self, Vec<Watermark>) {
        let mut next = self.clone();
        let mut touched = Vec::new();
        for (gateway, epoch, seq) in keys {
            let id = (gateway.clone(), epoch);
            if !touched.contains(&id) {
                touched.push(id.clone());
            }
            next.streams.entry(id).or_default().insert(seq);
        }
        let marks = touched
            .into_iter()
            .filter_map(|(gateway, epoch)| {
                let through = next.streams.get(&(gateway.clone(), epoch))?.through?;
                Some(Watermark {
                    gateway,
                    epoch,
                    stored_through: through,
                })
            })
            .collect();
        (next, marks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw() -> GatewayId {
        GatewayId::new("gw-1").unwrap()
    }

    #[test]
    fn watermark_waits_for_the_gap_and_then_jumps() {
        let epoch = Epoch::from_bytes([1; 16]);
        let g = gw();
        let (marks, acks) =
            Watermarks::default().after([(&g, epoch, 0), (&g, epoch, 1), (&g, epoch, 3)]);
        assert_eq!(acks[0].stored_through, 1);
        assert!(marks.covers(&g, epoch, 3));
        assert!(!marks.covers(&g, epoch, 2));
        let (marks, acks) = marks.after([(&g, epoch, 2)]);
        assert_eq!(acks[0].stored_through, 3);
        assert!(marks.covers(&g, epoch, 0));
    }

    #[test]
    fn nothing_is_acknowledged_before_sequence_zero() {
        let epoch = Epoch::from_bytes([2; 16]);
        let g = gw();
        let (_, acks) = Watermarks::default().after([(&g, epoch, 5)]);
        assert!(acks.is_empty());
    }

    #[test]
    fn a_new_epoch_starts_from_zero_beside_the_old_one() {
        let old = Epoch::from_bytes([3; 16]);
        let new = Epoch::from_bytes([4; 16]);
        let g = gw();
        let (marks, _) = Watermarks::default().after((0..10).map(|s| (&g, old, s)));
        assert!(!marks.covers(&g, new, 0));
        let (marks, acks) = marks.after([(&g, new, 0)]);
        assert_eq!(
            acks,
            vec![Watermark {
                gateway: g.clone(),
                epoch: new,
                stored_through: 0
            }]
        );
        assert!(marks.covers(&g, old, 9));
    }

    #[test]
    fn restored_state_matches_what_was_stored() {
        let epoch = Epoch::from_bytes([5; 16]);
        let marks = Watermarks::from_stored(vec![StoredWatermark {
            gateway: gw(),
            epoch,
            stored_through: Some(4),
            stored_above: vec![6, 7],
        }]);
        let g = gw();
        assert!(
            marks.covers(&g, epoch, 4) && marks.covers(&g, epoch, 7) && !marks.covers(&g, epoch, 5)
        );
        let (_, acks) = marks.after([(&g, epoch, 5)]);
        assert_eq!(acks[0].stored_through, 7);
    }
}
