//! What TCP and UDP headers share: the two ports in front, and a checksum
//! at the protocol's own offset. NAT rewrites them alike.

use crate::{be16, put16, Error, IpProtocol, Result};

/// A view of a TCP or UDP header's ports and checksum. `new_checked`
/// guarantees the buffer reaches past the checksum field.
#[derive(Debug)]
pub struct Transport<T: AsRef<[u8]>> {
    buffer: T,
    checksum_at: usize,
}

impl<T: AsRef<[u8]>> Transport<T> {
    pub fn new_checked(buffer: T, protocol: IpProtocol) -> Result<Self> {
        let checksum_at = match protocol {
            IpProtocol::Tcp => 16,
            IpProtocol::Udp => 6,
            _ => return Err(Error::Malformed),
        };
        if buffer.as_ref().len() < checksum_at + 2 {
            return Err(Error::Truncated);
        }
        Ok(Transport { buffer, checksum_at })
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), self.checksum_at)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Transport<T> {
    /// Sets a port and leaves the checksum to the caller.
    pub fn set_src_port(&mut self, p: u16) {
        put16(self.buffer.as_mut(), 0, p);
    }
    /// As [`Transport::set_src_port`].
    pub fn set_dst_port(&mut self, p: u16) {
        put16(self.buffer.as_mut(), 2, p);
    }
    pub fn set_checksum(&mut self, v: u16) {
        let at = self.checksum_at;
        put16(self.buffer.as_mut(), at, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_sits_where_the_protocol_puts_it() {
        let mut b = [0u8; 20];
        let mut t = Transport::new_checked(&mut b[..], IpProtocol::Udp).unwrap();
        t.set_checksum(0xbeef);
        t.set_dst_port(53);
        assert_eq!((t.checksum(), t.dst_port()), (0xbeef, 53));
        assert_eq!(&b[6..8], &[0xbe, 0xef]);
        assert!(Transport::new_checked(&b[..17], IpProtocol::Tcp).is_err());
        assert!(Transport::new_checked(&b[..], IpProtocol::Other(1)).is_err());
    }
}
