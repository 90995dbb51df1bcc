//! VRRP advertisements: version 2 (RFC 3768, IPv4 only, with the 8-byte
//! authentication field) and version 3 (RFC 5798, IPv4 and IPv6).
//!
//! ```text
//!  0      version|type   1 VRID   2 priority   3 count of addresses
//!  4  v2: auth type, advert interval (s)  |  v3: 4 bits reserved, 12 bits
//!         max advert interval (centiseconds)
//!  6      checksum
//!  8      addresses (4 or 16 bytes each), then v2's 8 bytes of auth data
//! ```
//!
//! The v2 checksum covers the VRRP message only; the v3 one also covers
//! the IP pseudo-header (keepalived does so for IPv4 too, as RFC 5798
//! says, unless told to be compatible with its old unicast checksum).

use crate::{be16, checksum, ipv6, Error, Result};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const PROTOCOL: u8 = 112;
pub const HEADER_LEN: usize = 8;
pub const AUTH_LEN: usize = 8;
pub const TYPE_ADVERTISEMENT: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn addr_len(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }
}

/// A view of a VRRP message. `new_checked` guarantees the buffer holds the
/// header, the address list its count announces and (v2) the auth data.
#[derive(Debug, Clone)]
pub struct VrrpPacket<T: AsRef<[u8]>> {
    buffer: T,
    family: Family,
}

impl<T: AsRef<[u8]>> VrrpPacket<T> {
    pub fn new_checked(buffer: T, family: Family) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let p = VrrpPacket { buffer, family };
        if p.expected_len() > p.buffer.as_ref().len() {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    /// The length the header says the message has.
    pub fn expected_len(&self) -> usize {
        let b = self.buffer.as_ref();
        let auth = if b[0] >> 4 == 2 { AUTH_LEN } else { 0 };
        HEADER_LEN + usize::from(b[3]) * self.family.addr_len() + auth
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }
    pub fn kind(&self) -> u8 {
        self.buffer.as_ref()[0] & 0x0f
    }
    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[1]
    }
    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[2]
    }
    pub fn count(&self) -> u8 {
        self.buffer.as_ref()[3]
    }
    /// v2 only.
    pub fn auth_type(&self) -> u8 {
        self.buffer.as_ref()[4]
    }
    /// v2: seconds; v3: centiseconds (12 bits).
    pub fn advert_int(&self) -> u16 {
        let b = self.buffer.as_ref();
        if self.version() == 2 {
            u16::from(b[5])
        } else {
            be16(b, 4) & 0x0fff
        }
    }
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }

    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let b = self.buffer.as_ref();
        let n = self.family.addr_len();
        (0..usize::from(self.count())).map(move |i| {
            let a = &b[HEADER_LEN + i * n..HEADER_LEN + (i + 1) * n];
            match self.family {
                Family::V4 => IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
                Family::V6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(a).unwrap())),
            }
        })
    }

    /// v2's authentication data (8 bytes).
    pub fn auth_data(&self) -> Option<&[u8]> {
        let start = self.expected_len().checked_sub(AUTH_LEN)?;
        (self.version() == 2).then(|| &self.buffer.as_ref()[start..start + AUTH_LEN])
    }

    /// The message (without trailing bytes beyond what the header says).
    pub fn message(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.expected_len()]
    }

    /// Checks the checksum; `pseudo` gives the IP source and destination
    /// for a v3 message (None: v2, or a v3 checksum without pseudo-header).
    pub fn verify_checksum(&self, pseudo: Option<(IpAddr, IpAddr)>) -> bool {
        checksum_of(self.message(), pseudo) == 0
    }
}

#[cfg(test)]
mod fill {
    use super::*;

