//! Packet workers. Each owns one receive path (the AF_PACKET ring, or the
//! AF_XDP sockets of one queue number on every served interface) and its
//! own transmit side, pending frames and counters; all of them share one
//! director. A NAT or FULLNAT reply may arrive on another queue than the
//! client's packets did, so the connection table cannot be split by queue:
//! instead a worker takes the director's lock once per batch of up to 64
//! frames, which keeps the lock off the per-packet path (see
//! docs/ARCHITECTURE.md for the measured cost).

use crate::afpacket::{BlockConsumer, RxFrame, RxRing, TxBatch, PACKET_HOST, VNET_HDR_LEN};
use crate::resolver::Waker;
use crate::stats::EngineStats;
use crate::xdp_io::XdpTx;
use crate::xmit::{self, Consumer, Held, IcmpBudget, Transmit};
use crate::xsk::Desc;
use rlvs_lvs::{Director, Time};
use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// What every worker and the control side share.
pub(crate) struct Shared {
    pub director: Mutex<Director>,
    pub hops: RwLock<crate::xmit::HopTable>,
    pub start: Instant,
    pub stop: AtomicBool,
    /// Each worker's counters as it last published them (after each
    /// batch), for metrics: the workers own theirs, off any shared line.
    pub published: Mutex<Vec<EngineStats>>,
}

impl Shared {
    pub fn now(&self) -> Time {
        Time(self.start.elapsed().as_millis() as u64)
    }

    pub fn publish(&self, worker: usize, stats: &EngineStats) {
        let mut p = self.published.lock().unwrap_or_else(|e| e.into_inner());
        if p.len() <= worker {
            p.resize(worker + 1, EngineStats::default());
        }
        p[worker] = *stats;
    }

    /// Every worker's counters, summed.
    pub fn totals(&self) -> EngineStats {
        let mut all = EngineStats::default();
        for s in self.published.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            all.add(s);
        }
        all
    }
}

pub(crate) enum Port {
    Packet { ring: RxRing, tx: TxBatch },
    Xdp(XdpTx),
}

pub(crate) struct Worker {
    pub id: usize,
    shared: Arc<Shared>,
    port: Port,
    /// Frames held while their next hop resolves.
    pending: HashMap<IpAddr, Vec<Held>, ahash::RandomState>,
    tun_ident: u16,
    pub stats: EngineStats,
    icmp: IcmpBudget,
    pub waker: Arc<Waker>,
}

impl Worker {
    pub fn new(id: usize, shared: Arc<Shared>, port: Port, waker: Arc<Waker>) -> Worker {
        Worker {
            id,
            shared,
            port,
            pending: HashMap::default(),
            tun_ident: (id as u16) << 12,
            stats: EngineStats::default(),
            icmp: IcmpBudget::new(),
            waker,
        }
    }

    pub fn fds(&self) -> Vec<RawFd> {
        match &self.port {
            Port::Packet { ring, .. } => vec![ring.fd()],
            Port::Xdp(x) => x.socks.iter().map(|s| s.fd()).collect(),
        }
    }

