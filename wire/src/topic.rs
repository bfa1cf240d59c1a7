//! The topic tree.
//!
//! ```text
//! mimamori/v1/gw/{gateway}/up/obs        gateway → server   observation batches      QoS 1
//! mimamori/v1/gw/{gateway}/up/ecg        gateway → server   ECG chunks               QoS 1
//! mimamori/v1/gw/{gateway}/up/status     gateway → server   device status            QoS 1
//! mimamori/v1/gw/{gateway}/up/presence   gateway → server   presence, retained, Last Will
//! mimamori/v1/gw/{gateway}/down/ack      server → gateway   end-to-end ack, retained QoS 1
//! mimamori/v1/gw/{gateway}/down/config   server → gateway   device allow-list, retained QoS 1
//! ```
//!
//! The gateway's MQTT user name is its id, so the broker ACL `pattern readwrite mimamori/v1/gw/%u/#`
//! confines each gateway to its own namespace. The server subscribes to [`UPLINK_FILTER`] and
//! takes the gateway id from the topic, never from a payload.

use std::fmt;

use crate::{GatewayId, WireError};

/// Root of every topic of this contract version.
pub const ROOT: &str = "mimamori/v1/gw";
/// What the server subscribes to: every gateway's uplink.
pub const UPLINK_FILTER: &str = "mimamori/v1/gw/+/up/#";
/// The ACL pattern (Mosquitto syntax) that confines a gateway logged in as `%u` to its namespace.
pub const GATEWAY_ACL_PATTERN: &str = "mimamori/v1/gw/%u/#";

/// What a topic carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    Observations,
    Ecg,
    DeviceStatus,
    Presence,
    Ack,
    Config,
}

impl Channel {
    /// The last two levels of the topic.
    pub const fn suffix(self) -> &'static str {
        match self {
            Self::Observations => "up/obs",
            Self::Ecg => "up/ecg",
            Self::DeviceStatus => "up/status",
            Self::Presence => "up/presence",
            Self::Ack => "down/ack",
            Self::Config => "down/config",
        }
    }

    /// Whether the gateway publishes on it (as opposed to the server).
    pub const fn is_uplink(self) -> bool {
        !matches!(self, Self::Ack | Self::Config)
    }

    const ALL: [Self; 6] = [
        Self::Observations,
        Self::Ecg,
        Self::DeviceStatus,
        Self::Presence,
        Self::Ack,
        Self::Config,
    ];
}

/// A parsed topic: whose namespace and which channel.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Topic {
    pub gateway: GatewayId,
    pub channel: Channel,
}

impl Topic {
    pub fn new(gateway: GatewayId, channel: Channel) -> Self {
        Self { gateway, channel }
    }

    /// Parses a topic name of this contract; anything else is [`WireError::UnknownTopic`].
    pub fn parse(name: &str) -> Result<Self, WireError> {
        let unknown = || WireError::UnknownTopic(name.to_owned());
        let rest = name
            .strip_prefix(ROOT)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(unknown)?;
        let (gateway, suffix) = rest.split_once('/').ok_or_else(unknown)?;
        let channel = Channel::ALL
            .into_iter()
            .find(|c| c.suffix() == suffix)
            .ok_or_else(unknown)?;
        Ok(Self {
            gateway: GatewayId::new(gateway)?,
            channel,
        })
    }

    /// The filter a gateway subscribes to for what the server sends it.
    pub fn downlink_filter(gateway: &GatewayId) -> String {
        format!("{ROOT}/{gateway}/down/#")
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ROOT}/{}/{}", self.gateway, self.channel.suffix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_round_trips() {
        let gw = GatewayId::new("home-0001").unwrap();
        for channel in Channel::ALL {
            let topic = Topic::new(gw.clone(), channel);
            assert_eq!(Topic::parse(&topic.to_string()).unwrap(), topic);
        }
    }

    #[test]
    fn rejects_foreign_and_malformed_topics() {
        for bad in [
            "",
            "mimamori/v1/gw",
            "mimamori/v1/gw/home-1",
            "mimamori/v1/gw/home-1/up",
            "mimamori/v1/gw/home-1/up/obs/extra",
            "mimamori/v2/gw/home-1/up/obs",
            "other/v1/gw/home-1/up/obs",
        ] {
            assert!(
                matches!(Topic::parse(bad), Err(WireError::UnknownTopic(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            Topic::parse("mimamori/v1/gw/Home+1/up/obs"),
            Err(WireError::InvalidGatewayId(_))
        ));
    }

    #[test]
    fn gateway_ids_cannot_carry_wildcards_or_levels() {
        for bad in ["", "a/b", "a+b", "a#", "UPPER", &"x".repeat(65)] {
            assert!(GatewayId::new(bad).is_err(), "{bad}");
        }
        assert!(GatewayId::new("gw_01-a").is_ok());
    }

    #[test]
    fn downlink_filter_stays_inside_the_namespace() {
        let gw = GatewayId::new("home-7").unwrap();
        assert_eq!(Topic::downlink_filter(&gw), "mimamori/v1/gw/home-7/down/#");
        let ack = Topic::new(gw.clone(), Channel::Ack).to_string();
        assert!(
            ack.starts_with(
                &Topic::downlink_filter(&gw)
                    .trim_end_matches('#')
                    .to_string()
            )
        );
    }
}
