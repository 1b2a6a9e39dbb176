//! Address ranges in a list line: `icmp://10.50.1.0/24`, `tcp://10.50.1.0/24:22`,
//! `icmp://10.50.1.1-254` and IPv6 prefixes (`icmp://[fd00::]/120`), each standing for one
//! target per address.
//!
//! A range is only ever walked, never collected: [`Range::targets`] yields one target at a
//! time, so a /8 costs the reader no more memory than a single line.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::target::Target;

/// Most addresses one range may stand for: a /8 of IPv4, a /104 of IPv6.
pub(crate) const MAX_ADDRESSES: u128 = 1 << 24;

/// A range of addresses and the probe each of them gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    /// `None` for `icmp://`, the port for `tcp://`.
    port: Option<u16>,
    /// First address, as a number.
    first: u128,
    /// Last address, as a number (inclusive).
    last: u128,
    /// Whether the numbers are IPv6 addresses.
    v6: bool,
}

impl Range {
    /// How many targets the range stands for.
    pub(crate) fn len(&self) -> u128 {
        self.last - self.first + 1
    }

    /// Each address's own target with its text (`tcp://10.50.1.7:22`), in address order.
    pub(crate) fn targets(&self) -> impl Iterator<Item = (String, Target)> + '_ {
        (self.first..=self.last).map(move |number| {
            let address = if self.v6 {
                IpAddr::V6(Ipv6Addr::from(number))
            } else {
                // The range was built from IPv4 addresses, so every number fits.
                IpAddr::V4(Ipv4Addr::from(u32::try_from(number).unwrap_or(u32::MAX)))
            };
            let host = address.to_string();
            let shown = match address {
                IpAddr::V4(_) => host.clone(),
                IpAddr::V6(_) => format!("[{host}]"),
            };
            match self.port {
                Some(port) => (format!("tcp://{shown}:{port}"), Target::Tcp { host, port }),
                None => (format!("icmp://{shown}"), Target::Icmp { host }),
            }
        })
    }
}

/// Reads `text` as a range: `None` when it is not written as one (a plain target), else
/// the range or why it cannot be used.
pub(crate) fn parse_range(text: &str) -> Option<Result<Range, String>> {
    let (scheme, rest) = text.split_once("://")?;
    let tcp = if scheme.eq_ignore_ascii_case("tcp") {
        true
    } else if scheme.eq_ignore_ascii_case("icmp") {
        false
    } else {
        return None;
    };
    let (hosts, port) = if tcp {
        let (hosts, port) = rest.rsplit_once(':')?;
        (hosts, Some(port))
    } else {
        (rest.strip_suffix('/').unwrap_or(rest), None)
    };
    let range = if let Some(v6) = hosts.strip_prefix('[') {
        let (address, length) = v6.split_once(']')?;
        let length = length.strip_prefix('/')?;
        let address: Ipv6Addr = address.parse().ok()?;
        prefix(u128::from(address), length, 128)
    } else if let Some((address, length)) = hosts.split_once('/') {
        let address: Ipv4Addr = address.parse().ok()?;
        prefix(u128::from(u32::from(address)), length, 32)
    } else {
        last_octet(hosts)?
    };
    Some(range.and_then(|(first, last, v6)| {
        let port = match port {
            None => None,
            Some(port) => Some(
                port.parse::<u16>()
                    .ok()
                    .filter(|&port| port > 0)
                    .ok_or_else(|| format!("'{port}' is not a port (1 to 65535)"))?,
            ),
        };
        let range = Range {
            port,
            first,
            last,
            v6,
        };
        if range.len() > MAX_ADDRESSES {
            return Err(format!(
                "the range holds {} addresses, more than the {MAX_ADDRESSES} (2^24) one line may stand for",
                range.len()
            ));
        }
        Ok(range)
    }))
}

/// The addresses of `address/length` among `bits`-bit addresses: IPv4 prefixes up to /30
/// leave out their network and broadcast addresses, as `fping -g` does.
fn prefix(address: u128, length: &str, bits: u32) -> Result<(u128, u128, bool), String> {
    let v6 = bits == 128;
    let length: u32 = length
        .parse()
        .ok()
        .filter(|&length| length <= bits)
        .ok_or_else(|| format!("'/{length}' is not a prefix length (0 to {bits})"))?;
    let host_bits = bits - length;
    if host_bits > 24 {
        let size = match 1u128.checked_shl(host_bits) {
            Some(size) if host_bits < 128 => size.to_string(),
            _ => "2^128".to_owned(),
        };
        return Err(format!(
            "the range holds {size} addresses, more than the {MAX_ADDRESSES} (2^24) one line may stand for"
        ));
    }
    let size = 1u128 << host_bits;
    let first = address & !(size - 1);
    let last = first + size - 1;
    if !v6 && host_bits >= 2 {
        return Ok((first + 1, last - 1, v6));
    }
    Ok((first, last, v6))
}

