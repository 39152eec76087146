//! Known networks: CIDRs from the config, expanded into the networks the rules compare
//! addresses at (IPv4 by whole octets, IPv6 by whole hextets, `a.b.c` / `2001:db8:0:1` as the
//! rules' SQL spells them). The rules themselves turn addresses into networks in SQL.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// How many compared networks one CIDR may expand into (a /8 at /24 is 65,536).
const MAX_EXPANSION: u32 = 1 << 16;

/// A network as the config writes it: `198.51.100.0/24`, `2001:db8::/48`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub address: IpAddr,
    pub prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{text:?} is not a network (e.g. 198.51.100.0/24, 2001:db8::/48)");
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.trim().parse().map_err(|_| bad())?;
        let most = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.trim().parse::<u8>().map_err(|_| bad())?,
            None => most,
        };
        if prefix > most {
            return Err(bad());
        }
        Ok(Cidr { address, prefix })
    }
}

impl Cidr {
    /// The networks at `v4_bits` / `v6_bits` that this CIDR covers, spelled as the rules'
    /// SQL spells an address's network (`198.51.100`, `2001:db8:1200:0`).
    pub fn compared_networks(&self, v4_bits: u8, v6_bits: u8) -> Result<Vec<String>, String> {
        match self.address {
            IpAddr::V4(address) => self.v4_networks(address, v4_bits),
            IpAddr::V6(address) => self.v6_networks(address, v6_bits),
        }
    }

    fn v4_networks(&self, address: Ipv4Addr, bits: u8) -> Result<Vec<String>, String> {
        let base = u32::from(address) & mask32(self.prefix.min(bits));
        let count = self.expansion(bits)?;
        let octets = usize::from(bits / 8);
        Ok((0..count)
            .map(|step| {
                let network = base + (step << (32 - u32::from(bits)));
                let parts = Ipv4Addr::from(network).octets();
                let shown: Vec<String> = parts[..octets].iter().map(u8::to_string).collect();
                shown.join(".")
            })
            .collect())
    }

    fn v6_networks(&self, address: Ipv6Addr, bits: u8) -> Result<Vec<String>, String> {
        let base = u128::from(address) & mask128(self.prefix.min(bits));
        let count = self.expansion(bits)?;
        let hextets = usize::from(bits / 16);
        Ok((0..count)
            .map(|step| {
                let network = base + (u128::from(step) << (128 - u32::from(bits)));
                let parts = Ipv6Addr::from(network).segments();
                let shown: Vec<String> =
                    parts[..hextets].iter().map(|h| format!("{h:x}")).collect();
                shown.join(":")
            })
            .collect())
    }

    /// How many networks of `bits` this CIDR holds (1 when it is narrower).
    fn expansion(&self, bits: u8) -> Result<u32, String> {
        let extra = u32::from(bits.saturating_sub(self.prefix));
        match 1u64.checked_shl(extra) {
            Some(count) if count <= u64::from(MAX_EXPANSION) => Ok(count as u32),
            _ => Err(format!(
                "{}/{} is wider than the comparison allows ({MAX_EXPANSION} networks of /{bits})",
                self.address, self.prefix
            )),
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn networks(text: &str) -> Vec<String> {
        text.parse::<Cidr>()
            .unwrap()
            .compared_networks(24, 64)
            .unwrap()
    }

    #[test]
    fn cidrs_become_compared_networks() {
        assert_eq!(networks("198.51.100.7/24"), ["198.51.100"]);
        assert_eq!(networks("198.51.100.7"), ["198.51.100"]);
        let wide = networks("10.20.0.0/22");
        assert_eq!(wide, ["10.20.0", "10.20.1", "10.20.2", "10.20.3"]);
        assert_eq!(networks("2001:db8:1200::/64"), ["2001:db8:1200:0"]);
        assert_eq!(networks("2001:db8::/63").len(), 2);
        assert_eq!(networks("10.0.0.0/8").len(), 65_536);
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .unwrap()
                .compared_networks(24, 64)
                .is_err()
        );
        for bad in ["10.0.0.0/33", "x/24", "10.0.0/24"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
