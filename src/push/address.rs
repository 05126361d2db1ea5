//! Which addresses the server may send a push to.
//!
//! A push endpoint is a URL a client chose, so a hostile client could name
//! the server's own loopback, the LAN behind it, or a cloud metadata
//! service, and make the server send requests there (server-side request
//! forgery). Pushes therefore go only to public unicast addresses, checked
//! on the addresses a name resolves to, which are the only ones the HTTP
//! client is given to connect to: a name that resolves to 127.0.0.1 is
//! refused like 127.0.0.1 itself.
//!
//! "Public" follows the IANA special-purpose address registries: anything
//! they reserve (private, shared, loopback, link-local, documentation,
//! benchmarking, multicast, ...) is refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether a push may be sent to `address`.
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// IPv4 blocks the registry reserves, as (first octets, prefix length).
const RESERVED_V4: &[([u8; 4], u8)] = &[
    ([0, 0, 0, 0], 8),       // "this network"
    ([10, 0, 0, 0], 8),      // private
    ([100, 64, 0, 0], 10),   // shared address space (carrier NAT)
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local (cloud metadata services)
    ([172, 16, 0, 0], 12),   // private
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // documentation
    ([192, 88, 99, 0], 24),  // 6to4 relay anycast
    ([192, 168, 0, 0], 16),  // private
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation
    ([203, 0, 113, 0], 24),  // documentation
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, and the broadcast address
];

fn is_public_v4(address: Ipv4Addr) -> bool {
    let bits = u32::from(address);
    !RESERVED_V4.iter().any(|(block, length)| {
        let mask = u32::MAX << (32 - u32::from(*length));
        bits & mask == u32::from_be_bytes(*block)
    })
}

/// IPv6 blocks the registry reserves, as (first segments, prefix length).
const RESERVED_V6: &[([u16; 8], u8)] = &[
    ([0, 0, 0, 0, 0, 0, 0, 0], 96), // unspecified, loopback, IPv4-compatible
    ([0, 0, 0, 0, 0, 0xffff, 0, 0], 96), // IPv4-mapped (checked as IPv4 below)
    ([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96), // IPv4/IPv6 translation
    ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), // local translation
    ([0x100, 0, 0, 0, 0, 0, 0, 0], 64), // discard only
    ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), // IETF protocol assignments
    ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation
    ([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), // 6to4
    ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), // documentation
    ([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16), // segment routing
    ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), // unique local
    ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), // link-local
    ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), // site-local (deprecated)
    ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), // multicast
];

fn is_public_v6(address: Ipv6Addr) -> bool {
    if let Some(v4) = address.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let bits = u128::from(address);
    !RESERVED_V6.iter().any(|(block, length)| {
        let mask = u128::MAX << (128 - u32::from(*length));
        bits & mask == u128::from(Ipv6Addr::from(*block))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_refused_and_public_ones_pass() {
        let refused = [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
            "2002:7f00:1::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
        ];
        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "::ffff:8.8.8.8",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
        ];
        for (addresses, expected) in [(&refused[..], false), (&public[..], true)] {
            for address in addresses {
                let parsed: IpAddr = address.parse().expect(address);
                assert_eq!(is_public(parsed), expected, "{address}");
            }
        }
    }
}
