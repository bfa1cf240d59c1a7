//! Device sessions: what to subscribe to, how to set the clock and what to poll for each device
//! family, and the scan loop that starts a session only for devices on the allow-list.
//!
//! Flow per notification: reassemble (Viatom) → decode ([`crate::devices::Profile`]) → extract
//! ([`crate::readings::Extractor`]) → [`SharedOutbox::store`] (durable before anything is sent).
//! Bad input is counted by reason and logged with its bytes in hex; the session goes on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use mimamori_wire::{Body, DeviceRef, DeviceStatus, GatewayConfig};
use tokio::sync::watch;
use tracing::Instrument;
use uuid::Uuid;

use crate::ble::{Advertisement, BleError, DeviceLink, Radio};
use crate::config::{Config, DeviceConfig};
use crate::devices::current_time::CurrentTime;
use crate::devices::date_time::{DeviceDateTime, tokyo};
use crate::devices::model::{self, DeviceFamily, sig_uuid};
use crate::devices::reassembler::{
    A5Frames, AaResponses, CheckmePipe, Framing, Reassembled, Reassembler,
};
use crate::devices::viatom::a5_frame::A5Request;
use crate::devices::viatom::aa_frame::AaRequest;
use crate::devices::viatom::checkme_live::CheckBytes;
use crate::devices::{Hex, Profile};
use crate::outbox::SharedOutbox;
use crate::readings::Extractor;

/// SIG measurement characteristics a session subscribes to when present.
const SIG_MEASUREMENTS: [u16; 6] = [0x2A35, 0x2A1C, 0x2A9D, 0x2A5E, 0x2A5F, 0x2A37];

/// The 16-bit form of a SIG UUID.
fn uuid16(u: Uuid) -> Option<u16> {
    let v = u.as_u128();
    (v & !(0xFFFF_u128 << 96) == sig_uuid(0)).then_some((v >> 96) as u16)
}

/// The services the scan filters on: every family the gateway reads.
pub fn scan_services() -> Vec<u128> {
    let mut s: Vec<u128> = model::SIG_HEALTH_SERVICES
        .iter()
        .map(|(u, _)| sig_uuid(*u))
        .collect();
    s.extend([model::VIATOM_SERVICE, model::LAIRD_VSP_SERVICE]);
    s
}

fn model_name(family: DeviceFamily, services: &[u128]) -> String {
    match family {
        DeviceFamily::CheckmePro => "checkme-pro".into(),
        DeviceFamily::O2 => "viatom-o2".into(),
        DeviceFamily::Er1 => "viatom-er1".into(),
        DeviceFamily::Bp2 => "viatom-bp2".into(),
        DeviceFamily::SigProfiles => {
            let by_service = [
                (0x1810, "ble-blood-pressure"),
                (0x1822, "ble-pulse-oximeter"),
                (0x1809, "ble-thermometer"),
                (0x181D, "ble-weight-scale"),
                (0x180D, "ble-heart-rate"),
            ];
            by_service
                .iter()
                .find(|(s, _)| services.contains(&sig_uuid(*s)))
                .map_or("ble-health-device", |(_, n)| n)
                .into()
        }
    }
}

