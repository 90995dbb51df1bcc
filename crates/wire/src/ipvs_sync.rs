//! IPVS connection synchronisation messages, as the kernel's sync threads
//! exchange them over UDP multicast (224.0.0.81:8848 by default).
//!
//! ```text
//! version 1 header   0 reserved (0)  1 syncid  2 size (whole message)
//!                    4 count         5 version (1)  6 spare (0)
//! version 1 conn     0 type (bit 0: IPv6)  1 protocol
//!                    2 version (4 bits, 0) | size (12 bits, this conn with
//!                      its parameters, without the padding to 4 bytes)
//!                    4 flags  8 state  10 cport  12 vport  14 dport
//!                    16 fwmark  20 timeout (s)  24 caddr vaddr daddr
//!                    then parameters: type (1), length (1), data
//! version 0 header   0 count  1 syncid  2 size
//! version 0 conn     0 reserved  1 protocol  2 cport  4 vport  6 dport
//!                    8 caddr  12 vaddr  16 daddr  20 flags (16 bits)
//!                    22 state, then 24 bytes of sequence data when the
//!                    flags say so (IPv4 only, no timeout, no fwmark)
//! ```
//!
//! A receiver skips a parameter whose type has the optional bit set and
//! drops the connection on any other type it does not know. The kernel's
//! `IPVS_OPT_F_PARAM` is `1 << (IPVS_OPT_PARAM - 1)` with IPVS_OPT_PARAM 7,
//! that is 0x40 (not 0x80: a kernel masks 0x40 off before its switch and
//! treats a type without it as mandatory). rlvs's own parameters, which
//! a kernel must skip, therefore all carry 0x40.

use crate::{be16, be32, put16, put32};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
pub const PORT: u16 = 8848;
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 8;
pub const HEADER_V0_LEN: usize = 4;
pub const CONN_V4_LEN: usize = 36;
pub const CONN_V6_LEN: usize = 72;
const CONN_V0_LEN: usize = 24;
const SEQ_LEN: usize = 24;
/// At most this many connections fit the count byte.
pub const MAX_CONNS: usize = 255;

/// IP_VS_CONN_F_*: what a connection's flags carry on the wire.
pub mod flags {
    pub const FWD_MASK: u32 = 0x0007;
    pub const MASQ: u32 = 0;
    pub const LOCALNODE: u32 = 1;
    pub const TUNNEL: u32 = 2;
    pub const DROUTE: u32 = 3;
    pub const SYNC: u32 = 0x0020;
    pub const HASHED: u32 = 0x0040;
    pub const NOOUTPUT: u32 = 0x0080;
    pub const INACTIVE: u32 = 0x0100;
    pub const OUT_SEQ: u32 = 0x0200;
    pub const IN_SEQ: u32 = 0x0400;
    pub const SEQ_MASK: u32 = 0x0600;
    pub const NO_CPORT: u32 = 0x0800;
    pub const TEMPLATE: u32 = 0x1000;
    pub const ONE_PACKET: u32 = 0x2000;
    /// What a backup takes from a message (IP_VS_CONN_F_BACKUP_MASK).
    pub const BACKUP_MASK: u32 = FWD_MASK | NOOUTPUT | INACTIVE | SEQ_MASK | NO_CPORT | TEMPLATE;
    /// What a later message may change on a known connection.
    pub const BACKUP_UPD_MASK: u32 = INACTIVE | SEQ_MASK;
}

/// Parameter types.
pub mod param {
    pub const SEQ_DATA: u8 = 1;
    pub const PE_DATA: u8 = 2;
    pub const PE_NAME: u8 = 3;
    /// IPVS_OPT_F_PARAM: a receiver that does not know the type skips it.
    pub const OPTIONAL: u8 = 0x40;
    /// rlvs: a FULLNAT connection's local address and port (4 or 16
    /// address bytes, then the port).
    pub const FNAT_LOCAL: u8 = OPTIONAL | 0x10;
    /// rlvs: a FULLNAT connection's sequence offset, timestamp offset and
    /// whether the timestamp offset applies (9 bytes).
    pub const FNAT_OFFSETS: u8 = OPTIONAL | 0x11;
}

