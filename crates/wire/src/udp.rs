//! UDP headers (RFC 768).

use crate::{be16, checksum, put16, Error, Result};
use std::net::Ipv4Addr;

pub const HEADER_LEN: usize = 8;

/// A view of a UDP datagram. `new_checked` guarantees the length field covers
/// the header and fits the buffer.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = usize::from(be16(b, 4));
        if len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if b.len() < len {
            return Err(Error::Truncated);
        }
        Ok(UdpPacket { buffer })
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }
    pub fn is_empty(&self) -> bool {
        self.len() as usize == HEADER_LEN
    }
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// A zero checksum means "not computed" for UDP over IPv4.
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let b = &self.buffer.as_ref()[..usize::from(self.len())];
        let s = checksum::pseudo_header_v4(src, dst, 17, b.len() as u16) + checksum::sum(b);
        checksum::fold(s) == 0xffff
    }
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Checks the checksum with the IPv6 pseudo-header (mandatory in IPv6).
    pub fn verify_checksum_v6(&self, src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr) -> bool {
        let b = &self.buffer.as_ref()[..usize::from(self.len())];
        let s = crate::ipv6::pseudo_header(src, dst, 17, b.len() as u32) + checksum::sum(b);
        checksum::fold(s) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Computes the checksum with the IPv6 pseudo-header.
    pub fn fill_checksum_v6(&mut self, src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr) {
        let len = usize::from(self.len());
        let b = &mut self.buffer.as_mut()[..len];
        put16(b, 6, 0);
        let s = crate::ipv6::pseudo_header(src, dst, 17, len as u32) + checksum::sum(b);
        put16(b, 6, nonzero(!checksum::fold(s)));
    }

    pub fn set_src_port(&mut self, p: u16) {
        self.rewrite16(0, p);
    }

    pub fn set_dst_port(&mut self, p: u16) {
        self.rewrite16(2, p);
    }

    fn rewrite16(&mut self, at: usize, v: u16) {
        let b = self.buffer.as_mut();
        let old = be16(b, at);
        put16(b, at, v);
        let c = be16(b, 6);
        if c != 0 {
            put16(b, 6, nonzero(checksum::update16(c, old, v)));
        }
    }

    pub fn adjust_checksum_for_addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        let b = self.buffer.as_mut();
        let c = be16(b, 6);
        if c != 0 {
            put16(b, 6, nonzero(checksum::update32(c, old.into(), new.into())));
        }
    }

    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let len = usize::from(self.len());
        let b = &mut self.buffer.as_mut()[..len];
        put16(b, 6, 0);
        let s = checksum::pseudo_header_v4(src, dst, 17, len as u16) + checksum::sum(b);
        put16(b, 6, nonzero(!checksum::fold(s)));
    }
}

/// A computed UDP checksum of zero is sent as all ones (RFC 768).
fn nonzero(c: u16) -> u16 {
    if c == 0 {
        0xffff
    } else {
        c
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload_len: usize,
}

impl UdpRepr {
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the header with a zero checksum; call `fill_checksum_v4` once
    /// the payload is in place.
    pub fn emit(&self, buf: &mut [u8]) {
        put16(buf, 0, self.src_port);
        put16(buf, 2, self.dst_port);
        put16(buf, 4, (HEADER_LEN + self.payload_len) as u16);
        put16(buf, 6, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::captures::UDP_DNS_QUERY;
    use crate::{EthernetFrame, Ipv4Packet};

    #[test]
    fn parses_captured_datagram_and_rewrites() {
        let eth = EthernetFrame::new_checked(UDP_DNS_QUERY).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        let (s, d) = (ip.src_addr(), ip.dst_addr());
        let mut seg = ip.payload().to_vec();
        let mut u = UdpPacket::new_checked(&mut seg[..]).unwrap();
        assert_eq!(u.dst_port(), 53);
        assert!(u.verify_checksum_v4(s, d));
        u.set_dst_port(5353);
        let nd = Ipv4Addr::new(10, 1, 1, 245);
        u.adjust_checksum_for_addr(d, nd);
        assert!(u.verify_checksum_v4(s, nd));
    }

    #[test]
    fn builds_datagram_with_valid_checksum() {
        let r = UdpRepr { src_port: 1000, dst_port: 2000, payload_len: 5 };
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut buf);
        buf[8..].copy_from_slice(b"hello");
        let (s, d) = (Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8));
        let mut u = UdpPacket::new_checked(&mut buf[..]).unwrap();
        u.fill_checksum_v4(s, d);
        assert!(u.verify_checksum_v4(s, d));
        assert_eq!(u.payload(), b"hello");
    }

    #[test]
    fn rejects_bad_lengths() {
        let mut b = [0u8; 8];
        b[5] = 4;
        assert_eq!(UdpPacket::new_checked(&b[..]).unwrap_err(), Error::Malformed);
        b[5] = 9;
        assert_eq!(UdpPacket::new_checked(&b[..]).unwrap_err(), Error::Truncated);
    }
}
