//! What the engine does with each received frame once the director has
//! decided: direct routing (MACs only), NAT (addresses and ports, then
//! MACs), NAT replies back to the client by the link they came in on, and
//! ICMP port unreachable when no real server can take a connection. Frames
//! are rewritten in place in the ring and queued for one batched send.

use crate::afpacket::{self, BlockConsumer, RxFrame, TxBatch, PACKET_HOST};

/// Where frames go out: AF_PACKET's sendmmsg batch, or AF_XDP rings.
pub(crate) trait Transmit {
    /// Queues a frame (preceded by its virtio-net header) out of `ifindex`
    /// to the link-layer address `dst`.
    ///
    /// # Safety
    /// `vnet_and_frame` must stay valid and unmodified until the next `flush`.
    unsafe fn queue(&mut self, ifindex: i32, dst: [u8; 6], vnet_and_frame: &mut [u8]);
    fn flush(&mut self);
}

impl Transmit for TxBatch {
    unsafe fn queue(&mut self, ifindex: i32, dst: [u8; 6], vnet_and_frame: &mut [u8]) {
        TxBatch::queue(self, ifindex, dst, vnet_and_frame)
    }
    fn flush(&mut self) {
        TxBatch::flush(self)
    }
}
use crate::resolver::NextHop;
use crate::stats::{Drop, EngineStats};
use rlvs_lvs::conn::Hop;
use rlvs_lvs::director::DropReason;
use rlvs_lvs::fwd::nat::{self, Side};
use rlvs_lvs::fwd::tcpseq;
use rlvs_lvs::fwd::tun::{self, TunKind};
use rlvs_lvs::{Director, FwdMethod, Time, Verdict};
use rlvs_wire::{EtherType, EthernetFrame, EthernetRepr, Ipv4Packet};
use std::collections::HashMap;

/// Next hops by real server address, looked up for every forwarded frame:
/// ahash rather than SipHash (the keys come from the configuration, not
/// from the network).
pub type HopTable = HashMap<IpAddr, NextHop, ahash::RandomState>;
use std::net::IpAddr;

/// Bytes of frames held while their next hop resolves, per address: what
/// the kernel's neighbour queue holds (unres_qlen_bytes), so a burst to a
/// real server not yet resolved is delivered, not cut at its first frames.
pub(crate) const PENDING_BYTES_PER_HOP: usize = 212_992;
const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
const VIRTIO_NET_HDR_GSO_TCPV4: u8 = 1;
const ETH_HLEN: usize = 14;

/// A frame waiting for its real server's next hop, and what it still needs.
pub(crate) enum Held {
    /// Only the link-layer addresses (DR, NAT).
    Routed(Vec<u8>),
    /// Wrapping for a tunnelling real server.
    Tunnel(Vec<u8>, TunKind),
}

impl Held {
    fn len(&self) -> usize {
        match self {
            Held::Routed(f) | Held::Tunnel(f, _) => f.len(),
        }
    }
}