/// One direction's sequence adjustment (struct ip_vs_seq).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seq {
    pub init_seq: u32,
    pub delta: u32,
    pub previous_delta: u32,
}

/// rlvs's FULLNAT offsets (see lvs::fwd::tcpseq).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FnatOffsets {
    pub seq: u32,
    pub ts: Option<u32>,
}

/// One connection as a sync message carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConn {
    pub protocol: u8,
    pub flags: u32,
    pub state: u16,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    pub fwmark: u32,
    /// Seconds; 0 from a version 0 message (the receiver's default).
    pub timeout: u32,
    /// In and out sequence adjustments (flags & SEQ_MASK).
    pub seq: Option<(Seq, Seq)>,
    pub pe_name: Option<Vec<u8>>,
    pub pe_data: Option<Vec<u8>>,
    pub fnat_local: Option<(IpAddr, u16)>,
    pub fnat_offsets: Option<FnatOffsets>,
}

impl SyncConn {
    fn is_v6(&self) -> bool {
        self.caddr.is_ipv6()
    }

    /// Bytes it takes in a version 1 message, without padding.
    pub fn wire_len(&self) -> usize {
        let mut n = if self.is_v6() { CONN_V6_LEN } else { CONN_V4_LEN };
        if self.seq.is_some() {
            n += 2 + SEQ_LEN;
        }
        if let Some(d) = &self.pe_data {
            n += 2 + d.len();
            if let Some(p) = &self.pe_name {
                n += 2 + p.len();
            }
        }
        if let Some((a, _)) = self.fnat_local {
            n += 2 + if a.is_ipv6() { 18 } else { 6 };
        }
        if self.fnat_offsets.is_some() {
            n += 2 + 9;
        }
        n
    }
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// 0 or 1.
    pub version: u8,
    pub syncid: u8,
    pub conns: Vec<SyncConn>,
    /// Connections left out, each for the reason given (the rest of the
    /// message stands, as in the kernel).
    pub skipped: Vec<Skip>,
}

/// Why one connection of a message was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A parameter without the optional bit that this reader does not know.
    UnknownMandatoryParam(u8),
    /// IPv4-only version 0 cannot carry it (never sent; counted if seen).
    Unsupported,
}

/// Why a whole message was dropped. Nothing of it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// Shorter than the smallest header.
    TooShort,
    /// The size field does not say the datagram's length.
    SizeMismatch,
    /// A connection (or its parameters) runs past the message's end, or
    /// the count promises more connections than the message holds.
    Truncated,
    /// A connection of a version this reader does not know.
    BadConnVersion,
    /// A connection type other than IPv4 (0) or IPv6 (1).
    BadConnType,
    /// A parameter of length 0, a known one of the wrong length, or one
    /// given twice.
    BadParam,
    /// A version 1 header whose reserved or spare fields are not zero and
    /// that is not a version 0 message either.
    BadVersion,
}

impl std::fmt::Display for Drop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Drop::TooShort => "message header too short",
            Drop::SizeMismatch => "message size field does not match the datagram",
            Drop::Truncated => "connection runs past the message",
            Drop::BadConnVersion => "connection of an unknown version",
            Drop::BadConnType => "connection of an unknown type",
            Drop::BadParam => "bogus connection parameter",
            Drop::BadVersion => "unknown message version",
        })
    }
}

/// rlvs's own datagrams on the sync group, between rlvs directors: a
/// returning master asks for the connections made while it was away
/// (bulk resync), and the answer ends with a marker. Their size field (0)
/// never matches their length, so a kernel drops them as bogus and an
/// older rlvs counts them as malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    ResyncRequest,
    ResyncDone,
}

