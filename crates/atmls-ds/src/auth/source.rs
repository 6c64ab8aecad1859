//! Where a request came from, as a principal the core can give a share to.

use std::fmt;
use std::net::IpAddr;

/// The source of a request: an opaque 16-byte principal the server derives from the
/// connection (see [`RequestSource::from_ip`]). The core keys per-source shares of shared
/// resources (the replay cache) by it; it never stores or logs it anywhere else.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestSource([u8; 16]);

impl RequestSource {
    /// The source of a connection from `ip`: an IPv4 address as itself (in its IPv6
    /// mapped form), an IPv6 address by its /64 prefix — one subscriber line usually
    /// holds a whole /64, so counting single IPv6 addresses would give one attacker
    /// 2^64 shares.
    pub fn from_ip(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(v4.to_ipv6_mapped().octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(v4.to_ipv6_mapped().octets()),
                None => {
                    let mut b = v6.octets();
                    b[8..].fill(0);
                    Self(b)
                }
            },
        }
    }

    /// A source from raw bytes (tests, or a server with its own notion of a principal).
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for RequestSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the address itself.
        f.write_str("RequestSource(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_counted_by_its_64_prefix() {
        let a = RequestSource::from_ip("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = RequestSource::from_ip("2001:db8:1:2:bbbb::2".parse().unwrap());
        let c = RequestSource::from_ip("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        let v4 = RequestSource::from_ip("192.0.2.1".parse().unwrap());
        let mapped = RequestSource::from_ip("::ffff:192.0.2.1".parse().unwrap());
        assert_eq!(v4, mapped);
        assert_ne!(v4, RequestSource::from_ip("192.0.2.2".parse().unwrap()));
    }
}
