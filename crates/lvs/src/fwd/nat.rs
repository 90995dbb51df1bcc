//! Masquerading (NAT): requests get the real server's address and port as
//! destination, replies get the virtual address and port back as source.
//!
//! Frames may carry an unfinished transport checksum (CHECKSUM_PARTIAL, what
//! veth and GSO hand out): the checksum field then holds the folded
//! pseudo-header sum, which the device completes over the segment later. So
//! an address change is applied to that sum (not complemented), and a port
//! change needs no update at all — the completion covers the new port.
//! Complete checksums get the ordinary RFC 1624 update for both.

use rlvs_wire::{checksum, ipv6, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket, Transport, UdpPacket};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Which side of the packet changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Destination,
}

/// Rewrites one side's address and port of a TCP or UDP packet in place.
/// `partial` says the transport checksum is a pseudo-header sum to be
/// completed later (virtio-net NEEDS_CSUM).
pub fn rewrite_v4(l3: &mut [u8], side: Side, addr: Ipv4Addr, port: u16, partial: bool) -> Result<(), rlvs_wire::Error> {
    let mut ip = Ipv4Packet::new_checked(&mut *l3)?;
    let proto = ip.protocol();
    let old_addr = match side {
        Side::Source => ip.src_addr(),
        Side::Destination => ip.dst_addr(),
    };
    match side {
        Side::Source => ip.set_src_addr(addr),
        Side::Destination => ip.set_dst_addr(addr),
    }
    let l4 = ip.payload_mut();
    if partial {
        let mut t = Transport::new_checked(l4, proto)?;
        match side {
            Side::Source => t.set_src_port(port),
            Side::Destination => t.set_dst_port(port),
        }
        let updated = !checksum::update32(!t.checksum(), old_addr.into(), addr.into());
        t.set_checksum(updated);
        return Ok(());
    }
    match proto {
        IpProtocol::Tcp => {
            let mut t = TcpPacket::new_checked(l4)?;
            t.adjust_checksum_for_addr(old_addr, addr);
            match side {
                Side::Source => t.set_src_port(port),
                Side::Destination => t.set_dst_port(port),
            }
        }
        _ => {
            let mut u = UdpPacket::new_checked(l4)?;
            u.adjust_checksum_for_addr(old_addr, addr);
            match side {
                Side::Source => u.set_src_port(port),
                Side::Destination => u.set_dst_port(port),
            }
        }
    }
    Ok(())
}

/// As [`rewrite_v4`] for an IPv6 packet (no extension headers): IPv6 has
/// no header checksum, the transport checksum covers the 128-bit address.
pub fn rewrite_v6(l3: &mut [u8], side: Side, addr: Ipv6Addr, port: u16, partial: bool) -> Result<(), rlvs_wire::Error> {
    let mut ip = Ipv6Packet::new_checked(&mut *l3)?;
    let proto = ip.next_header();
    let old = match side {
        Side::Source => ip.src_addr(),
        Side::Destination => ip.dst_addr(),
    };
    match side {
        Side::Source => ip.set_src_addr(addr),
        Side::Destination => ip.set_dst_addr(addr),
    }
    let mut t = Transport::new_checked(ip.payload_mut(), proto)?;
    let old_port = match side {
        Side::Source => t.src_port(),
        Side::Destination => t.dst_port(),
    };
    match side {
        Side::Source => t.set_src_port(port),
        Side::Destination => t.set_dst_port(port),
    }
    let field = t.checksum();
    let updated = if partial {
        !ipv6::update_checksum_addr(!field, old, addr)
    } else {
        let c = ipv6::update_checksum_addr(field, old, addr);
        let c = checksum::update16(c, old_port, port);
        if proto == IpProtocol::Udp && c == 0 {
            0xffff
        } else {
            c
        }
    };
    t.set_checksum(updated);
    Ok(())
}

