//! IP tunnelling (`-i`): the client's packet, unchanged, inside an outer
//! IPv4 header from the director to the real server — plain IPIP, or GUE
//! (a UDP header and a 4-byte GUE header before the inner packet, with or
//! without a UDP checksum, as `--tun-type gue --tun-port P
//! [--tun-csum|--tun-nocsum]`).
//!
//! Size: the outer headers make a full-size packet too big for the link.
//! Like the kernel's tunnel transmitter, rlvs answers a too-big packet that
//! may not be fragmented with ICMP fragmentation-needed, advertising the
//! link MTU less the tunnel overhead; the client's path-MTU discovery then
//! sends smaller segments. Clamping the MSS of SYNs would not help: in TUN
//! mode the real server's SYN-ACK, which sets the client's MSS, never passes
//! the director.
//! TSO super-frames arriving from the client side are cut into segments of
//! their GSO size in software before wrapping, since a virtio-net header
//! cannot describe segmentation inside a tunnel.

use rlvs_wire::{checksum, icmp, IpProtocol, Ipv4Packet, Ipv4Repr, TcpPacket, UdpPacket, UdpRepr};
use std::net::Ipv4Addr;

pub const IPIP_OVERHEAD: usize = 20;
pub const GUE_OVERHEAD: usize = 20 + 8 + 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunKind {
    Ipip,
    Gue { port: u16, csum: bool },
}

impl TunKind {
    /// From ipvsadm's tunnel settings (type 0 ipip, 1 gue; flags 1 = csum).
    pub fn from_config(tun_type: u8, tun_port: u16, tun_flags: u16) -> Option<TunKind> {
        match tun_type {
            0 => Some(TunKind::Ipip),
            1 => Some(TunKind::Gue { port: tun_port, csum: tun_flags == 1 }),
            _ => None,
        }
    }

    pub fn overhead(self) -> usize {
        match self {
            TunKind::Ipip => IPIP_OVERHEAD,
            TunKind::Gue { .. } => GUE_OVERHEAD,
        }
    }
}

/// Completes the transport checksum of a packet whose checksum was left to
/// the device (checksum-partial), so it can travel inside a tunnel.
pub fn finish_checksum(l3: &mut [u8]) -> Result<(), rlvs_wire::Error> {
    let mut ip = Ipv4Packet::new_checked(&mut *l3)?;
    let (s, d, proto) = (ip.src_addr(), ip.dst_addr(), ip.protocol());
    match proto {
        IpProtocol::Tcp => TcpPacket::new_checked(ip.payload_mut())?.fill_checksum_v4(s, d),
        IpProtocol::Udp => UdpPacket::new_checked(ip.payload_mut())?.fill_checksum_v4(s, d),
        _ => {}
    }
    Ok(())
}