    #[test]
    fn a_filled_checksum_verifies() {
        let repr = VrrpRepr {
            version: 2,
            vrid: 51,
            priority: 100,
            advert_int: 1,
            addresses: vec!["10.0.0.100".parse().unwrap()],
            auth: Some((1, *b"secret\0\0")),
        };
        let mut b = repr.to_bytes(None);
        b[6] ^= 0xff;
        let mut p = VrrpPacket::new_checked(&mut b[..], Family::V4).unwrap();
        p.fill_checksum(None);
        assert!(p.verify_checksum(None));
        b[9] ^= 1;
        assert!(!VrrpPacket::new_checked(&b[..], Family::V4).unwrap().verify_checksum(None));
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VrrpPacket<T> {
    /// Sets the checksum so that the message verifies (`pseudo` as for
    /// [`VrrpPacket::verify_checksum`]).
    pub fn fill_checksum(&mut self, pseudo: Option<(IpAddr, IpAddr)>) {
        let len = self.expected_len();
        let b = self.buffer.as_mut();
        b[6..8].copy_from_slice(&[0, 0]);
        let c = checksum_of(&b[..len], pseudo);
        b[6..8].copy_from_slice(&c.to_be_bytes());
    }
}

/// The sum to put in (or, over a filled message, 0 when valid).
fn checksum_of(msg: &[u8], pseudo: Option<(IpAddr, IpAddr)>) -> u16 {
    let len = msg.len();
    let ph = match pseudo {
        Some((IpAddr::V4(s), IpAddr::V4(d))) => checksum::pseudo_header_v4(s, d, PROTOCOL, len as u16),
        Some((IpAddr::V6(s), IpAddr::V6(d))) => ipv6::pseudo_header(s, d, PROTOCOL, len as u32),
        _ => 0,
    };
    !checksum::fold(checksum::sum(msg) + u32::from(checksum::fold(ph)))
}

/// An advertisement to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpRepr {
    pub version: u8,
    pub vrid: u8,
    pub priority: u8,
    /// v2: seconds; v3: centiseconds.
    pub advert_int: u16,
    pub addresses: Vec<IpAddr>,
    /// v2: the auth type and its 8 bytes of data.
    pub auth: Option<(u8, [u8; AUTH_LEN])>,
}

impl VrrpRepr {
    pub fn buffer_len(&self) -> usize {
        let n = self.addresses.first().map_or(4, |a| if a.is_ipv4() { 4 } else { 16 });
        HEADER_LEN + self.addresses.len() * n + if self.version == 2 { AUTH_LEN } else { 0 }
    }

    /// Writes the message into `buf` (at least `buffer_len()` long) with
    /// its checksum; `pseudo` as for [`VrrpPacket::verify_checksum`].
    pub fn emit(&self, buf: &mut [u8], pseudo: Option<(IpAddr, IpAddr)>) {
        let len = self.buffer_len();
        let b = &mut buf[..len];
        b.fill(0);
        b[0] = (self.version << 4) | TYPE_ADVERTISEMENT;
        b[1] = self.vrid;
        b[2] = self.priority;
        b[3] = self.addresses.len() as u8;
        if self.version == 2 {
            b[4] = self.auth.map_or(0, |a| a.0);
            b[5] = self.advert_int.min(255) as u8;
        } else {
            b[4..6].copy_from_slice(&(self.advert_int & 0x0fff).to_be_bytes());
        }
        let mut at = HEADER_LEN;
        for a in &self.addresses {
            match a {
                IpAddr::V4(v) => {
                    b[at..at + 4].copy_from_slice(&v.octets());
                    at += 4;
                }
                IpAddr::V6(v) => {
                    b[at..at + 16].copy_from_slice(&v.octets());
                    at += 16;
                }
            }
        }
        if self.version == 2 {
            if let Some((_, data)) = self.auth {
                b[at..at + AUTH_LEN].copy_from_slice(&data);
            }
        }
        let c = checksum_of(b, if self.version == 3 { pseudo } else { None });
        b[6..8].copy_from_slice(&c.to_be_bytes());
    }

