//! ARP for IPv4 over Ethernet (RFC 826).

use crate::{be16, put16, Error, EthernetAddress, Result};
use std::net::Ipv4Addr;

pub const PACKET_LEN: usize = 28;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOperation {
    Request,
    Reply,
    Other(u16),
}

impl From<u16> for ArpOperation {
    fn from(v: u16) -> Self {
        match v {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            o => ArpOperation::Other(o),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(v: ArpOperation) -> u16 {
        match v {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Other(o) => o,
        }
    }
}

/// A view of an Ethernet/IPv4 ARP packet; other hardware or protocol types
/// are rejected by `new_checked`.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        if be16(b, 0) != 1 || be16(b, 2) != 0x0800 || b[4] != 6 || b[5] != 4 {
            return Err(Error::Malformed);
        }
        Ok(ArpPacket { buffer })
    }

    pub fn operation(&self) -> ArpOperation {
        be16(self.buffer.as_ref(), 6).into()
    }

    pub fn sender_hardware_addr(&self) -> EthernetAddress {
        EthernetAddress(self.buffer.as_ref()[8..14].try_into().unwrap())
    }

    pub fn sender_protocol_addr(&self) -> Ipv4Addr {
        let b: [u8; 4] = self.buffer.as_ref()[14..18].try_into().unwrap();
        b.into()
    }

    pub fn target_hardware_addr(&self) -> EthernetAddress {
        EthernetAddress(self.buffer.as_ref()[18..24].try_into().unwrap())
    }

    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        let b: [u8; 4] = self.buffer.as_ref()[24..28].try_into().unwrap();
        b.into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    pub operation: ArpOperation,
    pub sender_hardware_addr: EthernetAddress,
    pub sender_protocol_addr: Ipv4Addr,
    pub target_hardware_addr: EthernetAddress,
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &ArpPacket<T>) -> Self {
        ArpRepr {
            operation: p.operation(),
            sender_hardware_addr: p.sender_hardware_addr(),
            sender_protocol_addr: p.sender_protocol_addr(),
            target_hardware_addr: p.target_hardware_addr(),
            target_protocol_addr: p.target_protocol_addr(),
        }
    }

    /// A gratuitous ARP announcing that `ip` is at `mac`.
    pub fn gratuitous(mac: EthernetAddress, ip: Ipv4Addr) -> Self {
        ArpRepr {
            operation: ArpOperation::Request,
            sender_hardware_addr: mac,
            sender_protocol_addr: ip,
            target_hardware_addr: EthernetAddress::ZERO,
            target_protocol_addr: ip,
        }
    }

    pub fn emit(&self, buf: &mut [u8]) {
        put16(buf, 0, 1);
        put16(buf, 2, 0x0800);
        buf[4] = 6;
        buf[5] = 4;
        put16(buf, 6, self.operation.into());
        buf[8..14].copy_from_slice(&self.sender_hardware_addr.0);
        buf[14..18].copy_from_slice(&self.sender_protocol_addr.octets());
        buf[18..24].copy_from_slice(&self.target_hardware_addr.0);
        buf[24..28].copy_from_slice(&self.target_protocol_addr.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::captures::ARP_REQUEST_FOR_VIP;
    use crate::EthernetFrame;

    #[test]
    fn parses_captured_request() {
        let f = EthernetFrame::new_checked(ARP_REQUEST_FOR_VIP).unwrap();
        let p = ArpPacket::new_checked(f.payload()).unwrap();
        let r = ArpRepr::parse(&p);
        assert_eq!(r.operation, ArpOperation::Request);
        assert_eq!(r.sender_protocol_addr, Ipv4Addr::new(10, 1, 1, 10));
        assert_eq!(r.target_protocol_addr, Ipv4Addr::new(10, 0, 0, 100));
        let mut out = [0u8; PACKET_LEN];
        r.emit(&mut out);
        assert_eq!(&out[..], &f.payload()[..PACKET_LEN]);
    }

    #[test]
    fn rejects_non_ethernet_ipv4() {
        let mut b = [0u8; 28];
        b[1] = 6; // hardware type 6 (IEEE 802)
        assert_eq!(ArpPacket::new_checked(&b[..]).unwrap_err(), Error::Malformed);
        assert_eq!(ArpPacket::new_checked(&b[..10]).unwrap_err(), Error::Truncated);
    }
}
