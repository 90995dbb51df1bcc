//! The packet loop: one thread that owns the director (all LVS state), the
//! AF_PACKET ring and transmit batch, and answers control requests between
//! blocks. Owning everything on one thread means no lock on the per-packet
//! path; control requests arrive through a channel and an eventfd wake-up.

use crate::afpacket::{self, BlockConsumer, RxFrame, RxRing, TxBatch, PACKET_HOST};
use crate::iface;
use crate::nft::Guard;
use crate::resolver::{NextHop, Resolver, Waker};
use anyhow::{bail, Context, Result};
use rlvs_ctl::{Request, Response};
use rlvs_lvs::director::DropReason;
use rlvs_lvs::{Director, FwdMethod, ServiceKey, Time, Verdict};
use rlvs_wire::{EtherType, EthernetFrame};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// TPACKET_V3 ring in, sendmmsg out, nftables guard.
    AfPacket,
    /// Tables and control only; no packet is touched (for tests of the faces
    /// and for hosts where raw sockets are not allowed).
    None,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::AfPacket => "afpacket",
            EngineKind::None => "none",
        }
    }
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub kind: EngineKind,
    /// Interfaces to serve and guard; empty means all but loopback.
    pub interfaces: Vec<String>,
    /// Raw-frame engines refuse the host's own network namespace unless set.
    pub allow_host_netns: bool,
    pub ring_block_size: usize,
    pub ring_blocks: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            kind: EngineKind::AfPacket,
            interfaces: Vec::new(),
            allow_host_netns: false,
            // A block must hold the largest GSO frame veth hands out (64 KiB).
            ring_block_size: 1 << 18,
            ring_blocks: 64,
        }
    }
}

pub struct ControlMsg {
    pub req: Request,
    pub reply: Box<dyn FnOnce(Response) + Send>,
}

/// How other threads talk to the engine thread.
#[derive(Clone)]
pub struct Handle {
    tx: Sender<ControlMsg>,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
}

impl Handle {
    pub fn send(&self, msg: ControlMsg) {
        if self.tx.send(msg).is_ok() {
            self.waker.wake();
        }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.waker.wake();
    }
}

/// Counters of what the engine did with frames, for logs and metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct EngineStats {
    pub frames: u64,
    pub forwarded: u64,
    pub not_ours: u64,
    pub dropped: u64,
    pub waiting_for_neighbour: u64,
    pub truncated: u64,
    pub icmp_sent: u64,
}

/// The kernel's global ICMP budget (icmp_msgs_per_sec 1000, burst 50), so a
/// flood to a service without real servers cannot make the director flood.
#[derive(Debug)]
struct IcmpBudget {
    tokens: u64,
    last: Time,
}