    pub fn to_bytes(&self, pseudo: Option<(IpAddr, IpAddr)>) -> Vec<u8> {
        let mut v = vec![0; self.buffer_len()];
        self.emit(&mut v, pseudo);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v2_with_password_round_trips() {
        let r = VrrpRepr {
            version: 2,
            vrid: 5,
            priority: 100,
            advert_int: 1,
            addresses: vec![a("10.0.0.100")],
            auth: Some((1, *b"123456\0\0")),
        };
        let bytes = r.to_bytes(None);
        assert_eq!(bytes.len(), 20);
        let p = VrrpPacket::new_checked(&bytes[..], Family::V4).unwrap();
        assert_eq!((p.version(), p.kind(), p.vrid(), p.priority(), p.count()), (2, 1, 5, 100, 1));
        assert_eq!((p.auth_type(), p.advert_int()), (1, 1));
        assert_eq!(p.addresses().collect::<Vec<_>>(), [a("10.0.0.100")]);
        assert_eq!(p.auth_data(), Some(&b"123456\0\0"[..]));
        assert!(p.verify_checksum(None));
    }

    #[test]
    fn v3_checksum_covers_the_pseudo_header() {
        let r =
            VrrpRepr { version: 3, vrid: 7, priority: 80, advert_int: 100, addresses: vec![a("10.0.0.1")], auth: None };
        let ph = Some((a("10.1.1.243"), a("224.0.0.18")));
        let bytes = r.to_bytes(ph);
        let p = VrrpPacket::new_checked(&bytes[..], Family::V4).unwrap();
        assert_eq!(p.advert_int(), 100);
        assert!(p.verify_checksum(ph));
        assert!(!p.verify_checksum(Some((a("10.1.1.244"), a("224.0.0.18")))));
        let r6 = VrrpRepr {
            version: 3,
            vrid: 7,
            priority: 80,
            advert_int: 25,
            addresses: vec![a("fe80::1"), a("2001:db8::1")],
            auth: None,
        };
        let ph6 = Some((a("fe80::2"), a("ff02::12")));
        let b6 = r6.to_bytes(ph6);
        let p6 = VrrpPacket::new_checked(&b6[..], Family::V6).unwrap();
        assert_eq!(p6.addresses().count(), 2);
        assert!(p6.verify_checksum(ph6));
    }

    /// The VRRPv2 advert real keepalived 2.2.7 sent for the seed's c2 file
    /// (VRID 5, priority 100, PASS 123456, 10.0.0.100), captured with
    /// tcpdump in a namespace (IP header: TOS 0xc0, TTL 255).
    #[test]
    fn keepalived_v2_advert_parses() {
        let bytes = [
            0x21, 0x05, 0x64, 0x01, 0x01, 0x01, 0xd5, 0xf7, 0x0a, 0x00, 0x00, 0x64, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36,
            0x00, 0x00,
        ];
        let p = VrrpPacket::new_checked(&bytes[..], Family::V4).unwrap();
        assert!(p.verify_checksum(None), "checksum {:04x}", p.checksum());
        let rebuilt = VrrpRepr {
            version: 2,
            vrid: 5,
            priority: 100,
            advert_int: 1,
            addresses: vec![a("10.0.0.100")],
            auth: Some((1, *b"123456\0\0")),
        };
        assert_eq!(rebuilt.to_bytes(None), bytes);
    }

    #[test]
    fn short_or_lying_buffers_are_refused() {
        assert_eq!(VrrpPacket::new_checked(&[0x21u8, 1, 1][..], Family::V4).unwrap_err(), Error::Truncated);
        // Claims 3 addresses but carries one.
        let mut b =
            VrrpRepr { version: 3, vrid: 1, priority: 1, advert_int: 100, addresses: vec![a("10.0.0.1")], auth: None }
                .to_bytes(None);
        b[3] = 3;
        assert!(VrrpPacket::new_checked(&b[..], Family::V4).is_err());
        for len in 0..b.len() {
            let _ = VrrpPacket::new_checked(&b[..len], Family::V6);
        }
    }
}