/// Wraps a frame (virtio-net header first) for a tunnelling real server and
/// queues the result (several when a GSO frame is cut into segments). The
/// buffers go to `bufs`, which must outlive the next flush. Err(mtu) when a
/// packet that may not be fragmented does not fit: the client should hear
/// of `mtu` by ICMP.
pub(crate) fn tunnel_out<T: Transmit + ?Sized>(
    tx: &mut T,
    bufs: &mut Vec<Vec<u8>>,
    hop: &NextHop,
    rip: std::net::Ipv4Addr,
    vnet_and_frame: &mut [u8],
    kind: TunKind,
    ident: &mut u16,
) -> Result<usize, u16> {
    let (flags, gso_type) = (vnet_and_frame[0], vnet_and_frame[1] & 0x7f);
    let gso_size = usize::from(u16::from_le_bytes([vnet_and_frame[4], vnet_and_frame[5]]));
    let partial = flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0;
    let Some(std::net::IpAddr::V4(src)) = hop.src_ip else { return Ok(0) };
    let max_inner = (hop.mtu as usize).saturating_sub(kind.overhead());
    let l3 = &mut vnet_and_frame[afpacket::VNET_HDR_LEN + ETH_HLEN..];
    let mut segs = Vec::new();
    if gso_type == VIRTIO_NET_HDR_GSO_TCPV4 && gso_size > 0 {
        if tun::segment_tcp_v4(l3, gso_size, &mut segs).is_err() {
            return Ok(0);
        }
    } else {
        if partial && tun::finish_checksum(l3).is_err() {
            return Ok(0);
        }
        segs.push(l3.to_vec());
    }
    let mut sent = 0;
    for seg in &segs {
        let Ok(ip) = Ipv4Packet::new_checked(&seg[..]) else { continue };
        if usize::from(ip.total_len()) > max_inner {
            if ip.dont_frag() {
                return Err(max_inner as u16);
            }
            continue;
        }
        let mut out = vec![0u8; afpacket::VNET_HDR_LEN + ETH_HLEN];
        EthernetRepr { src: hop.src, dst: hop.dst, ethertype: EtherType::Ipv4 }
            .emit(&mut out[afpacket::VNET_HDR_LEN..]);
        if tun::encapsulate(seg, src, rip, kind, *ident, &mut out).is_err() {
            continue;
        }
        *ident = ident.wrapping_add(1);
        bufs.push(out);
        let buf = bufs.last_mut().unwrap();
        // SAFETY: the buffer's heap storage stays in `bufs` until the
        // caller has flushed the batch.
        unsafe { tx.queue(hop.ifindex, hop.dst.0, buf) };
        sent += 1;
    }
    Ok(sent)
}

/// The kernel's global ICMP budget (icmp_msgs_per_sec 1000, burst 50), so a
/// flood to a service without real servers cannot make the director flood.
#[derive(Debug)]
pub(crate) struct IcmpBudget {
    tokens: u64,
    last: Time,
}

impl IcmpBudget {
    const PER_SEC: u64 = 1000;
    const BURST: u64 = 50;

    pub fn new() -> Self {
        IcmpBudget { tokens: Self::BURST, last: Time::ZERO }
    }

