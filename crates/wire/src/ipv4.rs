//! IPv4 headers (RFC 791).

use crate::{be16, checksum, put16, Error, Result};
use std::net::Ipv4Addr;

pub const MIN_HEADER_LEN: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpProtocol {
    Icmp,
    Tcp,
    Udp,
    IpIp,
    Icmpv6,
    Vrrp,
    Other(u8),
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> Self {
        match v {
            1 => IpProtocol::Icmp,
            4 => IpProtocol::IpIp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            58 => IpProtocol::Icmpv6,
            112 => IpProtocol::Vrrp,
            o => IpProtocol::Other(o),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(v: IpProtocol) -> u8 {
        match v {
            IpProtocol::Icmp => 1,
            IpProtocol::IpIp => 4,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Icmpv6 => 58,
            IpProtocol::Vrrp => 112,
            IpProtocol::Other(o) => o,
        }
    }
}

/// A view of an IPv4 packet. `new_checked` guarantees: version 4, a header
/// length of at least 20 bytes that fits the buffer, and a total length that
/// covers the header and fits the buffer (trailing link-layer padding is
/// allowed and excluded from [`Ipv4Packet::payload`]).
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[0] >> 4 != 4 {
            return Err(Error::Malformed);
        }
        let hlen = usize::from(b[0] & 0x0f) * 4;
        let total = usize::from(be16(b, 2));
        if hlen < MIN_HEADER_LEN || total < hlen {
            return Err(Error::Malformed);
        }
        if b.len() < total {
            return Err(Error::Truncated);
        }
        Ok(Ipv4Packet { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[0] & 0x0f) * 4
    }

    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }

    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }

    pub fn dont_frag(&self) -> bool {
        self.buffer.as_ref()[6] & 0x40 != 0
    }

    pub fn more_frags(&self) -> bool {
        self.buffer.as_ref()[6] & 0x20 != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (be16(self.buffer.as_ref(), 6) & 0x1fff) * 8
    }

    /// True for any fragment (first, middle or last) of a fragmented datagram.
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[8]
    }

    pub fn protocol(&self) -> IpProtocol {
        self.buffer.as_ref()[9].into()
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 10)
    }

    pub fn src_addr(&self) -> Ipv4Addr {
        let b: [u8; 4] = self.buffer.as_ref()[12..16].try_into().unwrap();
        b.into()
    }

    pub fn dst_addr(&self) -> Ipv4Addr {
        let b: [u8; 4] = self.buffer.as_ref()[16..20].try_into().unwrap();
        b.into()
    }

    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(&self.buffer.as_ref()[..self.header_len()]) == 0
    }

    /// The bytes after the header, up to the total length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    pub fn set_ttl(&mut self, ttl: u8) {
        let b = self.buffer.as_mut();
        let old = be16(b, 8);
        b[8] = ttl;
        let new = be16(b, 8);
        let c = checksum::update16(be16(b, 10), old, new);
        put16(b, 10, c);
    }

    /// Sets the source address and patches the header checksum incrementally.
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.rewrite_addr(12, a);
    }

    /// Sets the destination address and patches the header checksum incrementally.
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.rewrite_addr(16, a);
    }

    fn rewrite_addr(&mut self, at: usize, a: Ipv4Addr) {
        let b = self.buffer.as_mut();
        let old = crate::be32(b, at);
        let new = u32::from(a);
        b[at..at + 4].copy_from_slice(&a.octets());
        let c = checksum::update32(be16(b, 10), old, new);
        put16(b, 10, c);
    }

    pub fn fill_checksum(&mut self) {
        let hl = self.header_len();
        let b = self.buffer.as_mut();
        put16(b, 10, 0);
        let c = checksum::checksum(&b[..hl]);
        put16(b, 10, c);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, tl) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[hl..tl]
    }
}

impl<'a> Ipv4Packet<&'a mut [u8]> {
    /// The payload, taken out of a view that borrows its buffer, so it
    /// can outlive the view (to build the next layer's view on it).
    pub fn into_payload_mut(self) -> &'a mut [u8] {
        let (hl, tl) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer[hl..tl]
    }
}

