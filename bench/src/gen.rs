//! A UDP frame blaster: prebuilt 64-byte frames (one per flow) pushed
//! through an AF_PACKET socket with sendmmsg, bounded in time and count.
//! It refuses to run in the host's own network namespace.

use anyhow::{bail, Result};
use rlvs_wire::{
    EtherType, EthernetAddress, EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr, TcpFlags, TcpPacket, TcpRepr,
    UdpPacket, UdpRepr,
};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

pub struct GenArgs {
    pub ifname: String,
    pub src_mac: EthernetAddress,
    pub dst_mac: EthernetAddress,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub dport: u16,
    pub flows: u16,
    pub seconds: f64,
    pub max_packets: u64,
    /// TCP SYNs, each from a new (source address, port), instead of UDP.
    pub syn: bool,
    /// UDP datagrams, each from a new (source address, port): a new
    /// connection each (the sync benchmark).
    pub new_udp: bool,
    /// At most this many frames a second (0: as fast as it goes).
    pub rate: u64,
    /// Where the sequence of new sources starts, so that runs do not repeat.
    pub first: u64,
    /// Frames each new source sends, back to back (the kernel announces a
    /// connection at its third packet: one-packet flows are never synced).
    pub per_flow: u64,
    /// New sources are spoofed from this many addresses of 100.64.0.0/10
    /// (0: 10.2.0.2-250), the port moving on each round.
    pub spoofed: u32,
}

/// A 60-byte UDP datagram (42 bytes and Ethernet padding) from `src`:`sport`.
fn udp_frame(a: &GenArgs, src: Ipv4Addr, sport: u16, f: &mut [u8]) {
    let udp = UdpRepr { src_port: sport, dst_port: a.dport, payload_len: 0 };
    let ip = Ipv4Repr {
        src,
        dst: a.dst,
        protocol: IpProtocol::Udp,
        payload_len: udp.buffer_len(),
        ttl: 64,
        ident: sport,
        dont_frag: false,
    };
    f.fill(0);
    EthernetRepr { src: a.src_mac, dst: a.dst_mac, ethertype: EtherType::Ipv4 }.emit(f);
    ip.emit(&mut f[14..]);
    udp.emit(&mut f[34..42]);
    UdpPacket::new_checked(&mut f[34..42]).unwrap().fill_checksum_v4(src, a.dst);
}

/// A 60-byte SYN (54 bytes and Ethernet padding) from `src`:`sport`.
fn syn_frame(a: &GenArgs, src: Ipv4Addr, sport: u16, f: &mut [u8]) {
    let tcp =
        TcpRepr { src_port: sport, dst_port: a.dport, seq: 1, ack: 0, flags: TcpFlags(TcpFlags::SYN), window: 64240 };
    let ip = Ipv4Repr {
        src,
        dst: a.dst,
        protocol: IpProtocol::Tcp,
        payload_len: 20,
        ttl: 64,
        ident: sport,
        dont_frag: true,
    };
    f.fill(0);
    EthernetRepr { src: a.src_mac, dst: a.dst_mac, ethertype: EtherType::Ipv4 }.emit(f);
    ip.emit(&mut f[14..]);
    tcp.emit(&mut f[34..54]);
    TcpPacket::new_checked(&mut f[34..54]).unwrap().fill_checksum_v4(src, a.dst);
}

/// Frames of 64 bytes on the wire without FCS: 14 + 20 + 8 + 18 payload.
fn frames(a: &GenArgs) -> Vec<Vec<u8>> {
    (0..a.flows)
        .map(|i| {
            let payload = 18;
            let udp = UdpRepr { src_port: 10000 + i, dst_port: a.dport, payload_len: payload };
            let ip = Ipv4Repr {
                src: a.src,
                dst: a.dst,
                protocol: IpProtocol::Udp,
                payload_len: udp.buffer_len(),
                ttl: 64,
                ident: i,
                dont_frag: false,
            };
            let mut f = vec![0u8; 14 + ip.buffer_len()];
            EthernetRepr { src: a.src_mac, dst: a.dst_mac, ethertype: EtherType::Ipv4 }.emit(&mut f);
            ip.emit(&mut f[14..]);
            udp.emit(&mut f[34..]);
            let mut u = UdpPacket::new_checked(&mut f[34..]).unwrap();
            u.fill_checksum_v4(a.src, a.dst);
            debug_assert!(Ipv4Packet::new_checked(&f[14..]).unwrap().verify_checksum());
            f
        })
        .collect()
}

