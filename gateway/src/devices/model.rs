//! Which device family a discovered device belongs to, from its advertised name and services
//! (protocol notes §1.7, A.1–A.3, §2). The family decides the framing and decoders.
//!
//! The Checkme Pro X appears in no public source. It is assumed to behave like the Checkme Pro
//! (name starting `Checkme`, `A5 5A` live stream, 0xAA file protocol); the README lists what a
//! deployment must verify. A device that matches nothing is reported as [`UnknownDevice`], with
//! what it advertised, and never ingested.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A 128-bit UUID for a SIG 16-bit one.
pub const fn sig_uuid(short: u16) -> u128 {
    ((short as u128) << 96) | 0x0000_0000_0000_1000_8000_0080_5F9B_34FB
}

/// Viatom vendor service.
pub const VIATOM_SERVICE: u128 = 0x14839ac4_7d7e_415c_9a42_167340cf2339;
/// Viatom write characteristic.
pub const VIATOM_WRITE: u128 = 0x8b00ace7_eb0b_49b0_bbe9_9aee0a26e1a3;
/// Viatom notify characteristic.
pub const VIATOM_NOTIFY: u128 = 0x0734594a_a8e7_4b1a_a6b1_cd5243059a57;
/// Laird virtual serial port service (some Checkme Pro units).
pub const LAIRD_VSP_SERVICE: u128 = 0x569a1101_b87f_490c_92cb_11ba5ea5167c;
/// Laird VSP notify (device → host).
pub const LAIRD_VSP_NOTIFY: u128 = 0x569a2000_b87f_490c_92cb_11ba5ea5167c;
/// Laird VSP write (host → device).
pub const LAIRD_VSP_WRITE: u128 = 0x569a2001_b87f_490c_92cb_11ba5ea5167c;

/// SIG services the gateway reads.
pub const SIG_HEALTH_SERVICES: [(u16, &str); 5] = [
    (0x1810, "blood pressure"),
    (0x1809, "health thermometer"),
    (0x181D, "weight scale"),
    (0x1822, "pulse oximeter"),
    (0x180D, "heart rate"),
];

/// A device family: one framing and one set of decoders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceFamily {
    /// Checkme Pro (and, by assumption, Checkme Pro X): `A5 5A` live stream + 0xAA file protocol.
    CheckmePro,
    /// O2Ring, Checkme O2, KidsO2…: 0xAA protocol, polled live parameters.
    O2,
    /// ER1 / ER2 / DuoEK / VBeat: 0xA5 protocol, live ECG.
    Er1,
    /// BP2 family: 0xA5 protocol, BP results and ECG.
    Bp2,
    /// Standard Bluetooth health profiles (BP, thermometer, scale, PLX, heart rate).
    SigProfiles,
}

/// A device the gateway cannot place in any family.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct UnknownDevice {
    /// Advertised name, if any.
    pub name: Option<String>,
    /// Advertised service UUIDs.
    pub services: Vec<u128>,
}

impl fmt::Display for UnknownDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown device model: name {:?}, services [",
            self.name.as_deref().unwrap_or("")
        )?;
        for (i, s) in self.services.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", uuid_string(*s))?;
        }
        f.write_str(
            "]; set its family in the gateway config if it is a supported model under another name",
        )
    }
}

/// The usual 8-4-4-4-12 lower-case form.
pub fn uuid_string(u: u128) -> String {
    let h = format!("{u:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

const O2_NAMES: [&str; 12] = [
    "O2",
    "O2Ring",
    "SleepO2",
    "O2BAND",
    "WearO2",
    "SleepU",
    "KidsO2",
    "BabyO2",
    "Oxylink",
    "OxySmart",
    "O2M",
    "Checkme O2",
];
const ER1_NAMES: [&str; 4] = ["ER1", "VBeat", "DuoEK", "ER2"];
const BP2_NAMES: [&str; 8] = [
    "BP2",
    "BP2A",
    "BP2T",
    "BP2W",
    "Checkme BP2",
    "LP-BP2",
    "LP-BP2W",
    "LP-BP2A",
];

/// Places a device in a family from its advertised name and services.
pub fn identify(name: Option<&str>, services: &[u128]) -> Result<DeviceFamily, UnknownDevice> {
    if let Some(name) = name {
        let first_word = name.split([' ', '_', '-']).next().unwrap_or(name);
        let prefixed = |list: &[&str]| {
            list.iter()
                .any(|n| name == *n || first_word == *n || name.starts_with(&format!("{n} ")))
        };
        // Order matters: "Checkme O2" and "Checkme BP2" are not Checkme Pros.
        if prefixed(&BP2_NAMES) {
            return Ok(DeviceFamily::Bp2);
        }
        if prefixed(&O2_NAMES) {
            return Ok(DeviceFamily::O2);
        }
        if prefixed(&ER1_NAMES) {
            return Ok(DeviceFamily::Er1);
        }
        if name.starts_with("Checkme") || name.starts_with("Pulsebit") {
            return Ok(DeviceFamily::CheckmePro);
        }
    }
    if services.contains(&LAIRD_VSP_SERVICE) {
        return Ok(DeviceFamily::CheckmePro);
    }
    if SIG_HEALTH_SERVICES
        .iter()
        .any(|(s, _)| services.contains(&sig_uuid(*s)))
    {
        return Ok(DeviceFamily::SigProfiles);
    }
    Err(UnknownDevice {
        name: name.map(str::to_owned),
        services: services.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_place_devices_in_families() {
        let cases = [
            ("Checkme Pro 1234", DeviceFamily::CheckmePro),
            ("Checkme Pro X", DeviceFamily::CheckmePro),
            ("Checkme O2 0042", DeviceFamily::O2),
            ("Checkme BP2 7", DeviceFamily::Bp2),
            ("O2Ring 1A2B", DeviceFamily::O2),
            ("ER1 0999", DeviceFamily::Er1),
            ("LP-BP2W", DeviceFamily::Bp2),
            ("BP2 0001", DeviceFamily::Bp2),
        ];
        for (name, family) in cases {
            assert_eq!(identify(Some(name), &[]), Ok(family), "{name}");
        }
    }

    #[test]
    fn services_identify_sig_devices_and_laird_checkmes() {
        assert_eq!(
            identify(Some("A&D_UA-651BLE_123"), &[sig_uuid(0x1810)]),
            Ok(DeviceFamily::SigProfiles)
        );
        assert_eq!(
            identify(None, &[LAIRD_VSP_SERVICE]),
            Ok(DeviceFamily::CheckmePro)
        );
        assert_eq!(
            uuid_string(sig_uuid(0x1810)),
            "00001810-0000-1000-8000-00805f9b34fb"
        );
    }

    #[test]
    fn unknown_model_is_reported_with_what_it_advertised() {
        let err = identify(Some("Neighbour TV"), &[sig_uuid(0x180F)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown device model: name \"Neighbour TV\", services [0000180f-0000-1000-8000-00805f9b34fb]; \
             set its family in the gateway config if it is a supported model under another name"
        );
    }
}
