//! Whether the gateway's own clock is NTP-synchronised; every message says so.

/// True when systemd-timesyncd (or chrony via the same marker) reports the clock synchronised.
/// The file is created by timesyncd on first sync and removed when it loses sync.
pub fn is_synced() -> bool {
    std::path::Path::new("/run/systemd/timesync/synchronized").exists()
}