/// Cuts a TCP/IPv4 GSO packet into segments carrying at most `mss` bytes
/// each, as the kernel's software GSO does: IP ids counting up, sequence
/// numbers advancing, FIN and PSH only on the last, complete checksums.
pub fn segment_tcp_v4(l3: &[u8], mss: usize, out: &mut Vec<Vec<u8>>) -> Result<(), rlvs_wire::Error> {
    let ip = Ipv4Packet::new_checked(l3)?;
    if ip.protocol() != IpProtocol::Tcp || mss == 0 {
        return Err(rlvs_wire::Error::Malformed);
    }
    let ihl = ip.header_len();
    let tcp = TcpPacket::new_checked(ip.payload())?;
    let thl = tcp.header_len();
    let hdrs = ihl + thl;
    let total = usize::from(ip.total_len());
    let payload = &l3[hdrs..total];
    let (s, d, id0, seq0, flags) = (ip.src_addr(), ip.dst_addr(), ip.ident(), tcp.seq_number(), tcp.flags().0);
    let n = payload.len().div_ceil(mss).max(1);
    for (i, chunk) in payload.chunks(mss).enumerate().chain((payload.is_empty()).then_some((0, &payload[..0]))) {
        let mut seg = Vec::with_capacity(hdrs + chunk.len());
        seg.extend_from_slice(&l3[..hdrs]);
        seg.extend_from_slice(chunk);
        let len = seg.len() as u16;
        seg[2..4].copy_from_slice(&len.to_be_bytes());
        seg[4..6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
        let last = i + 1 == n;
        let mut f = flags;
        if !last {
            f &= !(rlvs_wire::TcpFlags::FIN | rlvs_wire::TcpFlags::PSH);
        }
        seg[ihl + 13] = f;
        let mut ipp = Ipv4Packet::new_checked(&mut seg[..])?;
        ipp.fill_checksum();
        let mut t = TcpPacket::new_checked(ipp.payload_mut())?;
        t.set_seq_number(seq0.wrapping_add((i * mss) as u32));
        t.fill_checksum_v4(s, d);
        out.push(seg);
    }
    Ok(())
}

/// Wraps one IPv4 packet for the real server: appends the outer headers and
/// the packet to `out` (which holds whatever link-layer room the caller put
/// there first).
pub fn encapsulate(
    inner: &[u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    kind: TunKind,
    ident: u16,
    out: &mut Vec<u8>,
) -> Result<(), rlvs_wire::Error> {
    let ip = Ipv4Packet::new_checked(inner)?;
    let inner = &inner[..usize::from(ip.total_len())];
    let (protocol, l4_len) = match kind {
        TunKind::Ipip => (IpProtocol::IpIp, 0),
        TunKind::Gue { .. } => (IpProtocol::Udp, 8 + 4),
    };
    let outer = Ipv4Repr {
        src,
        dst,
        protocol,
        payload_len: l4_len + inner.len(),
        ttl: ip.ttl(),
        ident,
        dont_frag: ip.dont_frag(),
    };
    let start = out.len();
    out.resize(start + outer.buffer_len(), 0);
    outer.emit(&mut out[start..]);
    // The inner packet's TOS/DSCP travels outside too.
    out[start + 1] = ip.dscp_ecn();
    Ipv4Packet::new_checked(&mut out[start..])?.fill_checksum();
    if let TunKind::Gue { port, csum } = kind {
        let u = start + 20;
        UdpRepr { src_port: port, dst_port: port, payload_len: 4 + inner.len() }.emit(&mut out[u..]);
        // GUE variant 0, no options: version 0, C 0, hlen 0, proto IPIP.
        out[u + 8..u + 12].copy_from_slice(&[0, 4, 0, 0]);
        out[u + 12..].copy_from_slice(inner);
        if csum {
            UdpPacket::new_checked(&mut out[u..])?.fill_checksum_v4(src, dst);
        }
    } else {
        out[start + 20..].copy_from_slice(inner);
    }
    Ok(())
}

/// ICMP fragmentation-needed for a packet that cannot fit the tunnel,
/// advertising `mtu` for the inner path. Returns the ICMP message (IPv4
/// header included), from the packet's destination to its source.
pub fn frag_needed(l3: &[u8], mtu: u16) -> Option<Vec<u8>> {
    let ip = Ipv4Packet::new_checked(l3).ok()?;
    let quote = &l3[..usize::from(ip.total_len()).min(576 - 20 - icmp::HEADER_LEN)];
    let repr = Ipv4Repr {
        src: ip.dst_addr(),
        dst: ip.src_addr(),
        protocol: IpProtocol::Icmp,
        payload_len: icmp::HEADER_LEN + quote.len(),
        ttl: 64,
        ident: 0,
        dont_frag: false,
    };
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut out);
    icmp::emit_dest_unreachable(4, quote, &mut out[20..]);
    // Next-hop MTU in the second half of the unused word.
    out[26..28].copy_from_slice(&mtu.to_be_bytes());
    out[22..24].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&out[20..]);
    out[22..24].copy_from_slice(&c.to_be_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlvs_wire::{TcpFlags, TcpRepr};

    fn tcp(payload: usize, flags: u8) -> Vec<u8> {
        let ip = Ipv4Repr {
            src: Ipv4Addr::new(10, 1, 1, 10),
            dst: Ipv4Addr::new(10, 0, 0, 100),
            protocol: IpProtocol::Tcp,
            payload_len: 24 + payload,
            ttl: 64,
            ident: 100,
            dont_frag: true,
        };
        let mut b = vec![0u8; ip.buffer_len()];
        ip.emit(&mut b);
        TcpRepr { src_port: 1, dst_port: 80, seq: 1000, ack: 5, flags: TcpFlags(flags), window: 100 }
            .emit(&mut b[20..]);
        b[32] = 6 << 4; // data offset 24: one MSS option
        b[40..44].copy_from_slice(&[2, 4, 0x05, 0xb4]);
        for (i, x) in b[44..].iter_mut().enumerate() {
            *x = i as u8;
        }
        TcpPacket::new_checked(&mut b[20..]).unwrap().fill_checksum_v4(ip.src, ip.dst);
        b
    }

    #[test]
    fn gso_frame_is_cut_into_valid_segments() {
        let big = tcp(3000, TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN);
        let mut segs = Vec::new();
        segment_tcp_v4(&big, 1400, &mut segs).unwrap();
        assert_eq!(segs.len(), 3);
        let mut data = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            let ip = Ipv4Packet::new_checked(&s[..]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(ip.ident(), 100 + i as u16);
            let t = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(t.verify_checksum_v4(ip.src_addr(), ip.dst_addr()));
            assert_eq!(t.seq_number(), 1000 + 1400 * i as u32);
            assert_eq!(t.flags().fin(), i == 2);
            data.extend_from_slice(t.payload());
        }
        assert_eq!(data, big[44..]);
    }

    #[test]
    fn ipip_and_gue_wrap_the_packet() {
        let inner = tcp(10, TcpFlags::ACK);
        let (src, dst) = (Ipv4Addr::new(10, 1, 1, 243), Ipv4Addr::new(10, 1, 1, 244));
        let mut out = Vec::new();
        encapsulate(&inner, src, dst, TunKind::Ipip, 9, &mut out).unwrap();
        let o = Ipv4Packet::new_checked(&out[..]).unwrap();
        assert!(o.verify_checksum());
        assert_eq!((o.protocol(), o.src_addr(), o.dst_addr()), (IpProtocol::IpIp, src, dst));
        assert_eq!(o.payload(), &inner[..]);
        let mut g = Vec::new();
        encapsulate(&inner, src, dst, TunKind::Gue { port: 6080, csum: true }, 9, &mut g).unwrap();
        let o = Ipv4Packet::new_checked(&g[..]).unwrap();
        let u = UdpPacket::new_checked(o.payload()).unwrap();
        assert_eq!(u.dst_port(), 6080);
        assert!(u.checksum() != 0 && u.verify_checksum_v4(src, dst));
        assert_eq!(&u.payload()[..4], &[0, 4, 0, 0]);
        assert_eq!(&u.payload()[4..], &inner[..]);
    }

    #[test]
    fn frag_needed_advertises_the_mtu() {
        let p = tcp(1500, TcpFlags::ACK);
        let m = frag_needed(&p, 1480).unwrap();
        let ip = Ipv4Packet::new_checked(&m[..]).unwrap();
        let i = icmp::IcmpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((i.msg_type(), i.code()), (3, 4));
        assert!(i.verify_checksum());
        assert_eq!(&ip.payload()[6..8], &1480u16.to_be_bytes());
    }
}