/// Runs one device until `shutdown`: connect, stream, and reconnect with backoff.
pub async fn run_device(
    radio: Radio,
    adv: Advertisement,
    family: DeviceFamily,
    cfg: DeviceConfig,
    ble: crate::config::BleConfig,
    outbox: Arc<SharedOutbox>,
    mut shutdown: watch::Receiver<bool>,
) {
    let device = DeviceRef {
        id: format!(
            "{}:{}",
            cfg.model
                .clone()
                .unwrap_or_else(|| model_name(family, &adv.services)),
            adv.address
        ),
        model: cfg
            .model
            .clone()
            .unwrap_or_else(|| model_name(family, &adv.services)),
        ble_address: Some(adv.address.clone()),
    };
    let span = tracing::info_span!("device", device_id = %device.id, device_kind = ?family);
    async move {
        let mut backoff = Duration::from_millis(ble.reconnect_min_ms);
        loop {
            let result = match radio.connect(&adv.id, &adv.address).await {
                Ok(mut link) => {
                    backoff = Duration::from_millis(ble.reconnect_min_ms);
                    let r = stream(&mut link, family, cfg.check_bytes, &device, &ble, &outbox, &mut shutdown).await;
                    link.disconnect().await;
                    r
                }
                Err(e) => Err(e),
            };
            match &result {
                Ok(()) => tracing::info!("Device disconnected."),
                Err(error @ BleError::NotBonded { .. }) => tracing::error!(error = %error, "Device needs bonding."),
                Err(error) => tracing::warn!(error = %error, delay_ms = backoff.as_millis() as u64, "Device session failed; retrying."),
            }
            let _ = outbox.store(&[Body::DeviceStatus(DeviceStatus {
                device: device.clone(),
                at: Utc::now(),
                connected: false,
                battery_percent: None,
                lead_off: None,
                signal_quality: None,
                firmware: None,
            })]);
            tokio::select! {
                () = stopped(&mut shutdown) => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_millis(ble.reconnect_max_ms));
        }
    }
    .instrument(span)
    .await;
}

enum Pipe {
    Sig,
    Checkme(Reassembler<CheckmePipe>),
    Aa(Reassembler<AaResponses>),
    A5(Reassembler<A5Frames>),
}

