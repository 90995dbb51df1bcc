//! TCP headers (RFC 9293).

use crate::{be16, be32, checksum, put16, put32, Error, Result};
use std::net::Ipv4Addr;

pub const MIN_HEADER_LEN: usize = 20;

/// Offsets of the fixed header's 32-bit fields, for [`TcpPacket::update_word32`].
pub mod field {
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
}

/// The TCP control bits IPVS looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;

    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

pub const OPT_MSS: u8 = 2;
pub const OPT_SACK: u8 = 5;
pub const OPT_TIMESTAMP: u8 = 8;

/// The options of a TCP header (`header` is the whole header, fixed part
/// included): `(kind, offset of the kind byte, option length)` for each
/// option with a length byte. Stops at the end-of-list option or at the
/// first option that does not fit, so a malformed list yields what came
/// before it.
pub fn options(header: &[u8]) -> impl Iterator<Item = (u8, usize, usize)> + '_ {
    let mut at = MIN_HEADER_LEN;
    std::iter::from_fn(move || loop {
        let kind = *header.get(at)?;
        match kind {
            0 => return None,
            1 => at += 1,
            _ => {
                let len = usize::from(*header.get(at + 1)?);
                if len < 2 || at + len > header.len() {
                    return None;
                }
                let found = (kind, at, len);
                at += len;
                return Some(found);
            }
        }
    })
}

/// A view of a TCP segment. `new_checked` guarantees the data offset is at
/// least 5 words and the header fits the buffer.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = usize::from(b[12] >> 4) * 4;
        if hl < MIN_HEADER_LEN {
            return Err(Error::Malformed);
        }
        if b.len() < hl {
            return Err(Error::Truncated);
        }
        Ok(TcpPacket { buffer })
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }
    pub fn seq_number(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }
    pub fn ack_number(&self) -> u32 {
        be32(self.buffer.as_ref(), 8)
    }
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[12] >> 4) * 4
    }
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[13])
    }
    pub fn window_len(&self) -> u16 {
        be16(self.buffer.as_ref(), 14)
    }
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 16)
    }

    /// The header, options included (for [`options`]).
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// The MSS option, if the segment carries one.
    pub fn mss(&self) -> Option<u16> {
        let b = self.buffer.as_ref();
        let (_, at, len) = options(&b[..self.header_len()]).find(|&(kind, _, _)| kind == OPT_MSS)?;
        (len == 4).then(|| be16(b, at + 2))
    }

    /// TSval of the timestamp option, if the segment carries one.
    pub fn timestamp(&self) -> Option<u32> {
        let b = self.buffer.as_ref();
        let (_, at, len) = options(&b[..self.header_len()]).find(|&(kind, _, _)| kind == OPT_TIMESTAMP)?;
        (len == 10).then(|| be32(b, at + 2))
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Checks the checksum over the whole buffer (header and payload) with
    /// the IPv4 pseudo-header.
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let b = self.buffer.as_ref();
        let s = checksum::pseudo_header_v4(src, dst, 6, b.len() as u16) + checksum::sum(b);
        checksum::fold(s) == 0xffff
    }
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Checks the checksum with the IPv6 pseudo-header.
    pub fn verify_checksum_v6(&self, src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        let s = crate::ipv6::pseudo_header(src, dst, 6, b.len() as u32) + checksum::sum(b);
        checksum::fold(s) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Computes the checksum with the IPv6 pseudo-header.
    pub fn fill_checksum_v6(&mut self, src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr) {
        let b = self.buffer.as_mut();
        put16(b, 16, 0);
        let s = crate::ipv6::pseudo_header(src, dst, 6, b.len() as u32) + checksum::sum(b);
        put16(b, 16, !checksum::fold(s));
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
        let c = checksum::update16(be16(b, 16), old, v);
        put16(b, 16, c);
    }

    /// Patches the checksum for a changed pseudo-header address (NAT).
    pub fn adjust_checksum_for_addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        let b = self.buffer.as_mut();
        let c = checksum::update32(be16(b, 16), old.into(), new.into());
        put16(b, 16, c);
    }

    /// Replaces the 32-bit word at byte `at` of the header (a field of
    /// [`field`], or an option's value found with [`options`]) with
    /// `f(old)`, keeping the checksum right. With `partial` (a checksum the
    /// device completes over the segment later) only the bytes change. A
    /// word that does not lie inside the header is left alone.
    pub fn update_word32(&mut self, at: usize, partial: bool, f: impl FnOnce(u32) -> u32) {
        if at + 4 > self.header_len() {
            return;
        }
        let b = self.buffer.as_mut();
        let old = be32(b, at);
        let new = f(old);
        if old == new {
            return;
        }
        // The checksum runs over 16-bit words: widen an odd-aligned field.
        let (start, end) = (at & !1, (at + 5) & !1);
        let mut before = [0u8; 6];
        before[..end - start].copy_from_slice(&b[start..end]);
        put32(b, at, new);
        if !partial {
            let check = checksum::update_region(be16(b, 16), &before[..end - start], &b[start..end]);
            put16(b, 16, check);
        }
    }

    pub fn set_seq_number(&mut self, v: u32) {
        put32(self.buffer.as_mut(), 4, v);
    }

    /// Computes the checksum over the whole buffer with the IPv4 pseudo-header.
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let b = self.buffer.as_mut();
        put16(b, 16, 0);
        let s = checksum::pseudo_header_v4(src, dst, 6, b.len() as u16) + checksum::sum(b);
        put16(b, 16, !checksum::fold(s));
    }
}