/// `A.B.C.X-Y`: the addresses A.B.C.X to A.B.C.Y; `None` when `hosts` is not written so.
fn last_octet(hosts: &str) -> Option<Result<(u128, u128, bool), String>> {
    let (start, end) = hosts.rsplit_once('-')?;
    let start: Ipv4Addr = start.parse().ok()?;
    if end.is_empty() || !end.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let first = u32::from(start);
    let [a, b, c, x] = start.octets();
    Some(match end.parse::<u8>() {
        Ok(y) if y >= x => Ok((
            u128::from(first),
            u128::from(u32::from(Ipv4Addr::new(a, b, c, y))),
            false,
        )),
        _ => Err(format!(
            "'{x}-{end}' is not a range of last octets (from {x} up to 255)"
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<String> {
        let range = parse_range(line).expect("a range").expect("a valid range");
        range.targets().map(|(text, _)| text).collect()
    }

    #[test]
    fn ipv4_prefixes_leave_out_network_and_broadcast_up_to_30() {
        assert_eq!(
            texts("icmp://127.0.0.0/30"),
            ["icmp://127.0.0.1", "icmp://127.0.0.2"]
        );
        assert_eq!(
            texts("icmp://127.0.0.0/31"),
            ["icmp://127.0.0.0", "icmp://127.0.0.1"]
        );
        assert_eq!(texts("icmp://127.0.0.9/32"), ["icmp://127.0.0.9"]);
        let slash24 = texts("tcp://10.50.1.77/24:22");
        assert_eq!(slash24.len(), 254);
        assert_eq!(slash24[0], "tcp://10.50.1.1:22");
        assert_eq!(slash24[253], "tcp://10.50.1.254:22");
    }

    #[test]
    fn last_octet_ranges_are_inclusive() {
        assert_eq!(
            texts("tcp://127.0.0.1-3:8080"),
            [
                "tcp://127.0.0.1:8080",
                "tcp://127.0.0.2:8080",
                "tcp://127.0.0.3:8080"
            ]
        );
        assert_eq!(texts("icmp://10.50.1.1-254").len(), 254);
        let bad = parse_range("icmp://10.0.0.9-3").unwrap().unwrap_err();
        assert!(bad.contains("'9-3'"), "{bad}");
        assert!(parse_range("icmp://10.0.0.9-300").unwrap().is_err());
    }

    #[test]
    fn ipv6_prefixes_keep_every_address() {
        assert_eq!(texts("icmp://[::1]/128"), ["icmp://[::1]"]);
        let four = texts("tcp://[fd00::5]/126:22");
        assert_eq!(four[0], "tcp://[fd00::4]:22");
        assert_eq!(four.len(), 4);
        let targets: Vec<_> = parse_range("icmp://[fd00::]/120")
            .unwrap()
            .unwrap()
            .targets()
            .map(|(_, target)| target)
            .collect();
        assert_eq!(targets.len(), 256);
        assert_eq!(
            targets[255],
            Target::Icmp {
                host: "fd00::ff".into()
            }
        );
    }

    #[test]
    fn ranges_over_2_pow_24_are_refused_with_their_size() {
        assert_eq!(
            parse_range("icmp://10.0.0.0/8").unwrap().unwrap().len(),
            (1 << 24) - 2
        );
        let err = parse_range("icmp://10.0.0.0/7").unwrap().unwrap_err();
        assert!(err.contains("33554432 addresses"), "{err}");
        let err = parse_range("icmp://[::]/0").unwrap().unwrap_err();
        assert!(err.contains("2^128 addresses"), "{err}");
        let err = parse_range("tcp://[fd00::]/64:22").unwrap().unwrap_err();
        assert!(err.contains("18446744073709551616 addresses"), "{err}");
    }

    #[test]
    fn plain_targets_and_other_schemes_are_not_ranges() {
        for text in [
            "icmp://10.0.0.1",
            "tcp://10.0.0.1:22",
            "tcp://my-host-1:22",
            "icmp://[::1]",
            "http://10.0.0.0/24",
            "https://10.0.0.1-9/",
            "icmp://a-b",
        ] {
            assert_eq!(parse_range(text), None, "{text}");
        }
        assert!(parse_range("icmp://10.0.0.0/33").unwrap().is_err());
        assert!(parse_range("tcp://10.0.0.0/24:0").unwrap().is_err());
        assert!(parse_range("tcp://10.0.0.0/24:x").unwrap().is_err());
    }
}
