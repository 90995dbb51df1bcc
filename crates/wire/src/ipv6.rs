//! IPv6 headers (RFC 8200). Only the fixed header is interpreted; packets
//! whose transport header sits behind extension headers are the kernel's.

use crate::{be16, checksum, put16, Error, IpProtocol, Result};
use std::net::Ipv6Addr;

pub const HEADER_LEN: usize = 40;

/// A view of an IPv6 packet. `new_checked` guarantees version 6 and a
/// payload length that fits the buffer (link-layer padding is allowed).
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(Error::Malformed);
        }
        // A zero payload length means a jumbogram: not for us.
        if be16(b, 4) == 0 && b.len() > HEADER_LEN {
            return Err(Error::Malformed);
        }
        if b.len() < HEADER_LEN + usize::from(be16(b, 4)) {
            return Err(Error::Truncated);
        }
        Ok(Ipv6Packet { buffer })
    }

    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }

    pub fn next_header(&self) -> IpProtocol {
        self.buffer.as_ref()[6].into()
    }

    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[7]
    }

    pub fn src_addr(&self) -> Ipv6Addr {
        let b: [u8; 16] = self.buffer.as_ref()[8..24].try_into().unwrap();
        b.into()
    }

    pub fn dst_addr(&self) -> Ipv6Addr {
        let b: [u8; 16] = self.buffer.as_ref()[24..40].try_into().unwrap();
        b.into()
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }

    /// Total length on the wire (header included).
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    pub fn set_hop_limit(&mut self, h: u8) {
        self.buffer.as_mut()[7] = h;
    }

    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[8..24].copy_from_slice(&a.octets());
    }

    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[24..40].copy_from_slice(&a.octets());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let n = usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..HEADER_LEN + n]
    }
}

impl<'a> Ipv6Packet<&'a mut [u8]> {
    /// As [`crate::Ipv4Packet::into_payload_mut`].
    pub fn into_payload_mut(self) -> &'a mut [u8] {
        let n = usize::from(self.payload_len());
        &mut self.buffer[HEADER_LEN..HEADER_LEN + n]
    }
}

/// The fields of an extension-less IPv6 header, for building one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub next_header: IpProtocol,
    pub payload_len: usize,
    pub hop_limit: u8,
}

impl Ipv6Repr {
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    pub fn emit(&self, buf: &mut [u8]) {
        buf[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
        put16(buf, 4, self.payload_len as u16);
        buf[6] = self.next_header.into();
        buf[7] = self.hop_limit;
        buf[8..24].copy_from_slice(&self.src.octets());
        buf[24..40].copy_from_slice(&self.dst.octets());
    }
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 section 8.1).
pub fn pseudo_header(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u32 {
    checksum::sum(&src.octets()) + checksum::sum(&dst.octets()) + (len >> 16) + (len & 0xffff) + u32::from(next_header)
}

/// RFC 1624 update of a checksum for a changed 128-bit address.
pub fn update_checksum_addr(check: u16, old: Ipv6Addr, new: Ipv6Addr) -> u16 {
    let (o, n) = (old.octets(), new.octets());
    let mut c = check;
    for i in (0..16).step_by(2) {
        c = checksum::update16(c, be16(&o, i), be16(&n, i));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_parse_and_checksum_helpers() {
        let r = Ipv6Repr {
            src: "2001:db8::10".parse().unwrap(),
            dst: "2001:db8::100".parse().unwrap(),
            next_header: IpProtocol::Udp,
            payload_len: 8,
            hop_limit: 64,
        };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut b);
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.src_addr(), p.dst_addr(), p.next_header(), p.hop_limit()), (r.src, r.dst, IpProtocol::Udp, 64));
        assert_eq!(Ipv6Packet::new_checked(&b[..39]).unwrap_err(), Error::Truncated);
        let mut bad = b.clone();
        bad[0] = 0x45;
        assert_eq!(Ipv6Packet::new_checked(&bad[..]).unwrap_err(), Error::Malformed);
        // Incremental address update equals a recomputation.
        let data = [1u8, 2, 3, 4];
        let full = |a: Ipv6Addr| !checksum::fold(pseudo_header(a, r.dst, 17, 4) + checksum::sum(&data));
        let other: Ipv6Addr = "fd00::2".parse().unwrap();
        assert_eq!(update_checksum_addr(full(r.src), r.src, other), full(other));
    }
}