/// The fields of an option-less TCP header, for building one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
}

impl TcpRepr {
    /// Writes the header; the checksum is left to `TcpPacket::fill_checksum_v4`
    /// once the payload is in place.
    pub fn emit(&self, buf: &mut [u8]) {
        put16(buf, 0, self.src_port);
        put16(buf, 2, self.dst_port);
        put32(buf, 4, self.seq);
        put32(buf, 8, self.ack);
        buf[12] = 5 << 4;
        buf[13] = self.flags.0;
        put16(buf, 14, self.window);
        put16(buf, 16, 0);
        put16(buf, 18, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::captures::{CURL_SYN, HTTP_GET_ACK_PSH};
    use crate::{EthernetFrame, Ipv4Packet};

    fn segment(frame: &[u8]) -> (Ipv4Addr, Ipv4Addr, Vec<u8>) {
        let eth = EthernetFrame::new_checked(frame).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        (ip.src_addr(), ip.dst_addr(), ip.payload().to_vec())
    }

    #[test]
    fn parses_captured_syn() {
        let (s, d, seg) = segment(CURL_SYN);
        let t = TcpPacket::new_checked(&seg[..]).unwrap();
        assert_eq!(t.dst_port(), 80);
        assert!(t.flags().syn() && !t.flags().ack());
        assert_eq!(t.mss(), Some(1460));
        assert!(t.verify_checksum_v4(s, d));
    }

    #[test]
    fn parses_captured_data_segment() {
        let (s, d, seg) = segment(HTTP_GET_ACK_PSH);
        let t = TcpPacket::new_checked(&seg[..]).unwrap();
        assert!(t.flags().ack() && !t.flags().syn());
        assert!(t.payload().starts_with(b"GET / HTTP/1.1\r\n"));
        assert!(t.verify_checksum_v4(s, d));
    }

    #[test]
    fn port_and_address_rewrites_keep_checksum_valid() {
        let (s, d, mut seg) = segment(HTTP_GET_ACK_PSH);
        let mut t = TcpPacket::new_checked(&mut seg[..]).unwrap();
        t.set_dst_port(8080);
        let new_dst = Ipv4Addr::new(10, 1, 1, 244);
        t.adjust_checksum_for_addr(d, new_dst);
        assert!(t.verify_checksum_v4(s, new_dst));
        let c = t.checksum();
        t.fill_checksum_v4(s, new_dst);
        assert_eq!(c, t.checksum());
    }

    #[test]
    fn rejects_bad_offsets() {
        let (_, _, seg) = segment(CURL_SYN);
        assert_eq!(TcpPacket::new_checked(&seg[..19]).unwrap_err(), Error::Truncated);
        let mut bad = seg.clone();
        bad[12] = 4 << 4;
        assert_eq!(TcpPacket::new_checked(&bad[..]).unwrap_err(), Error::Malformed);
        assert_eq!(TcpPacket::new_checked(&seg[..24]).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn malformed_options_do_not_panic() {
        let (_, _, mut seg) = segment(CURL_SYN);
        seg[21] = 0; // zero-length option
        let t = TcpPacket::new_checked(&seg[..]).unwrap();
        assert_eq!(t.mss(), None);
        seg[21] = 200; // option longer than the header
        let t = TcpPacket::new_checked(&seg[..]).unwrap();
        assert_eq!(t.mss(), None);
    }
}
