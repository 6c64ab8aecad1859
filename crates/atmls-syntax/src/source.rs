//! The principal a network address counts as, for per-source limits.

use std::net::{IpAddr, Ipv6Addr};

/// The key a source address is counted under: an IPv4 address (IPv4-mapped IPv6
/// included), or the /64 network of an IPv6 address (one host's usual allocation), so
/// that one subscriber line cannot take 2^64 shares.
///
/// ```
/// use std::net::IpAddr;
/// use atmls_syntax::source_key;
///
/// let a: IpAddr = "2001:db8::1".parse().unwrap();
/// let b: IpAddr = "2001:db8::2".parse().unwrap();
/// assert_eq!(source_key(a), source_key(b));
/// let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
/// assert_eq!(source_key(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
/// ```
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_64s_are_other_sources() {
        let a: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        let b: IpAddr = "2001:db8:0:2::1".parse().unwrap();
        assert_ne!(source_key(a), source_key(b));
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(source_key(v4), v4);
    }
}