impl IcmpBudget {
    const PER_SEC: u64 = 1000;
    const BURST: u64 = 50;

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

struct Io {
    ring: RxRing,
    tx: TxBatch,
    guard: Guard,
    resolver: Resolver,
}

struct Engine {
    director: Director,
    io: Option<Io>,
    hops: HashMap<IpAddr, NextHop>,
    /// Frames held while their next hop resolves (as the kernel's
    /// neighbour queue holds them), a few per address.
    pending: HashMap<IpAddr, Vec<Vec<u8>>>,
    stats: EngineStats,
    icmp: IcmpBudget,
    start: Instant,
    kind: EngineKind,
}

const PENDING_PER_HOP: usize = 3;

/// Starts the engine thread. Setup errors (no permission, no nft, host
/// namespace) are returned before the thread runs.
pub fn start(cfg: EngineConfig) -> Result<(Handle, std::thread::JoinHandle<()>)> {
    let waker = Waker::new()?;
    let io = match cfg.kind {
        EngineKind::None => None,
        EngineKind::AfPacket => {
            if iface::in_initial_netns() && !cfg.allow_host_netns {
                bail!(
                    "refusing to run a raw-frame engine in the host's own network namespace; \
                     run rlvs in a network namespace, or pass --host-netns on a real director"
                );
            }
            let devices: Vec<String> = if cfg.interfaces.is_empty() {
                iface::list().into_iter().map(|(_, n)| n).collect()
            } else {
                for i in &cfg.interfaces {
                    iface::index_of(i).with_context(|| format!("no interface {i}"))?;
                }
                cfg.interfaces.clone()
            };
            let guard = Guard::install(&devices).context("installing the nftables ingress guard")?;
            let ring = RxRing::new(cfg.ring_block_size, cfg.ring_blocks, &afpacket::ipv4_not_loopback_filter())
                .context("opening the AF_PACKET receive ring (needs CAP_NET_RAW)")?;
            let tx = TxBatch::new().context("opening the AF_PACKET transmit socket")?;
            let resolver = Resolver::spawn(waker.clone()).context("opening rtnetlink")?;
            tracing::info!(engine = "afpacket", interfaces = ?devices, "data plane ready");
            Some(Io { ring, tx, guard, resolver })
        }
    };
    let (tx, rx) = channel();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = Handle { tx, waker: waker.clone(), stop: stop.clone() };
    let mut engine = Engine {
        director: Director::new(),
        io,
        hops: HashMap::new(),
        pending: HashMap::new(),
        stats: EngineStats::default(),
        icmp: IcmpBudget { tokens: IcmpBudget::BURST, last: Time::ZERO },
        start: Instant::now(),
        kind: cfg.kind,
    };
    let t = std::thread::Builder::new().name("rlvs-engine".into()).spawn(move || engine.run(rx, waker, stop))?;
    Ok((handle, t))
}

struct Consumer<'a> {
    director: &'a mut Director,
    tx: &'a mut TxBatch,
    hops: &'a HashMap<IpAddr, NextHop>,
    pending: &'a mut HashMap<IpAddr, Vec<Vec<u8>>>,
    stats: &'a mut EngineStats,
    icmp: &'a mut IcmpBudget,
    /// Replies built for this block, alive until the block's flush.
    replies: Vec<Vec<u8>>,
    now: Time,
}

impl BlockConsumer for Consumer<'_> {
    fn frame(&mut self, mut f: RxFrame<'_>) {
        self.stats.frames += 1;
        if f.pkttype != PACKET_HOST {
            return;
        }
        if f.truncated {
            self.stats.truncated += 1;
            return;
        }
        let verdict = {
            let Ok(eth) = EthernetFrame::new_checked(&*f.frame()) else {
                return;
            };
            if eth.ethertype() != EtherType::Ipv4 {
                return;
            }
            self.director.process_ipv4(eth.payload(), self.now)
        };
        match verdict {
            Verdict::NotOurs => self.stats.not_ours += 1,
            Verdict::Drop(DropReason::NoDestination) => {
                self.stats.dropped += 1;
                self.refuse(&mut f);
            }
            Verdict::Drop(_) => self.stats.dropped += 1,
            Verdict::Forward(fw) if fw.method == FwdMethod::DirectRoute => {
                match self.hops.get(&fw.daddr) {
                    Some(hop) => {
                        if rlvs_lvs::fwd::dr::rewrite(f.frame(), hop.src, hop.dst).is_ok() {
                            // SAFETY: the frame lives in the ring block, which is
                            // only returned to the kernel after block_done flushes.
                            unsafe { self.tx.queue(hop.ifindex, hop.dst.0, f.vnet_and_frame) };
                            self.stats.forwarded += 1;
                        }
                    }
                    None => {
                        let q = self.pending.entry(fw.daddr).or_default();
                        if q.len() < PENDING_PER_HOP {
                            q.push(f.vnet_and_frame.to_vec());
                        }
                        self.stats.waiting_for_neighbour += 1;
                    }
                }
            }
            // NAT, TUN and FULLNAT transmitters come with their own issue.
            Verdict::Forward(_) => self.stats.dropped += 1,
        }
    }

    fn block_done(&mut self) {
        self.tx.flush();
        self.replies.clear();
    }
}

