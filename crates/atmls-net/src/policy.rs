//! Which IP addresses an outbound request may connect to. Pure: no I/O, no DNS.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A class of addresses that is not the public internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressClass {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), IPv6 unique local `fc00::/7`,
    /// deprecated site-local `fec0::/10`, local-use NAT64 `64:ff9b:1::/48`.
    Private,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// Carrier-grade NAT, `100.64.0.0/10`.
    SharedAddressSpace,
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Cloud instance metadata and host services: `169.254.169.254`, `fd00:ec2::254`,
    /// `168.63.129.16`, `100.100.100.200`.
    Metadata,
    /// Anything else not globally routable: `192.0.0/24`, `198.18/15`, `240/4`,
    /// `100::/64`, `2001::/23`, IPv4-compatible `::/96`, and IPv6 outside `2000::/3`.
    Reserved,
}

impl AddressClass {
    /// The class of `ip`, or `None` for a public (globally routable) address. IPv6 forms
    /// that embed an IPv4 address (mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96`, 6to4
    /// `2002::/16`) take the class of the address they embed.
    pub fn of(ip: IpAddr) -> Option<AddressClass> {
        match ip {
            IpAddr::V4(v4) => v4_class(v4),
            IpAddr::V6(v6) => v6_class(v6),
        }
    }

    /// A short name for logs (`loopback`, `private`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local",
            AddressClass::SharedAddressSpace => "shared-address-space",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Documentation => "documentation",
            AddressClass::Metadata => "metadata",
            AddressClass::Reserved => "reserved",
        }
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<AddressClass> {
    let [a, b, c, _] = ip.octets();
    // Metadata first: it sits inside link-local and shared address space, and Azure's
    // host service is a public address.
    const METADATA: [[u8; 4]; 3] = [
        [169, 254, 169, 254],
        [168, 63, 129, 16],
        [100, 100, 100, 200],
    ];
    let class = if METADATA.contains(&ip.octets()) {
        AddressClass::Metadata
    } else if ip == Ipv4Addr::BROADCAST {
        AddressClass::Broadcast
    } else if a == 0 {
        AddressClass::Unspecified
    } else if a == 127 {
        AddressClass::Loopback
    } else if a == 10 || (a == 172 && (16..32).contains(&b)) || (a == 192 && b == 168) {
        AddressClass::Private
    } else if a == 169 && b == 254 {
        AddressClass::LinkLocal
    } else if a == 100 && (64..128).contains(&b) {
        AddressClass::SharedAddressSpace
    } else if (a, b, c) == (192, 0, 2) || (a, b, c) == (198, 51, 100) || (a, b, c) == (203, 0, 113)
    {
        AddressClass::Documentation
    } else if (224..240).contains(&a) {
        AddressClass::Multicast
    } else if (a, b, c) == (192, 0, 0) || (a == 198 && (b == 18 || b == 19)) || a >= 240 {
        AddressClass::Reserved
    } else {
        return None;
    };
    Some(class)
}

fn v6_class(ip: Ipv6Addr) -> Option<AddressClass> {
    let s = ip.segments();
    let embedded_v4 =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        return Some(AddressClass::Metadata);
    }
    if ip.is_unspecified() {
        return Some(AddressClass::Unspecified);
    }
    if ip.is_loopback() {
        return Some(AddressClass::Loopback);
    }
    // ::ffff:a.b.c.d (IPv4-mapped): the IPv4 address is what is connected to.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_class(v4);
    }
    // 64:ff9b::/96, the NAT64 well-known prefix, reaches the embedded IPv4 address.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_class(embedded_v4(s[6], s[7]));
    }
    // 2002::/16 (6to4) routes to the IPv4 address in bits 16..48.
    if s[0] == 0x2002 {
        return v4_class(embedded_v4(s[1], s[2]));
    }
    let class = if s[..6] == [0; 6] {
        // IPv4-compatible ::a.b.c.d (deprecated).
        AddressClass::Reserved
    } else if s[0] & 0xff00 == 0xff00 {
        AddressClass::Multicast
    } else if s[0] & 0xffc0 == 0xfe80 {
        AddressClass::LinkLocal
    } else if s[0] & 0xfe00 == 0xfc00 || s[0] & 0xffc0 == 0xfec0 || s[..3] == [0x64, 0xff9b, 1] {
        AddressClass::Private
    } else if (s[0], s[1]) == (0x2001, 0x0db8) || s[0] & 0xfff0 == 0x3ff0 {
        AddressClass::Documentation
    } else if s[0] & 0xe000 != 0x2000 || (s[0] == 0x2001 && s[1] < 0x0200) {
        // Outside global unicast 2000::/3, or IETF protocol assignments 2001::/23
        // (Teredo 2001::/32 among them, which embeds an obfuscated IPv4 address).
        AddressClass::Reserved
    } else {
        return None;
    };
    Some(class)
}