    /// A bounded amount of receiving, so the control side of worker 0 is
    /// never starved.
    pub fn receive(&mut self) {
        let now = self.shared.now();
        let shared = self.shared.clone();
        let mut director = shared.director.lock().unwrap_or_else(|e| e.into_inner());
        let hops = shared.hops.read().unwrap_or_else(|e| e.into_inner());
        match &mut self.port {
            Port::Packet { ring, tx } => {
                let mut c = Consumer {
                    director: &mut director,
                    tx,
                    hops: &hops,
                    pending: &mut self.pending,
                    tun_ident: &mut self.tun_ident,
                    stats: &mut self.stats,
                    icmp: &mut self.icmp,
                    replies: Vec::new(),
                    now,
                };
                for _ in 0..64 {
                    if !ring.next_block(&mut c) {
                        break;
                    }
                }
            }
            Port::Xdp(x) => {
                let mut descs = [Desc::default(); 64];
                let mut recycle = [0u64; 64];
                for si in 0..x.socks.len() {
                    for _ in 0..16 {
                        let n = x.socks[si].receive(&mut descs);
                        if n == 0 {
                            break;
                        }
                        let ifindex = x.socks[si].ifindex as i32;
                        let mut kept = 0;
                        let mut c = Consumer {
                            director: &mut director,
                            tx: &mut *x,
                            hops: &hops,
                            pending: &mut self.pending,
                            tun_ident: &mut self.tun_ident,
                            stats: &mut self.stats,
                            icmp: &mut self.icmp,
                            replies: Vec::new(),
                            now,
                        };
                        for d in &descs[..n] {
                            // SAFETY: the chunk was just received and is ours
                            // until recycled or completed; the kernel leaves
                            // 256 bytes of headroom before the frame.
                            let buf = unsafe { c.tx.socks[si].slice(d.addr, d.len as usize, VNET_HDR_LEN) };
                            let (hdr, frame) = buf.split_at_mut(VNET_HDR_LEN);
                            crate::csum::fill_vnet_header(hdr, frame);
                            if hdr[0] != 0 {
                                c.stats.partial_checksums += 1;
                            }
                            c.tx.taken = false;
                            c.frame(RxFrame { vnet_and_frame: buf, ifindex, pkttype: PACKET_HOST, truncated: false });
                            if !c.tx.taken {
                                recycle[kept] = d.addr;
                                kept += 1;
                            }
                        }
                        c.block_done();
                        for _ in 0..std::mem::take(&mut c.tx.tx_full) {
                            c.stats.drop(crate::stats::Drop::TxFull);
                        }
                        x.socks[si].recycle(&recycle[..kept]);
                    }
                }
            }
        }
    }

    /// Sends the frames held for next hops that are now known.
    pub fn release_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let shared = self.shared.clone();
        let hops = shared.hops.read().unwrap_or_else(|e| e.into_inner());
        let ready: Vec<IpAddr> = self.pending.keys().filter(|a| hops.contains_key(a)).copied().collect();
        if ready.is_empty() {
            return;
        }
        let tx: &mut dyn Transmit = match &mut self.port {
            Port::Packet { tx, .. } => tx,
            Port::Xdp(x) => x,
        };
        let mut bufs = Vec::new();
        for addr in ready {
            let h = hops[&addr];
            for held in self.pending.remove(&addr).unwrap_or_default() {
                match (held, addr) {
                    (Held::Routed(mut frame), _) => {
                        if rlvs_lvs::fwd::dr::rewrite(&mut frame[VNET_HDR_LEN..], h.src, h.dst).is_err() {
                            continue;
                        }
                        bufs.push(frame);
                        let f = bufs.last_mut().unwrap();
                        // SAFETY: `bufs` outlives the flush below.
                        unsafe { tx.queue(h.ifindex, h.dst.0, f) };
                        self.stats.forwarded += 1;
                    }
                    (Held::Tunnel(mut frame, kind), IpAddr::V4(rip)) => {
                        let n = xmit::tunnel_out(tx, &mut bufs, &h, rip, &mut frame, kind, &mut self.tun_ident);
                        self.stats.forwarded += n.unwrap_or(0) as u64;
                    }
                    _ => {}
                }
            }
        }
        tx.flush();
    }

    /// The loop of a worker other than the first (which the control side
    /// drives): receive until the engine stops.
    pub fn run(mut self) {
        let mut fds = self.fds();
        fds.push(self.waker.fd());
        while !self.shared.stop.load(Ordering::SeqCst) {
            if let Err(e) = crate::afpacket::poll_readable(&fds, 100) {
                tracing::error!(error = %e, worker = self.id, "poll failed");
            }
            self.waker.drain();
            self.release_pending();
            self.receive();
            self.shared.publish(self.id, &self.stats);
        }
        tracing::info!(worker = self.id, stats = ?self.stats, "worker stopped");
    }
}