impl Consumer<'_> {
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

impl Engine {
    fn now(&self) -> Time {
        Time(self.start.elapsed().as_millis() as u64)
    }

    fn run(&mut self, rx: Receiver<ControlMsg>, waker: Arc<Waker>, stop: Arc<AtomicBool>) {
        let mut last_expire = Instant::now();
        let mut last_stats = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            let mut fds = vec![waker.fd()];
            if let Some(io) = &self.io {
                fds.push(io.ring.fd());
            }
            if let Err(e) = afpacket::poll_readable(&fds, 100) {
                tracing::error!(error = %e, "poll failed");
            }
            waker.drain();
            while let Ok(msg) = rx.try_recv() {
                self.control(msg);
            }
            self.apply_resolver_updates();
            self.receive();
            if last_expire.elapsed().as_millis() >= 1000 {
                let now = self.now();
                let n = self.director.expire(now);
                if n > 0 {
                    tracing::trace!(expired = n, "connections expired");
                }
                last_expire = Instant::now();
            }
            if last_stats.elapsed().as_secs() >= 10 {
                tracing::debug!(stats = ?self.stats, conns = self.director.conn_count(), "engine");
                last_stats = Instant::now();
            }
        }
        tracing::info!(stats = ?self.stats, "engine stopped");
    }

    fn receive(&mut self) {
        let now = self.now();
        let Some(io) = self.io.as_mut() else { return };
        let mut c = Consumer {
            director: &mut self.director,
            tx: &mut io.tx,
            hops: &self.hops,
            pending: &mut self.pending,
            stats: &mut self.stats,
            icmp: &mut self.icmp,
            replies: Vec::new(),
            now,
        };
        // Bounded so control requests are answered even under full load.
        for _ in 0..64 {
            if !io.ring.next_block(&mut c) {
                break;
            }
        }
    }

    fn apply_resolver_updates(&mut self) {
        let Some(io) = self.io.as_mut() else { return };
        while let Ok((addr, hop)) = io.resolver.updates.try_recv() {
            match hop {
                Some(h) => {
                    self.hops.insert(addr, h);
                    for mut frame in self.pending.remove(&addr).unwrap_or_default() {
                        let vnet = afpacket::VNET_HDR_LEN;
                        if rlvs_lvs::fwd::dr::rewrite(&mut frame[vnet..], h.src, h.dst).is_ok() {
                            // SAFETY: `frame` outlives the flush right below.
                            unsafe { io.tx.queue(h.ifindex, h.dst.0, &mut frame) };
                            io.tx.flush();
                            self.stats.forwarded += 1;
                        }
                    }
                }
                None => {
                    self.hops.remove(&addr);
                }
            }
        }
    }

    fn control(&mut self, msg: ControlMsg) {
        let mutating = !matches!(
            msg.req,
            Request::Info
                | Request::GetTimeouts
                | Request::ListServices
                | Request::GetService { .. }
                | Request::ListConns
        );
        let before: Vec<ServiceKey> = if mutating { self.director.service_keys() } else { Vec::new() };
        let now = self.now();
        let resp = rlvs_ctl::handle(&mut self.director, msg.req, now, self.kind.name());
        (msg.reply)(resp);
        if !mutating {
            return;
        }
        let Some(io) = &self.io else { return };
        let after = self.director.service_keys();
        if after != before {
            if let Err(e) = io.guard.update(&after) {
                tracing::error!(error = %e, "could not update the nftables guard");
            }
        }
        let mut addrs: Vec<IpAddr> =
            self.director.services().iter().flat_map(|s| s.dests.iter().map(|d| d.config.addr)).collect();
        addrs.sort();
        addrs.dedup();
        self.hops.retain(|a, _| addrs.contains(a));
        io.resolver.watch(addrs);
    }
}