/// Either family: rewrites one side of an IPv4 or IPv6 packet; the address
/// must be of the packet's family.
pub fn rewrite(l3: &mut [u8], side: Side, addr: IpAddr, port: u16, partial: bool) -> Result<(), rlvs_wire::Error> {
    match addr {
        IpAddr::V4(a) => rewrite_v4(l3, side, a, port, partial),
        IpAddr::V6(a) => rewrite_v6(l3, side, a, port, partial),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlvs_wire::{Ipv4Repr, TcpFlags, TcpRepr};

    fn segment() -> Vec<u8> {
        let ip = Ipv4Repr {
            src: Ipv4Addr::new(10, 1, 1, 10),
            dst: Ipv4Addr::new(10, 0, 0, 100),
            protocol: IpProtocol::Tcp,
            payload_len: 25,
            ttl: 64,
            ident: 1,
            dont_frag: true,
        };
        let mut b = vec![0u8; ip.buffer_len()];
        ip.emit(&mut b);
        TcpRepr { src_port: 40000, dst_port: 80, seq: 7, ack: 0, flags: TcpFlags(TcpFlags::SYN), window: 100 }
            .emit(&mut b[20..]);
        b[40..].copy_from_slice(b"hello");
        let (s, d) = (ip.src, ip.dst);
        TcpPacket::new_checked(&mut b[20..]).unwrap().fill_checksum_v4(s, d);
        b
    }

    #[test]
    fn complete_checksums_stay_valid_both_ways() {
        let mut b = segment();
        let rip = Ipv4Addr::new(192, 168, 100, 2);
        rewrite_v4(&mut b, Side::Destination, rip, 8080, false).unwrap();
        let ip = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(ip.verify_checksum());
        let t = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(t.dst_port(), 8080);
        assert!(t.verify_checksum_v4(ip.src_addr(), rip));
        rewrite_v4(&mut b, Side::Source, Ipv4Addr::new(10, 0, 0, 100), 80, false).unwrap();
        let ip = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(TcpPacket::new_checked(ip.payload()).unwrap().verify_checksum_v4(ip.src_addr(), ip.dst_addr()));
    }

    #[test]
    fn partial_checksum_becomes_right_once_completed() {
        // Build the partial form as a sender's stack does: the field holds
        // the folded pseudo-header sum of the original addresses.
        let mut b = segment();
        let len = (b.len() - 20) as u16;
        let pseudo = |s: Ipv4Addr, d: Ipv4Addr| checksum::fold(checksum::pseudo_header_v4(s, d, 6, len));
        let p = pseudo(Ipv4Addr::new(10, 1, 1, 10), Ipv4Addr::new(10, 0, 0, 100));
        b[36..38].copy_from_slice(&p.to_be_bytes());
        let rip = Ipv4Addr::new(192, 168, 100, 2);
        rewrite_v4(&mut b, Side::Destination, rip, 8080, true).unwrap();
        // What the device does: complete over the segment from the field.
        let field = u16::from_be_bytes([b[36], b[37]]);
        assert_eq!(field, pseudo(Ipv4Addr::new(10, 1, 1, 10), rip), "pseudo sum follows the address");
        b[36..38].copy_from_slice(&[0, 0]);
        let done = !checksum::fold(checksum::sum(&b[20..]) + u32::from(field));
        b[36..38].copy_from_slice(&done.to_be_bytes());
        let ip = Ipv4Packet::new_checked(&b[..]).unwrap();
        let t = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(t.dst_port(), 8080);
        assert!(t.verify_checksum_v4(ip.src_addr(), rip));
    }
}

#[cfg(test)]
mod v6_tests {
    use super::*;
    use rlvs_wire::{Ipv6Repr, TcpFlags, TcpRepr};

    #[test]
    fn v6_rewrite_keeps_the_checksum_valid() {
        let src: Ipv6Addr = "2001:db8:1::10".parse().unwrap();
        let vip: Ipv6Addr = "2001:db8:100::100".parse().unwrap();
        let r = Ipv6Repr { src, dst: vip, next_header: IpProtocol::Tcp, payload_len: 20, hop_limit: 64 };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut b);
        TcpRepr { src_port: 4000, dst_port: 80, seq: 1, ack: 0, flags: TcpFlags(TcpFlags::SYN), window: 9 }
            .emit(&mut b[40..]);
        TcpPacket::new_checked(&mut b[40..]).unwrap().fill_checksum_v6(src, vip);
        let rip: Ipv6Addr = "fd00:2::2".parse().unwrap();
        rewrite_v6(&mut b, Side::Destination, rip, 8080, false).unwrap();
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        let t = TcpPacket::new_checked(p.payload()).unwrap();
        assert_eq!((p.dst_addr(), t.dst_port()), (rip, 8080));
        assert!(t.verify_checksum_v6(src, rip));
    }
}