/// One connection: subscribe, set the clock, read the battery, then decode until disconnect.
async fn stream<L: DeviceLink>(
    link: &mut L,
    family: DeviceFamily,
    check_bytes: CheckBytes,
    device: &DeviceRef,
    ble: &crate::config::BleConfig,
    outbox: &SharedOutbox,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), BleError> {
    let chars = link.characteristics();
    let has = |u: u128| chars.contains_key(&Uuid::from_u128(u));
    let local_now = Utc::now().with_timezone(&tokyo()).naive_local();
    let mut extractor = Extractor::new(device.clone(), crate::clock::is_synced(), random_u64());
    let mut rejected = crate::readings::Rejections::default();
    let (mut pipe, notify_char, write_char) = match family {
        DeviceFamily::SigProfiles => (Pipe::Sig, None, None),
        viatom => {
            let (notify, write) = if has(model::VIATOM_NOTIFY) {
                (model::VIATOM_NOTIFY, model::VIATOM_WRITE)
            } else {
                (model::LAIRD_VSP_NOTIFY, model::LAIRD_VSP_WRITE)
            };
            let pipe = match viatom {
                DeviceFamily::CheckmePro => {
                    Pipe::Checkme(Reassembler::new(CheckmePipe { check_bytes }))
                }
                DeviceFamily::O2 => Pipe::Aa(Reassembler::new(AaResponses)),
                _ => Pipe::A5(Reassembler::new(A5Frames)),
            };
            (
                pipe,
                Some(Uuid::from_u128(notify)),
                Some(Uuid::from_u128(write)),
            )
        }
    };

    // Subscribe before writing anything (the protocol notes' rule for Viatom devices).
    match notify_char {
        Some(n) => link.subscribe(n).await?,
        None => {
            for m in SIG_MEASUREMENTS {
                if has(sig_uuid(m)) {
                    link.subscribe(Uuid::from_u128(sig_uuid(m))).await?;
                }
            }
        }
    }
    // Set the device clock where the protocol allows it.
    let clock = match (family, write_char) {
        (DeviceFamily::SigProfiles, _)
            if chars
                .get(&Uuid::from_u128(sig_uuid(0x2A2B)))
                .is_some_and(|c| c.write) =>
        {
            Some((
                Uuid::from_u128(sig_uuid(0x2A2B)),
                CurrentTime::for_setting(local_now).encode().to_vec(),
            ))
        }
        (DeviceFamily::SigProfiles, _)
            if chars
                .get(&Uuid::from_u128(sig_uuid(0x2A08)))
                .is_some_and(|c| c.write) =>
        {
            Some((
                Uuid::from_u128(sig_uuid(0x2A08)),
                DeviceDateTime::from_naive(local_now).encode().to_vec(),
            ))
        }
        (DeviceFamily::CheckmePro | DeviceFamily::O2, Some(w)) => {
            Some((w, AaRequest::SetTime(local_now).encode()))
        }
        (DeviceFamily::Er1 | DeviceFamily::Bp2, Some(w)) => {
            Some((w, A5Request::SetTime(local_now).encode(0)))
        }
        _ => None,
    };
    if let Some((c, bytes)) = clock {
        match link.write(c, &bytes).await {
            Ok(()) => tracing::info!(local_time = %local_now, "Device clock set."),
            Err(error) => tracing::warn!(error = %error, "Could not set the device clock."),
        }
    }
    let battery = Uuid::from_u128(sig_uuid(0x2A19));
    if chars.get(&battery).is_some_and(|c| c.read) {
        match link.read(battery).await {
            Ok(bytes) => handle(
                Profile::Battery,
                &bytes,
                &mut extractor,
                &mut rejected,
                outbox,
                check_bytes,
            ),
            Err(error) => tracing::warn!(error = %error, "Could not read the battery level."),
        }
    }
    let poll: Option<Vec<u8>> = match family {
        DeviceFamily::O2 => Some(AaRequest::O2LiveParams.encode()),
        DeviceFamily::Er1 => Some(A5Request::Er1RealTime { rate: 0x7D }.encode(0)),
        DeviceFamily::Bp2 => Some(A5Request::Bp2RealTime.encode(0)),
        _ => None,
    };
    let mut ticker = tokio::time::interval(Duration::from_millis(ble.poll_interval_ms.max(100)));
    tracing::info!("Device connected and subscribed.");
    loop {
        tokio::select! {
            () = stopped(shutdown) => break,
            _ = ticker.tick(), if poll.is_some() => {
                if let (Some(w), Some(p)) = (write_char, &poll) {
                    link.write(w, p).await?;
                }
            }
            n = link.next_notification() => {
                let Some(n) = n else { break };
                match &mut pipe {
                    Pipe::Sig => match uuid16(n.characteristic).and_then(Profile::for_characteristic) {
                        Some(p) => handle(p, &n.value, &mut extractor, &mut rejected, outbox, check_bytes),
                        None => tracing::debug!(characteristic = %n.characteristic, "Notification from an unused characteristic."),
                    },
                    Pipe::Checkme(r) => frames(r, &n.value, |f| if f.first() == Some(&0x55) { Profile::ViatomResponse } else { Profile::CheckmeLive }, &mut extractor, &mut rejected, outbox, check_bytes),
                    Pipe::Aa(r) => frames(r, &n.value, |_| Profile::O2Live, &mut extractor, &mut rejected, outbox, check_bytes),
                    Pipe::A5(r) => frames(r, &n.value, |_| Profile::LepuFrame, &mut extractor, &mut rejected, outbox, check_bytes),
                }
            }
        }
    }
    let mut tail = Vec::new();
    extractor.flush_ecg(&mut tail, Utc::now());
    if !tail.is_empty() {
        let _ = outbox.store(&tail);
    }
    if rejected.total() > 0 {
        tracing::warn!(rejected = ?rejected.0, "Bad input during this connection.");
    }
    Ok(())
}

fn frames<F: Framing>(
    r: &mut Reassembler<F>,
    bytes: &[u8],
    profile_of: impl Fn(&[u8]) -> Profile,
    extractor: &mut Extractor,
    rejected: &mut crate::readings::Rejections,
    outbox: &SharedOutbox,
    check_bytes: CheckBytes,
) {
    r.push(bytes);
    while let Some(out) = r.next_frame() {
        match out {
            Reassembled::Frame(f) => {
                handle(profile_of(&f), &f, extractor, rejected, outbox, check_bytes)
            }
            Reassembled::Rejected { error, bytes } => {
                rejected.count(error.reason());
                tracing::warn!(reason = error.reason(), error = %error, bytes = %Hex(bytes), "Frame rejected.");
            }
        }
    }
}