    fn take(&mut self, now: Time) -> bool {
        let refill = (now.as_millis().saturating_sub(self.last.as_millis())) * Self::PER_SEC / 1000;
        if refill > 0 {
            self.tokens = (self.tokens + refill).min(Self::BURST);
            self.last = now;
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

pub(crate) struct Consumer<'a, T: Transmit> {
    pub director: &'a mut Director,
    pub tx: &'a mut T,
    pub hops: &'a HopTable,
    pub pending: &'a mut HashMap<IpAddr, Vec<Held>, ahash::RandomState>,
    /// Outer IP ids of tunnelled packets.
    pub tun_ident: &'a mut u16,
    pub stats: &'a mut EngineStats,
    pub icmp: &'a mut IcmpBudget,
    /// Replies built for this block, alive until the block's flush.
    pub replies: Vec<Vec<u8>>,
    pub now: Time,
}

impl<T: Transmit> BlockConsumer for Consumer<'_, T> {
    fn frame(&mut self, mut f: RxFrame<'_>) {
        self.stats.frames += 1;
        if f.pkttype != PACKET_HOST {
            return;
        }
        if f.truncated {
            self.stats.truncated += 1;
            return;
        }
        let ifindex = f.ifindex;
        let verdict = {
            let Ok(eth) = EthernetFrame::new_checked(&*f.frame()) else {
                return;
            };
            let ingress = Hop { ifindex, local: eth.dst_addr(), peer: eth.src_addr() };
            match eth.ethertype() {
                EtherType::Ipv4 => self.director.process_ipv4(eth.payload(), Some(ingress), self.now),
                EtherType::Ipv6 => self.director.process_ipv6(eth.payload(), Some(ingress), self.now),
                _ => return,
            }
        };
        let partial = f.vnet_and_frame[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0;
        match verdict {
            Verdict::NotOurs => self.stats.not_ours += 1,
            Verdict::Drop(DropReason::NoDestination) => {
                self.stats.drop(Drop::NoDestination);
                self.refuse(&mut f);
            }
            Verdict::Drop(why) => self.stats.drop(why.into()),
            Verdict::Forward(fw) => match (fw.method, fw.daddr) {
                (FwdMethod::DirectRoute, _) => self.send_to_real_server(&mut f, fw.daddr),
                (FwdMethod::Masq, rip) => {
                    match nat::rewrite(&mut f.frame()[ETH_HLEN..], Side::Destination, rip, fw.dport, partial) {
                        Ok(()) => self.send_to_real_server(&mut f, fw.daddr),
                        Err(_) => self.stats.drop(Drop::Rewrite),
                    }
                }
                (FwdMethod::FullNat, rip) => {
                    let l3 = &mut f.frame()[ETH_HLEN..];
                    let ok = match fw.snat {
                        Some((laddr, lport)) if laddr.is_ipv4() == rip.is_ipv4() => {
                            nat::rewrite(l3, Side::Source, laddr, lport, partial).is_ok()
                                && nat::rewrite(l3, Side::Destination, rip, fw.dport, partial).is_ok()
                        }
                        _ => false,
                    };
                    if ok {
                        if let Some(adj) = fw.seq_adjust {
                            tcpseq::to_server(&mut f.frame()[ETH_HLEN..], adj, partial);
                        }
                        self.send_to_real_server(&mut f, fw.daddr);
                    } else {
                        self.stats.drop(Drop::Rewrite);
                    }
                }
                (FwdMethod::Tunnel, IpAddr::V4(rip)) => match fw.tun {
                    Some(kind) => self.send_tunnelled(&mut f, rip, kind),
                    None => self.stats.drop(Drop::Unsupported),
                },
                _ => self.stats.drop(Drop::Unsupported),
            },
            Verdict::Reply(r) => self.send_to_client(&mut f, r, partial),
        }
    }

    fn block_done(&mut self) {
        self.tx.flush();
        self.replies.clear();
    }
}

impl<T: Transmit> Consumer<'_, T> {
    /// Readdresses the frame to the real server's next hop and queues it,
    /// or holds it while the next hop resolves.
    fn send_to_real_server(&mut self, f: &mut RxFrame<'_>, daddr: IpAddr) {
        match self.hops.get(&daddr) {
            Some(hop) => {
                if rlvs_lvs::fwd::dr::rewrite(f.frame(), hop.src, hop.dst).is_ok() {
                    // SAFETY: the frame lives in the ring block, which is only
                    // returned to the kernel after block_done flushes.
                    unsafe { self.tx.queue(hop.ifindex, hop.dst.0, f.vnet_and_frame) };
                    self.stats.forwarded += 1;
                }
            }
            None => self.hold(daddr, Held::Routed(f.vnet_and_frame.to_vec())),
        }
    }

    fn hold(&mut self, daddr: IpAddr, held: Held) {
        let q = self.pending.entry(daddr).or_default();
        let bytes: usize = q.iter().map(Held::len).sum();
        if bytes + held.len() <= PENDING_BYTES_PER_HOP {
            q.push(held);
        }
        self.stats.waiting_for_neighbour += 1;
    }

    fn send_tunnelled(&mut self, f: &mut RxFrame<'_>, rip: std::net::Ipv4Addr, kind: TunKind) {
        let Some(hop) = self.hops.get(&IpAddr::V4(rip)) else {
            return self.hold(IpAddr::V4(rip), Held::Tunnel(f.vnet_and_frame.to_vec(), kind));
        };
        match tunnel_out(self.tx, &mut self.replies, hop, rip, f.vnet_and_frame, kind, self.tun_ident) {
            Ok(n) => self.stats.forwarded += n as u64,
            Err(mtu) => self.too_big(f, mtu),
        }
    }

    /// ICMP fragmentation-needed back to the client, by the link it came in on.
    fn too_big(&mut self, f: &mut RxFrame<'_>, mtu: u16) {
        self.stats.drop(Drop::TooBig);
        if !self.icmp.take(self.now) {
            return;
        }
        let ifindex = f.ifindex;
        let frame = f.frame();
        let Ok(eth) = EthernetFrame::new_checked(&*frame) else { return };
        let (local, peer) = (eth.dst_addr(), eth.src_addr());
        let Some(msg) = tun::frag_needed(&frame[ETH_HLEN..], mtu) else { return };
        let mut out = vec![0u8; afpacket::VNET_HDR_LEN + ETH_HLEN];
        EthernetRepr { src: local, dst: peer, ethertype: EtherType::Ipv4 }.emit(&mut out[afpacket::VNET_HDR_LEN..]);
        out.extend_from_slice(&msg);
        self.replies.push(out);
        let buf = self.replies.last_mut().unwrap();
        // SAFETY: as in refuse.
        unsafe { self.tx.queue(ifindex, peer.0, buf) };
        self.stats.icmp_sent += 1;
    }

    /// A NAT or FULLNAT reply: routed (TTL down by one, as the kernel's
    /// forward path does before IPVS rewrites it), source set back to the
    /// virtual service (and, for FULLNAT, destination back to the client),
    /// and out of the link the client's packets came in on.
    fn send_to_client(&mut self, f: &mut RxFrame<'_>, r: rlvs_lvs::director::Reply, partial: bool) {
        // A connection synced from another director has not shown its link
        // yet: its client's next hop, resolved on the director's routes.
        let routed = || self.hops.get(&r.caddr).map(|nh| Hop { ifindex: nh.ifindex, local: nh.src, peer: nh.dst });
        let Some(hop) = r.hop.or_else(routed) else {
            self.stats.drop(Drop::NoRoute);
            return;
        };
        let l3 = &mut f.frame()[ETH_HLEN..];
        if !decrement_hop_limit(l3) {
            self.stats.drop(Drop::TtlExceeded);
            return;
        }
        let back_to_client = match r.client {
            // FULLNAT: the reply was addressed to our local address.
            Some((caddr, cport)) => {
                if let Some(adj) = r.seq_adjust {
                    tcpseq::to_client(l3, adj, partial);
                }
                nat::rewrite(l3, Side::Destination, caddr, cport, partial).is_ok()
            }
            None => true,
        };
        if !back_to_client
            || nat::rewrite(l3, Side::Source, r.vaddr, r.vport, partial).is_err()
            || rlvs_lvs::fwd::dr::rewrite(f.frame(), hop.local, hop.peer).is_err()
        {
            self.stats.drop(Drop::Rewrite);
            return;
        }
        // SAFETY: as in send_to_real_server.
        unsafe { self.tx.queue(hop.ifindex, hop.peer.0, f.vnet_and_frame) };
        self.stats.replies += 1;
    }

    /// What ip_vs_leave does when no real server is available: ICMP port
    /// unreachable to the client, back out of the interface it came in on.
    fn refuse(&mut self, f: &mut RxFrame<'_>) {
        if !self.icmp.take(self.now) {
            return;
        }
        let Some(reply) = rlvs_lvs::fwd::icmp::port_unreachable(f.frame()) else {
            return;
        };
        let mut buf = vec![0u8; afpacket::VNET_HDR_LEN];
        buf.extend_from_slice(&reply);
        let dst: [u8; 6] = reply[0..6].try_into().unwrap();
        self.replies.push(buf);
        let buf = self.replies.last_mut().unwrap();
        // SAFETY: the buffer's heap storage stays in `replies` until
        // block_done has flushed the batch.
        unsafe { self.tx.queue(f.ifindex, dst, buf) };
        self.stats.icmp_sent += 1;
    }
}

/// Routing a packet costs a hop: TTL (IPv4, checksum patched) or hop limit
/// (IPv6) down by one; false when it was the last.
fn decrement_hop_limit(l3: &mut [u8]) -> bool {
    match l3.first().map(|b| b >> 4) {
        Some(4) => match Ipv4Packet::new_checked(&mut *l3) {
            Ok(mut ip) if ip.ttl() > 1 => {
                ip.set_ttl(ip.ttl() - 1);
                true
            }
            _ => false,
        },
        Some(6) => match rlvs_wire::Ipv6Packet::new_checked(&mut *l3) {
            Ok(mut ip) if ip.hop_limit() > 1 => {
                ip.set_hop_limit(ip.hop_limit() - 1);
                true
            }
            _ => false,
        },
        _ => false,
    }
}