const CONTROL_MAGIC: &[u8; 4] = b"RLVS";
pub const CONTROL_LEN: usize = 12;

pub fn control(kind: Control, syncid: u8) -> [u8; CONTROL_LEN] {
    let k = match kind {
        Control::ResyncRequest => 1,
        Control::ResyncDone => 2,
    };
    let mut b = [0u8; CONTROL_LEN];
    b[0] = 0xff;
    b[1] = syncid;
    b[4..8].copy_from_slice(CONTROL_MAGIC);
    b[8] = k;
    b
}

/// The control message in `buf`, with its syncid, if it is one.
pub fn control_of(buf: &[u8]) -> Option<(Control, u8)> {
    if buf.len() != CONTROL_LEN || buf[0] != 0xff || be16(buf, 2) != 0 || &buf[4..8] != CONTROL_MAGIC {
        return None;
    }
    let kind = match buf[8] {
        1 => Control::ResyncRequest,
        2 => Control::ResyncDone,
        _ => return None,
    };
    Some((kind, buf[1]))
}

/// Reads a datagram. Whatever is wrong with its structure drops all of it
/// (stricter than the kernel, which keeps the connections it read before
/// the fault); a connection that is well formed but not for this reader is
/// skipped and reported.
pub fn parse(buf: &[u8]) -> Result<Message, Drop> {
    if buf.len() < HEADER_V0_LEN {
        return Err(Drop::TooShort);
    }
    if usize::from(be16(buf, 2)) != buf.len() {
        return Err(Drop::SizeMismatch);
    }
    let syncid = buf[1];
    if buf[0] != 0 {
        return parse_v0(buf, syncid);
    }
    if buf.len() < HEADER_LEN {
        return Err(Drop::TooShort);
    }
    if buf[5] != VERSION || be16(buf, 6) != 0 {
        // A version 0 message with no connections has a zero first byte.
        if buf.len() == HEADER_V0_LEN {
            return Ok(Message { version: 0, syncid, conns: Vec::new(), skipped: Vec::new() });
        }
        return Err(Drop::BadVersion);
    }
    let count = usize::from(buf[4]);
    let mut m = Message { version: 1, syncid, conns: Vec::with_capacity(count), skipped: Vec::new() };
    let mut at = HEADER_LEN;
    for _ in 0..count {
        if at + CONN_V4_LEN > buf.len() {
            return Err(Drop::Truncated);
        }
        let ver_size = be16(buf, at + 2);
        let size = usize::from(ver_size & 0x0fff);
        if ver_size >> 12 != 0 {
            return Err(Drop::BadConnVersion);
        }
        let end = at + size;
        if end > buf.len() {
            return Err(Drop::Truncated);
        }
        match conn_v1(&buf[at..end])? {
            Ok(c) => m.conns.push(c),
            Err(s) => m.skipped.push(s),
        }
        at += (size + 3) & !3;
    }
    Ok(m)
}

fn addr(b: &[u8], v6: bool) -> IpAddr {
    if v6 {
        let mut o = [0u8; 16];
        o.copy_from_slice(&b[..16]);
        IpAddr::V6(Ipv6Addr::from(o))
    } else {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }
}

fn seq_at(b: &[u8], at: usize) -> Seq {
    Seq { init_seq: be32(b, at), delta: be32(b, at + 4), previous_delta: be32(b, at + 8) }
}

