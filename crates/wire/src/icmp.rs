//! ICMPv4 (RFC 792): the destination-unreachable messages a director sends.

use crate::{checksum, put16, Error, Result};

pub const HEADER_LEN: usize = 8;
pub const TYPE_DEST_UNREACHABLE: u8 = 3;
pub const CODE_PORT_UNREACHABLE: u8 = 3;

/// A view of an ICMP message.
#[derive(Debug, Clone)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(IcmpPacket { buffer })
    }
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }
    /// The quoted datagram of an error message.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

/// Writes a destination-unreachable message quoting `original` (its IP
/// header and the start of its payload) into `buf`, which must hold
/// `HEADER_LEN + original.len()` bytes.
pub fn emit_dest_unreachable(code: u8, original: &[u8], buf: &mut [u8]) {
    buf[0] = TYPE_DEST_UNREACHABLE;
    buf[1] = code;
    put16(buf, 2, 0);
    buf[4..8].fill(0);
    buf[HEADER_LEN..HEADER_LEN + original.len()].copy_from_slice(original);
    let c = checksum::checksum(&buf[..HEADER_LEN + original.len()]);
    put16(buf, 2, c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::captures::CURL_SYN;

    #[test]
    fn port_unreachable_quotes_and_checksums() {
        let orig = &CURL_SYN[14..14 + 28];
        let mut buf = vec![0u8; HEADER_LEN + orig.len()];
        emit_dest_unreachable(CODE_PORT_UNREACHABLE, orig, &mut buf);
        let p = IcmpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!((p.msg_type(), p.code()), (3, 3));
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), orig);
    }
}
