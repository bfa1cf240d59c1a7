//! Records that gather several rows of the shared queries: watermarks with the sequences above
//! them, allow-lists with their devices, and per-gateway statistics from three queries.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use mimamori_wire::AllowedDevice;

use super::{parse_epoch, parse_gateway, to_u64};
use crate::storage::{GatewayAllowList, GatewayStats, StorageError, StoredWatermark};

/// Builds the watermarks from the rows of [`WATERMARKS_SQL`](super::statements::WATERMARKS_SQL) and
/// [`SEQUENCES_ABOVE_WATERMARKS_SQL`](super::statements::SEQUENCES_ABOVE_WATERMARKS_SQL); both backends read the same two queries.
pub(super) fn assemble_watermarks(
    watermarks: Vec<(String, String, i64)>,
    sequences_above: Vec<(String, String, i64)>,
) -> Result<Vec<StoredWatermark>, StorageError> {
    let mut map: BTreeMap<(String, String), (Option<u64>, Vec<u64>)> = BTreeMap::new();
    for (gateway, epoch, through) in watermarks {
        map.insert(
            (gateway, epoch),
            (Some(to_u64(through, "stored_through")?), vec![]),
        );
    }
    for (gateway, epoch, seq) in sequences_above {
        map.entry((gateway, epoch))
            .or_default()
            .1
            .push(to_u64(seq, "sequence")?);
    }
    map.into_iter()
        .map(|((gateway, epoch), (through, above))| {
            Ok(StoredWatermark {
                gateway: parse_gateway(&gateway)?,
                epoch: parse_epoch(&epoch)?,
                stored_through: through,
                stored_above: above,
            })
        })
        .collect()
}

/// One row of [`GATEWAY_ALLOW_LISTS_SQL`](super::statements::GATEWAY_ALLOW_LISTS_SQL).
pub(super) type AllowListRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

/// Groups the rows of [`GATEWAY_ALLOW_LISTS_SQL`](super::statements::GATEWAY_ALLOW_LISTS_SQL) per gateway; both backends read that query.
/// Devices are sorted here, so both backends give the same order whatever their collation.
pub(super) fn assemble_allow_lists(rows: Vec<AllowListRow>) -> Vec<GatewayAllowList> {
    let mut lists: BTreeMap<String, GatewayAllowList> = BTreeMap::new();
    for (gateway_id, patient_id, model, serial, ble_address, device_user) in rows {
        let list = lists
            .entry(gateway_id.clone())
            .or_insert_with(|| GatewayAllowList {
                gateway_id,
                patient_id,
                devices: Vec::new(),
            });
        // `devices.model` is NOT NULL: no model means the gateway has no device.
        if let Some(model) = model {
            list.devices.push(AllowedDevice {
                model,
                serial,
                ble_address,
                device_user: device_user.and_then(|u| u8::try_from(u).ok()),
            });
        }
    }
    lists
        .into_values()
        .map(|mut list| {
            list.devices.sort_by(|a, b| {
                (&a.model, &a.serial, &a.ble_address).cmp(&(&b.model, &b.serial, &b.ble_address))
            });
            list
        })
        .collect()
}

/// Rows `(gateway_id, received, stored, duplicates, dead_lettered)` of the ingest counters.
pub(super) type CountRow = (String, i64, i64, i64, i64);
/// Rows `(gateway_id, reason, count)` of the dead letters.
pub(super) type DeadLetterRow = (String, String, i64);
/// Rows `(gateway_id, last_seen, clock_offset_ms)` of the gateways' state.
pub(super) type GatewayStateRow = (String, Option<DateTime<Utc>>, Option<i64>);

/// Merges the three per-gateway queries both backends run into one [`GatewayStats`] per gateway
/// seen in any of them, ordered by gateway id.
pub(super) fn assemble_gateway_stats(
    counts: Vec<CountRow>,
    dead_letters: Vec<DeadLetterRow>,
    states: Vec<GatewayStateRow>,
) -> Vec<GatewayStats> {
    fn entry(stats: &mut BTreeMap<String, GatewayStats>, gateway_id: String) -> &mut GatewayStats {
        stats
            .entry(gateway_id.clone())
            .or_insert_with(|| GatewayStats {
                gateway_id,
                ..GatewayStats::default()
            })
    }

    let mut stats = BTreeMap::new();
    for (gateway_id, received, stored, duplicates, dead_lettered) in counts {
        let e = entry(&mut stats, gateway_id);
        e.received = received;
        e.stored = stored;
        e.duplicates = duplicates;
        e.dead_lettered = dead_lettered;
    }
    for (gateway_id, reason, count) in dead_letters {
        entry(&mut stats, gateway_id)
            .dead_lettered_by_reason
            .insert(reason, count);
    }
    for (gateway_id, last_seen, clock_offset_ms) in states {
        let e = entry(&mut stats, gateway_id);
        e.last_seen = last_seen;
        e.clock_offset_ms = clock_offset_ms;
    }
    stats.into_values().collect()
}
