//! The ICMP errors a director answers with, built as whole frames ready to
//! go back out of the interface the offending frame came in on.

use rlvs_wire::{
    checksum, icmp, ipv6, EtherType, EthernetFrame, EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet,
    Ipv6Repr,
};

/// How much of the offending datagram the error quotes: as the kernel's
/// icmp_send, what fits in a 576-byte datagram.
const QUOTE_MAX: usize = 576 - 20 - icmp::HEADER_LEN;

/// Builds the port-unreachable reply the kernel's ip_vs_leave sends when a
/// service has no usable real server: from the virtual address to the
/// client, link addresses swapped. None for frames that must not be answered
/// (not IPv4, ICMP itself, fragments after the first, broadcast sources).
pub fn port_unreachable(frame: &[u8]) -> Option<Vec<u8>> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.src_addr().is_multicast() {
        return None;
    }
    if eth.ethertype() == EtherType::Ipv6 {
        return port_unreachable_v6(&eth);
    }
    if eth.ethertype() != EtherType::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.protocol() == IpProtocol::Icmp
        || ip.frag_offset() != 0
        || ip.src_addr().is_broadcast()
        || ip.src_addr().is_multicast()
    {
        return None;
    }
    let original = &eth.payload()[..usize::from(ip.total_len()).min(QUOTE_MAX)];
    let repr = Ipv4Repr {
        src: ip.dst_addr(),
        dst: ip.src_addr(),
        protocol: IpProtocol::Icmp,
        payload_len: icmp::HEADER_LEN + original.len(),
        ttl: 64,
        ident: 0,
        dont_frag: false,
    };
    let mut out = vec![0u8; 14 + repr.buffer_len()];
    EthernetRepr { src: eth.dst_addr(), dst: eth.src_addr(), ethertype: EtherType::Ipv4 }.emit(&mut out);
    repr.emit(&mut out[14..]);
    icmp::emit_dest_unreachable(icmp::CODE_PORT_UNREACHABLE, original, &mut out[34..]);
    Some(out)
}

/// ICMPv6 destination unreachable, port unreachable (type 1 code 4),
/// quoting as much of the packet as fits the IPv6 minimum MTU.
fn port_unreachable_v6<T: AsRef<[u8]>>(eth: &EthernetFrame<T>) -> Option<Vec<u8>> {
    let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() == IpProtocol::Icmpv6 || ip.src_addr().is_multicast() || ip.src_addr().is_unspecified() {
        return None;
    }
    let original = &eth.payload()[..ip.total_len().min(1280 - 40 - 8)];
    let repr = Ipv6Repr {
        src: ip.dst_addr(),
        dst: ip.src_addr(),
        next_header: IpProtocol::Icmpv6,
        payload_len: 8 + original.len(),
        hop_limit: 64,
    };
    let mut out = vec![0u8; 14 + repr.buffer_len()];
    EthernetRepr { src: eth.dst_addr(), dst: eth.src_addr(), ethertype: EtherType::Ipv6 }.emit(&mut out);
    repr.emit(&mut out[14..]);
    let m = &mut out[54..];
    m[0] = 1;
    m[1] = 4;
    m[8..].copy_from_slice(original);
    let s = ipv6::pseudo_header(repr.src, repr.dst, 58, m.len() as u32) + checksum::sum(m);
    let c = !checksum::fold(s);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlvs_wire::icmp::IcmpPacket;

    fn syn_frame() -> Vec<u8> {
        let mut f = vec![0u8; 14];
        EthernetRepr {
            src: rlvs_wire::EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst: rlvs_wire::EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EtherType::Ipv4,
        }
        .emit(&mut f);
        let ip = Ipv4Repr {
            src: "10.1.1.10".parse().unwrap(),
            dst: "10.0.0.100".parse().unwrap(),
            protocol: IpProtocol::Tcp,
            payload_len: 20,
            ttl: 64,
            ident: 7,
            dont_frag: true,
        };
        f.resize(14 + ip.buffer_len(), 0);
        ip.emit(&mut f[14..]);
        f
    }

    #[test]
    fn answers_the_client_from_the_vip() {
        let f = syn_frame();
        let r = port_unreachable(&f).unwrap();
        let eth = EthernetFrame::new_checked(&r[..]).unwrap();
        assert_eq!(eth.dst_addr().0, [2, 0, 0, 0, 0, 1]);
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.src_addr().to_string(), "10.0.0.100");
        assert_eq!(ip.dst_addr().to_string(), "10.1.1.10");
        let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        assert_eq!(icmp.payload(), &f[14..]);
    }

    #[test]
    fn never_answers_icmp_or_garbage() {
        let mut f = syn_frame();
        f[14 + 9] = 1;
        assert!(port_unreachable(&f).is_none());
        assert!(port_unreachable(&f[..20]).is_none());
    }
}