pub fn run(a: GenArgs) -> Result<u64> {
    if rlvs_dataplane::iface::in_initial_netns() {
        bail!("the generator sends raw frames and only runs inside a network namespace");
    }
    let ifindex =
        rlvs_dataplane::iface::index_of(&a.ifname).ok_or_else(|| anyhow::anyhow!("no interface {}", a.ifname))?;
    // SAFETY: plain socket(2); closed at the end.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
    if fd < 0 {
        bail!("AF_PACKET socket: {}", std::io::Error::last_os_error());
    }
    let one: i32 = 1;
    // SAFETY: PACKET_QDISC_BYPASS takes an int.
    unsafe { libc::setsockopt(fd, libc::SOL_PACKET, 20, &one as *const i32 as *const libc::c_void, 4) };
    let fresh = a.syn || a.new_udp;
    let mut frames = if fresh { vec![vec![0u8; 60]; 64] } else { frames(&a) };
    // New sources: 10.2.0.2-250, every port from 1024 up: 16 million
    // connections before one repeats.
    let mut tuple: u64 = a.first;
    let started = Instant::now();
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = ifindex as i32;
    sll.sll_halen = 6;
    sll.sll_addr[..6].copy_from_slice(&a.dst_mac.0);
    const BATCH: usize = 64;
    let mut iovs: Vec<libc::iovec> = Vec::with_capacity(BATCH);
    let mut msgs: Vec<libc::mmsghdr> = Vec::with_capacity(BATCH);
    let deadline = Instant::now() + Duration::from_secs_f64(a.seconds);
    let (mut sent, mut next) = (0u64, 0usize);
    while Instant::now() < deadline && sent < a.max_packets {
        iovs.clear();
        msgs.clear();
        for _ in 0..(BATCH as u64).min(a.max_packets - sent) {
            let f = if fresh {
                let f = &mut frames[next];
                next = (next + 1) % 64;
                let flow = tuple / a.per_flow.max(1);
                let (src, port) = if a.spoofed > 0 {
                    let n = u64::from(a.spoofed.min(1 << 22));
                    let host = u32::from(Ipv4Addr::new(100, 64, 0, 0)) + (flow % n) as u32;
                    (Ipv4Addr::from(host), 1024 + (flow / n % 64512) as u16)
                } else {
                    (Ipv4Addr::new(10, 2, 0, 2 + (flow / 64512 % 249) as u8), 1024 + (flow % 64512) as u16)
                };
                tuple += 1;
                if a.syn {
                    syn_frame(&a, src, port, f);
                } else {
                    udp_frame(&a, src, port, f);
                }
                f
            } else {
                let f = &mut frames[next];
                next = (next + 1) % a.flows as usize;
                f
            };
            iovs.push(libc::iovec { iov_base: f.as_mut_ptr() as *mut libc::c_void, iov_len: f.len() });
        }
        for iov in iovs.iter_mut() {
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_name = &mut sll as *mut _ as *mut libc::c_void;
            m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
            msgs.push(m);
        }
        // SAFETY: msgs and the frames they point to are live.
        let r = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), msgs.len() as u32, 0) };
        if r > 0 {
            sent += r as u64;
        }
        if a.rate > 0 {
            let due = Duration::from_secs_f64(sent as f64 / a.rate as f64);
            if let Some(ahead) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(ahead);
            }
        }
    }
    // SAFETY: closing our fd.
    unsafe { libc::close(fd) };
    Ok(sent)
}