/// The fields of an option-less IPv4 header, for building one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: IpProtocol,
    pub payload_len: usize,
    pub ttl: u8,
    pub ident: u16,
    pub dont_frag: bool,
}

impl Ipv4Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) -> Self {
        Ipv4Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: usize::from(p.total_len()) - p.header_len(),
            ttl: p.ttl(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
        }
    }

    pub fn buffer_len(&self) -> usize {
        MIN_HEADER_LEN + self.payload_len
    }

    /// Writes a 20-byte header with a correct checksum.
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0] = 0x45;
        buf[1] = 0;
        put16(buf, 2, (MIN_HEADER_LEN + self.payload_len) as u16);
        put16(buf, 4, self.ident);
        put16(buf, 6, if self.dont_frag { 0x4000 } else { 0 });
        buf[8] = self.ttl;
        buf[9] = self.protocol.into();
        put16(buf, 10, 0);
        buf[12..16].copy_from_slice(&self.src.octets());
        buf[16..20].copy_from_slice(&self.dst.octets());
        let c = checksum::checksum(&buf[..MIN_HEADER_LEN]);
        put16(buf, 10, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::captures::{CURL_SYN, UDP_DNS_QUERY};
    use crate::EthernetFrame;

    fn ip_of(frame: &[u8]) -> Ipv4Packet<&[u8]> {
        Ipv4Packet::new_checked(&frame[crate::ethernet::HEADER_LEN..]).unwrap()
    }

    #[test]
    fn parses_captured_syn() {
        let p = ip_of(CURL_SYN);
        assert_eq!(p.src_addr(), Ipv4Addr::new(10, 1, 1, 10));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(p.protocol(), IpProtocol::Tcp);
        assert_eq!(p.ttl(), 64);
        assert!(p.dont_frag());
        assert!(!p.is_fragment());
        assert!(p.verify_checksum());
        assert_eq!(p.payload().len(), usize::from(p.total_len()) - 20);
    }

    #[test]
    fn incremental_rewrite_keeps_checksum_valid() {
        let mut frame = UDP_DNS_QUERY.to_vec();
        let mut eth = EthernetFrame::new_checked(&mut frame[..]).unwrap();
        let mut p = Ipv4Packet::new_checked(eth.payload_mut()).unwrap();
        assert!(p.verify_checksum());
        p.set_dst_addr(Ipv4Addr::new(10, 1, 1, 245));
        p.set_src_addr(Ipv4Addr::new(10, 1, 1, 243));
        p.set_ttl(63);
        assert!(p.verify_checksum());
        let before = p.checksum();
        p.fill_checksum();
        assert_eq!(before, p.checksum());
    }

    #[test]
    fn repr_round_trip() {
        let p = ip_of(CURL_SYN);
        let r = Ipv4Repr::parse(&p);
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out);
        out[20..].copy_from_slice(p.payload());
        let q = Ipv4Packet::new_checked(&out[..]).unwrap();
        assert!(q.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&q), r);
    }

    #[test]
    fn rejects_bad_headers() {
        let p = ip_of(CURL_SYN);
        let raw = &CURL_SYN[14..14 + usize::from(p.total_len())];
        assert_eq!(Ipv4Packet::new_checked(&raw[..19]).unwrap_err(), Error::Truncated);
        assert_eq!(Ipv4Packet::new_checked(&raw[..raw.len() - 1]).unwrap_err(), Error::Truncated);
        let mut v6 = raw.to_vec();
        v6[0] = 0x65;
        assert_eq!(Ipv4Packet::new_checked(&v6[..]).unwrap_err(), Error::Malformed);
        let mut short_ihl = raw.to_vec();
        short_ihl[0] = 0x44;
        assert_eq!(Ipv4Packet::new_checked(&short_ihl[..]).unwrap_err(), Error::Malformed);
        let mut big_ihl = raw.to_vec();
        big_ihl[0] = 0x4f;
        big_ihl[2..4].copy_from_slice(&20u16.to_be_bytes());
        assert_eq!(Ipv4Packet::new_checked(&big_ihl[..]).unwrap_err(), Error::Malformed);
    }
}
