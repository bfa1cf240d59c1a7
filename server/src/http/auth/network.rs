//! Which client addresses count as "inside a clinic": configured CIDR ranges.
//! Outside them a TOTP second factor is required (MHLW guideline 6.0, multi-factor
//! authentication for access to medical information systems).

use std::net::IpAddr;

use ipnet::IpNet;

/// The clinics' own networks.
#[derive(Debug, Clone, Default)]
pub struct ClinicNetworks {
    ranges: Vec<IpNet>,
}

impl ClinicNetworks {
    /// Networks from CIDR ranges (e.g. `192.168.10.0/24`).
    pub fn new(ranges: Vec<IpNet>) -> Self {
        Self { ranges }
    }

    /// Is `address` inside one of the clinic networks? IPv4-mapped IPv6
    /// addresses (`::ffff:a.b.c.d`, what a dual-stack listener reports) are
    /// compared as the IPv4 address they carry.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        self.ranges.iter().any(|net| net.contains(&address))
    }

    /// Does a login from `address` need the second factor?
    pub fn requires_second_factor(&self, address: IpAddr) -> bool {
        !self.contains(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_clinic_range_needs_no_second_factor_outside_does() {
        let nets = ClinicNetworks::new(vec![
            "192.168.10.0/24".parse().unwrap(),
            "fd00::/8".parse().unwrap(),
        ]);
        assert!(!nets.requires_second_factor("192.168.10.7".parse().unwrap()));
        assert!(!nets.requires_second_factor("::ffff:192.168.10.7".parse().unwrap()));
        assert!(!nets.requires_second_factor("fd12::1".parse().unwrap()));
        assert!(nets.requires_second_factor("192.168.11.7".parse().unwrap()));
        assert!(nets.requires_second_factor("203.0.113.5".parse().unwrap()));
    }

    #[test]
    fn no_configured_networks_means_everyone_needs_second_factor() {
        assert!(ClinicNetworks::default().requires_second_factor("127.0.0.1".parse().unwrap()));
    }
}