/// Which destinations outbound requests may connect to: public addresses always;
/// loopback only when the development allowance is on; never private, link-local,
/// shared, multicast, broadcast, documentation, reserved or metadata addresses.
///
/// ```
/// use std::net::IpAddr;
/// use atmls_net::{AddressClass, AddressPolicy};
///
/// let ip = |s: &str| s.parse::<IpAddr>().unwrap();
/// let strict = AddressPolicy::public_only();
/// assert_eq!(strict.check(ip("93.184.215.14")), Ok(()));
/// assert_eq!(strict.check(ip("127.0.0.1")), Err(AddressClass::Loopback));
/// assert_eq!(strict.check(ip("::ffff:10.1.2.3")), Err(AddressClass::Private));
/// assert_eq!(strict.check(ip("169.254.169.254")), Err(AddressClass::Metadata));
///
/// let dev = AddressPolicy::development();
/// assert_eq!(dev.check(ip("127.0.0.1")), Ok(()));
/// assert_eq!(dev.check(ip("192.168.1.1")), Err(AddressClass::Private));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allow_loopback: bool,
}

impl AddressPolicy {
    /// Public addresses only (the default).
    pub const fn public_only() -> Self {
        AddressPolicy {
            allow_loopback: false,
        }
    }

    /// Public addresses and loopback: the development allowance, for a stack whose
    /// services all run on this machine (the embedded dev server, tests).
    pub const fn development() -> Self {
        AddressPolicy {
            allow_loopback: true,
        }
    }

    /// This policy with the loopback allowance set to `allow`.
    #[must_use]
    pub const fn with_loopback(mut self, allow: bool) -> Self {
        self.allow_loopback = allow;
        self
    }

    /// Whether loopback destinations are allowed.
    pub const fn allows_loopback(&self) -> bool {
        self.allow_loopback
    }

    /// `Ok` if `ip` may be connected to, else the class that refuses it.
    pub fn check(&self, ip: IpAddr) -> Result<(), AddressClass> {
        match AddressClass::of(ip) {
            None => Ok(()),
            Some(AddressClass::Loopback) if self.allow_loopback => Ok(()),
            Some(class) => Err(class),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<AddressClass> {
        AddressClass::of(s.parse().unwrap())
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.1.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001:82a::200e",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }

    #[test]
    fn every_special_range_is_classified() {
        use AddressClass::*;
        let cases = [
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("::1", Loopback),
            ("::ffff:127.0.0.1", Loopback),
            ("10.0.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.0.1", Private),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fec0::1", Private),
            ("64:ff9b:1::a00:1", Private),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:192.168.1.1", Private),
            ("64:ff9b::a00:1", Private),
            ("2002:c0a8:0101::1", Private),
            ("169.254.1.1", LinkLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("::ffff:169.254.0.1", LinkLocal),
            ("100.64.0.1", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("::", Unspecified),
            ("::ffff:0.0.0.0", Unspecified),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("ff02::1", Multicast),
            ("255.255.255.255", Broadcast),
            ("192.0.2.1", Documentation),
            ("198.51.100.1", Documentation),
            ("203.0.113.1", Documentation),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("169.254.169.254", Metadata),
            ("::ffff:169.254.169.254", Metadata),
            ("64:ff9b::a9fe:a9fe", Metadata),
            ("fd00:ec2::254", Metadata),
            ("168.63.129.16", Metadata),
            ("100.100.100.200", Metadata),
            ("192.0.0.1", Reserved),
            ("198.18.0.1", Reserved),
            ("198.19.255.255", Reserved),
            ("240.0.0.1", Reserved),
            ("::7f00:1", Reserved),
            ("::a00:1", Reserved),
            ("100::1", Reserved),
            ("2001::1", Reserved),
            ("2001:1ff::1", Reserved),
            ("1234::1", Reserved),
            ("4000::1", Reserved),
        ];
        for (ip, expected) in cases {
            assert_eq!(class(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn development_allows_loopback_only() {
        let dev = AddressPolicy::development();
        for ip in ["127.0.0.1", "::1", "::ffff:127.0.0.2"] {
            assert_eq!(dev.check(ip.parse().unwrap()), Ok(()), "{ip}");
            assert_eq!(
                AddressPolicy::public_only().check(ip.parse().unwrap()),
                Err(AddressClass::Loopback)
            );
        }
        for ip in [
            "10.0.0.1",
            "169.254.169.254",
            "fd00:ec2::254",
            "0.0.0.0",
            "::",
        ] {
            assert!(dev.check(ip.parse().unwrap()).is_err(), "{ip}");
        }
        assert_eq!(AddressPolicy::default(), AddressPolicy::public_only());
        assert!(
            AddressPolicy::public_only()
                .with_loopback(true)
                .allows_loopback()
        );
    }
}
