//! Attributes as the IPVS family lays them out: a kind and a value whose
//! width and byte order the kind decides (ports and netmasks travel in
//! network order inside host-order-typed attributes, as the kernel and
//! libipvs put them).

use netlink_packet_core::{DecodeError, Nla, NLA_F_NESTED, NLA_TYPE_MASK};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    U8(u8),
    U16(u16),
    /// A u16 attribute holding a network-order value (ports).
    Be16(u16),
    U32(u32),
    /// A u32 attribute holding a network-order value (netmask, IPv4 group).
    Be32(u32),
    U64(u64),
    /// NUL-terminated on the wire.
    Str(String),
    Bytes(Vec<u8>),
    Nested(Vec<Attr>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    pub kind: u16,
    pub value: Value,
}

impl Attr {
    pub fn new(kind: u16, value: Value) -> Self {
        Attr { kind, value }
    }
}

impl Nla for Attr {
    fn value_len(&self) -> usize {
        match &self.value {
            Value::U8(_) => 1,
            Value::U16(_) | Value::Be16(_) => 2,
            Value::U32(_) | Value::Be32(_) => 4,
            Value::U64(_) => 8,
            Value::Str(s) => s.len() + 1,
            Value::Bytes(b) => b.len(),
            Value::Nested(a) => a.as_slice().iter().map(netlink_packet_core::Emitable::buffer_len).sum(),
        }
    }

    fn kind(&self) -> u16 {
        match self.value {
            Value::Nested(_) => self.kind | NLA_F_NESTED,
            _ => self.kind,
        }
    }

    fn emit_value(&self, buf: &mut [u8]) {
        match &self.value {
            Value::U8(v) => buf[0] = *v,
            Value::U16(v) => buf[..2].copy_from_slice(&v.to_ne_bytes()),
            Value::Be16(v) => buf[..2].copy_from_slice(&v.to_be_bytes()),
            Value::U32(v) => buf[..4].copy_from_slice(&v.to_ne_bytes()),
            Value::Be32(v) => buf[..4].copy_from_slice(&v.to_be_bytes()),
            Value::U64(v) => buf[..8].copy_from_slice(&v.to_ne_bytes()),
            Value::Str(s) => {
                buf[..s.len()].copy_from_slice(s.as_bytes());
                buf[s.len()] = 0;
            }
            Value::Bytes(b) => buf[..b.len()].copy_from_slice(b),
            Value::Nested(a) => netlink_packet_core::Emitable::emit(&a.as_slice(), buf),
        }
    }
}

/// One received attribute: its kind (flags masked) and its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Raw<'a> {
    pub kind: u16,
    pub bytes: &'a [u8],
}

/// The attributes in `buf`, checked for lengths that run past it.
pub fn parse(buf: &[u8]) -> Result<Vec<Raw<'_>>, DecodeError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= buf.len() {
        let len = usize::from(u16::from_ne_bytes([buf[at], buf[at + 1]]));
        let kind = u16::from_ne_bytes([buf[at + 2], buf[at + 3]]) & NLA_TYPE_MASK;
        if len < 4 || at + len > buf.len() {
            return Err(DecodeError::from(format!("attribute {kind} of {len} bytes at {at} runs past {}", buf.len())));
        }
        out.push(Raw { kind, bytes: &buf[at + 4..at + len] });
        at += (len + 3) & !3;
    }
    Ok(out)
}

impl<'a> Raw<'a> {
    fn fixed<const N: usize>(&self, what: &str) -> Result<[u8; N], DecodeError> {
        self.bytes
            .get(..N)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| DecodeError::from(format!("{what}: {} bytes, {N} expected", self.bytes.len())))
    }
    pub fn u8(&self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.fixed::<1>(what)?[0])
    }
    pub fn u16(&self, what: &str) -> Result<u16, DecodeError> {
        Ok(u16::from_ne_bytes(self.fixed(what)?))
    }
    pub fn be16(&self, what: &str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.fixed(what)?))
    }
    pub fn u32(&self, what: &str) -> Result<u32, DecodeError> {
        Ok(u32::from_ne_bytes(self.fixed(what)?))
    }
    pub fn be32(&self, what: &str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.fixed(what)?))
    }
    pub fn u64(&self, what: &str) -> Result<u64, DecodeError> {
        Ok(u64::from_ne_bytes(self.fixed(what)?))
    }
    /// A string up to its NUL (or the attribute's end).
    pub fn string(&self, what: &str) -> Result<String, DecodeError> {
        let end = self.bytes.iter().position(|&b| b == 0).unwrap_or(self.bytes.len());
        String::from_utf8(self.bytes[..end].to_vec()).map_err(|_| DecodeError::from(format!("{what}: not UTF-8")))
    }
    pub fn nested(&self) -> Result<Vec<Raw<'a>>, DecodeError> {
        parse(self.bytes)
    }
}