/// One version 1 connection, `b` exactly its declared size.
fn conn_v1(b: &[u8]) -> Result<Result<SyncConn, Skip>, Drop> {
    if b.len() < CONN_V4_LEN {
        return Err(Drop::Truncated);
    }
    let v6 = match b[0] {
        0 => false,
        1 => true,
        _ => return Err(Drop::BadConnType),
    };
    let fixed = if v6 { CONN_V6_LEN } else { CONN_V4_LEN };
    if b.len() < fixed {
        return Err(Drop::Truncated);
    }
    let a = if v6 { 16 } else { 4 };
    let mut c = SyncConn {
        protocol: b[1],
        flags: be32(b, 4),
        state: be16(b, 8),
        cport: be16(b, 10),
        vport: be16(b, 12),
        dport: be16(b, 14),
        fwmark: be32(b, 16),
        timeout: be32(b, 20),
        caddr: addr(&b[24..], v6),
        vaddr: addr(&b[24 + a..], v6),
        daddr: addr(&b[24 + 2 * a..], v6),
        seq: None,
        pe_name: None,
        pe_data: None,
        fnat_local: None,
        fnat_offsets: None,
    };
    let mut at = fixed;
    let mut skip = None;
    while at < b.len() {
        if at + 2 > b.len() {
            return Err(Drop::Truncated);
        }
        let (ptype, plen) = (b[at], usize::from(b[at + 1]));
        at += 2;
        if plen == 0 || at + plen > b.len() {
            return Err(Drop::BadParam);
        }
        let d = &b[at..at + plen];
        match ptype {
            param::SEQ_DATA | 0x41 if plen == SEQ_LEN && c.seq.is_none() => c.seq = Some((seq_at(d, 0), seq_at(d, 12))),
            param::PE_DATA | 0x42 if c.pe_data.is_none() && plen <= 255 => c.pe_data = Some(d.to_vec()),
            param::PE_NAME | 0x43 if c.pe_name.is_none() && plen <= 16 => c.pe_name = Some(d.to_vec()),
            param::SEQ_DATA | param::PE_DATA | param::PE_NAME | 0x41..=0x43 => return Err(Drop::BadParam),
            param::FNAT_LOCAL => match (plen, &c.fnat_local) {
                (6, None) => c.fnat_local = Some((addr(d, false), be16(d, 4))),
                (18, None) => c.fnat_local = Some((addr(d, true), be16(d, 16))),
                _ => return Err(Drop::BadParam),
            },
            param::FNAT_OFFSETS => match (plen, &c.fnat_offsets) {
                (9, None) => {
                    let ts = (d[8] != 0).then(|| be32(d, 4));
                    c.fnat_offsets = Some(FnatOffsets { seq: be32(d, 0), ts })
                }
                _ => return Err(Drop::BadParam),
            },
            t if t & param::OPTIONAL != 0 => {}
            t => skip = skip.or(Some(Skip::UnknownMandatoryParam(t))),
        }
        at += plen;
    }
    Ok(match skip {
        Some(s) => Err(s),
        None => Ok(c),
    })
}

fn parse_v0(buf: &[u8], syncid: u8) -> Result<Message, Drop> {
    let count = usize::from(buf[0]);
    let mut m = Message { version: 0, syncid, conns: Vec::with_capacity(count), skipped: Vec::new() };
    let mut at = HEADER_V0_LEN;
    for _ in 0..count {
        if at + CONN_V0_LEN > buf.len() {
            return Err(Drop::Truncated);
        }
        let b = &buf[at..];
        let flags = u32::from(be16(b, 20));
        let seq = if flags & flags::SEQ_MASK != 0 {
            if at + CONN_V0_LEN + SEQ_LEN > buf.len() {
                return Err(Drop::Truncated);
            }
            Some((seq_at(b, CONN_V0_LEN), seq_at(b, CONN_V0_LEN + 12)))
        } else {
            None
        };
        m.conns.push(SyncConn {
            protocol: b[1],
            flags,
            state: be16(b, 22),
            cport: be16(b, 2),
            vport: be16(b, 4),
            dport: be16(b, 6),
            caddr: addr(&b[8..], false),
            vaddr: addr(&b[12..], false),
            daddr: addr(&b[16..], false),
            fwmark: 0,
            timeout: 0,
            seq,
            pe_name: None,
            pe_data: None,
            fnat_local: None,
            fnat_offsets: None,
        });
        at += CONN_V0_LEN + if seq.is_some() { SEQ_LEN } else { 0 };
    }
    Ok(m)
}