fn handle(
    profile: Profile,
    bytes: &[u8],
    extractor: &mut Extractor,
    rejected: &mut crate::readings::Rejections,
    outbox: &SharedOutbox,
    check_bytes: CheckBytes,
) {
    match profile.decode(bytes, check_bytes) {
        Ok(decoded) => {
            let bodies = extractor.extract(&decoded, Utc::now());
            if !bodies.is_empty()
                && let Err(error) = outbox.store(&bodies)
            {
                // Loud: this is the one place a reading could be lost (disk full, quota).
                tracing::error!(error = %error, bytes = %Hex(bytes.to_vec()), "Outbox refused a reading.");
            }
        }
        Err(error) => {
            rejected.count(error.reason());
            tracing::warn!(profile = profile.name(), reason = error.reason(), error = %error, bytes = %Hex(bytes.to_vec()), "Notification rejected.");
        }
    }
}

/// Resolves once shutdown is signalled (the guard `wait_for` returns is not `Send`, so it is
/// dropped here rather than held in a `select!`).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // A stream id only needs to differ between connections; a clock fallback is enough.
    if getrandom::fill(&mut b).is_err() {
        return Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    }
    u64::from_le_bytes(b)
}

/// Scans and runs a session for every allowed device it sees, until `shutdown`. Devices seen
/// but not on the allow-list (the config file's, plus the server's `config` message) are
/// reported once each and never connected.
pub async fn run_gateway(
    config: Config,
    outbox: Arc<SharedOutbox>,
    server_allow_list: watch::Receiver<Option<GatewayConfig>>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), BleError> {
    let radio = Radio::first_adapter().await?;
    let mut ads = radio.scan(&scan_services()).await?;
    let mut running: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut reported: HashSet<String> = HashSet::new();
    let mut stop = shutdown.clone();
    loop {
        let adv = tokio::select! {
            () = stopped(&mut stop) => break,
            adv = ads.next() => match adv { Some(a) => a, None => break },
        };
        if running.get(&adv.address).is_some_and(|t| !t.is_finished()) {
            continue;
        }
        let from_server = server_allow_list.borrow().as_ref().and_then(|c| {
            c.allowed_devices
                .iter()
                .find(|d| {
                    d.ble_address
                        .as_deref()
                        .is_some_and(|a| a.eq_ignore_ascii_case(&adv.address))
                })
                .map(|d| DeviceConfig {
                    address: adv.address.clone(),
                    family: None,
                    model: Some(d.model.clone()),
                    check_bytes: CheckBytes::default(),
                })
        });
        let Some(device_cfg) = config.device(&adv.address).cloned().or(from_server) else {
            if reported.insert(adv.address.clone()) {
                tracing::info!(address = %adv.address, name = adv.name.as_deref().unwrap_or(""), rssi = adv.rssi, "Device seen but not on this gateway's allow-list; not connecting.");
            }
            continue;
        };
        let family = match device_cfg
            .family
            .map_or_else(|| model::identify(adv.name.as_deref(), &adv.services), Ok)
        {
            Ok(f) => f,
            Err(unknown) => {
                if reported.insert(adv.address.clone()) {
                    tracing::error!(address = %adv.address, error = %unknown, "Allowed device of unknown model; not ingesting it.");
                }
                continue;
            }
        };
        let task = tokio::spawn(run_device(
            radio.clone(),
            adv.clone(),
            family,
            device_cfg,
            config.ble.clone(),
            outbox.clone(),
            shutdown.clone(),
        ));
        running.insert(adv.address.clone(), task);
    }
    for (_, t) in running {
        let _ = t.await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig_uuids_shorten_and_vendor_uuids_do_not() {
        assert_eq!(uuid16(Uuid::from_u128(sig_uuid(0x2A35))), Some(0x2A35));
        assert_eq!(uuid16(Uuid::from_u128(model::VIATOM_NOTIFY)), None);
    }
}
