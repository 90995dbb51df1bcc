//! Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6)
//! for a new master's addresses, built as keepalived builds them and sent
//! through an AF_PACKET socket: an ARP request from the VIP for the VIP,
//! broadcast target; an NA to all-nodes with the override flag and the
//! interface's MAC as target link-layer address.

use rlvs_wire::{checksum, ipv6, ArpRepr, EtherType, EthernetAddress, EthernetRepr, IpProtocol, Ipv6Repr};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub struct Announcer {
    fd: OwnedFd,
}

impl Announcer {
    pub fn new() -> io::Result<Announcer> {
        // SAFETY: plain socket(2); protocol 0 sends only.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd we own.
        Ok(Announcer { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    pub fn announce(&self, ifindex: u32, mac: [u8; 6], addr: IpAddr) -> io::Result<()> {
        let frame = match addr {
            IpAddr::V4(a) => garp_frame(mac, a),
            IpAddr::V6(a) => na_frame(mac, a),
        };
        // SAFETY: zeroed sockaddr_ll is valid; fields set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        sll.sll_protocol = u16::from_be_bytes([frame[12], frame[13]]).to_be();
        // SAFETY: frame and sll are live for the call.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of_val(&sll) as u32,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

pub fn garp_frame(mac: [u8; 6], vip: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 28];
    EthernetRepr { src: EthernetAddress(mac), dst: EthernetAddress::BROADCAST, ethertype: EtherType::Arp }.emit(&mut f);
    let mut arp = ArpRepr::gratuitous(EthernetAddress(mac), vip);
    // keepalived puts the broadcast address in the target hardware field.
    arp.target_hardware_addr = EthernetAddress::BROADCAST;
    arp.emit(&mut f[14..]);
    f
}

pub fn na_frame(mac: [u8; 6], vip: Ipv6Addr) -> Vec<u8> {
    const NA_LEN: usize = 24 + 8;
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut f = vec![0u8; 14 + 40 + NA_LEN];
    EthernetRepr {
        src: EthernetAddress(mac),
        dst: EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
        ethertype: EtherType::Ipv6,
    }
    .emit(&mut f);
    Ipv6Repr { src: vip, dst: all_nodes, next_header: IpProtocol::Icmpv6, payload_len: NA_LEN, hop_limit: 255 }
        .emit(&mut f[14..]);
    let icmp = &mut f[54..];
    icmp[0] = 136; // neighbour advertisement
    icmp[4] = 0x20; // override
    icmp[8..24].copy_from_slice(&vip.octets());
    icmp[24] = 2; // target link-layer address option
    icmp[25] = 1;
    icmp[26..32].copy_from_slice(&mac);
    let sum = checksum::sum(icmp) + u32::from(checksum::fold(ipv6::pseudo_header(vip, all_nodes, 58, NA_LEN as u32)));
    let c = !checksum::fold(sum);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garp_is_a_request_from_the_vip_for_the_vip() {
        let f = garp_frame([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(&f[..6], &[0xff; 6]);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[20..22], &[0, 1], "request");
        assert_eq!(&f[28..32], &[10, 0, 0, 100]);
        assert_eq!(&f[38..42], &[10, 0, 0, 100]);
    }

    #[test]
    fn na_checksum_is_valid() {
        let vip: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let f = na_frame([2, 0, 0, 0, 0, 1], vip);
        let icmp = &f[54..];
        let all = "ff02::1".parse().unwrap();
        let s = checksum::sum(icmp) + u32::from(checksum::fold(ipv6::pseudo_header(vip, all, 58, icmp.len() as u32)));
        assert_eq!(checksum::fold(s), 0xffff);
    }
}