/// Builds version 1 messages up to `maxlen` bytes (the kernel's
/// sync_maxlen: the interface's MTU less the IP and UDP headers).
pub struct Builder {
    buf: Vec<u8>,
    maxlen: usize,
}

impl Builder {
    pub fn new(syncid: u8, maxlen: usize) -> Builder {
        let mut buf = Vec::with_capacity(maxlen.max(HEADER_LEN));
        buf.extend_from_slice(&[0, syncid, 0, HEADER_LEN as u8, 0, VERSION, 0, 0]);
        Builder { buf, maxlen }
    }

    pub fn count(&self) -> usize {
        usize::from(self.buf[4])
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// Adds `c` if it fits; false when the message is full (send it and
    /// start another). A connection too large for any message of this
    /// maxlen goes alone into an empty one, as the kernel sizes its buffer
    /// to hold at least one.
    pub fn push(&mut self, c: &SyncConn) -> bool {
        let len = c.wire_len();
        let pad = (4 - self.buf.len() % 4) % 4;
        if self.count() == MAX_CONNS || (!self.is_empty() && self.buf.len() + pad + len > self.maxlen) {
            return false;
        }
        self.buf.resize(self.buf.len() + pad, 0);
        let v6 = c.is_v6();
        let start = self.buf.len();
        self.buf.resize(start + if v6 { CONN_V6_LEN } else { CONN_V4_LEN }, 0);
        let b = &mut self.buf[start..];
        b[0] = u8::from(v6);
        b[1] = c.protocol;
        put16(b, 2, len as u16 & 0x0fff);
        put32(b, 4, c.flags & !flags::HASHED);
        put16(b, 8, c.state);
        put16(b, 10, c.cport);
        put16(b, 12, c.vport);
        put16(b, 14, c.dport);
        put32(b, 16, c.fwmark);
        put32(b, 20, c.timeout);
        let mut at = 24;
        for a in [c.caddr, c.vaddr, c.daddr] {
            match a {
                IpAddr::V4(x) if !v6 => b[at..at + 4].copy_from_slice(&x.octets()),
                IpAddr::V6(x) if v6 => b[at..at + 16].copy_from_slice(&x.octets()),
                // A family that differs from the client's cannot be carried.
                _ => {}
            }
            at += if v6 { 16 } else { 4 };
        }
        if let Some((i, o)) = c.seq {
            self.buf.extend_from_slice(&[param::SEQ_DATA, SEQ_LEN as u8]);
            for s in [i, o] {
                for v in [s.init_seq, s.delta, s.previous_delta] {
                    self.buf.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
        if let Some(d) = &c.pe_data {
            self.buf.extend_from_slice(&[param::PE_DATA, d.len() as u8]);
            self.buf.extend_from_slice(d);
            if let Some(p) = &c.pe_name {
                self.buf.extend_from_slice(&[param::PE_NAME, p.len() as u8]);
                self.buf.extend_from_slice(p);
            }
        }
        if let Some((a, p)) = c.fnat_local {
            let bytes: Vec<u8> = match a {
                IpAddr::V4(x) => x.octets().to_vec(),
                IpAddr::V6(x) => x.octets().to_vec(),
            };
            self.buf.extend_from_slice(&[param::FNAT_LOCAL, bytes.len() as u8 + 2]);
            self.buf.extend_from_slice(&bytes);
            self.buf.extend_from_slice(&p.to_be_bytes());
        }
        if let Some(o) = c.fnat_offsets {
            self.buf.extend_from_slice(&[param::FNAT_OFFSETS, 9]);
            self.buf.extend_from_slice(&o.seq.to_be_bytes());
            self.buf.extend_from_slice(&o.ts.unwrap_or(0).to_be_bytes());
            self.buf.push(u8::from(o.ts.is_some()));
        }
        self.buf[4] += 1;
        let total = self.buf.len() as u16;
        put16(&mut self.buf, 2, total);
        true
    }

    /// The datagram.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests;
