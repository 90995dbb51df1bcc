//! The packet loop: one thread that owns the director (all LVS state), the
//! AF_PACKET ring and transmit batch, and answers control requests between
//! blocks. Owning everything on one thread means no lock on the per-packet
//! path; control requests arrive through a channel and an eventfd wake-up.

use crate::afpacket::BlockConsumer as _;
use crate::afpacket::{self, RxFrame, RxRing, TxBatch, PACKET_HOST, VNET_HDR_LEN};
use crate::iface;
use crate::netlink::Rtnl;
use crate::nft::Guard;
use crate::resolver::{NextHop, Resolver, Waker};
use crate::xdp_io::XdpIo;
use crate::xmit::{self, Consumer, Held, IcmpBudget, Transmit};
use crate::xsk::Desc;
use anyhow::{bail, Context, Result};
use rlvs_ctl::{Request, Response};
use rlvs_lvs::{Director, FwdMethod, Protocol, ServiceKey, Time};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// AF_XDP when the XDP program attaches, else AF_PACKET.
    Auto,
    /// XDP program + AF_XDP sockets.
    AfXdp,
    /// TPACKET ring in, sendmmsg out, nftables guard.
    AfPacket,
    /// Tables and control only; no packet is touched (for tests of the faces
    /// and for hosts where raw sockets are not allowed).
    None,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Auto => "auto",
            EngineKind::AfXdp => "afxdp",
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
    pub ring: afpacket::RingVersion,
    pub ring_block_size: usize,
    pub ring_blocks: usize,
    /// AF_XDP: ask for zero-copy (the driver may not have it; veth has not).
    pub zero_copy: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            kind: EngineKind::AfPacket,
            interfaces: Vec::new(),
            allow_host_netns: false,
            ring: afpacket::RingVersion::V2,
            // A slot or block must hold the largest GSO frame veth hands
            // out (64 KiB and headers).
            ring_block_size: 1 << 17,
            ring_blocks: 128,
            zero_copy: true,
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
    /// NAT replies sent back to clients.
    pub replies: u64,
}

/// How frames reach the engine and leave it.
enum Path {
    Packet { ring: RxRing, tx: TxBatch, guard: Guard },
    Xdp(XdpIo),
}

struct Io {
    path: Path,
    /// What the guard's sets or the XDP maps hold now, so they are
    /// rewritten only on change.
    filtered: FilterState,
    resolver: Resolver,
    rtnl: Rtnl,
}

/// What the director owns, as the traffic filter (nftables guard or XDP
/// program) must know it.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct FilterState {
    pub services: Vec<ServiceKey>,
    pub nat_sources: Vec<(IpAddr, Protocol, u16)>,
    pub local: Vec<IpAddr>,
    pub fnat_sources: Vec<(IpAddr, Protocol, u16)>,
    pub laddrs: Vec<IpAddr>,
}

struct Engine {
    director: Director,
    io: Option<Io>,
    hops: HashMap<IpAddr, NextHop>,
    /// Frames held while their next hop resolves.
    pending: HashMap<IpAddr, Vec<Held>>,
    tun_ident: u16,
    stats: EngineStats,
    icmp: IcmpBudget,
    start: Instant,
    kind: EngineKind,
}

/// Opens the packet path `kind` asks for; `Auto` tries AF_XDP and falls
/// back to AF_PACKET, saying why.
fn open_path(kind: EngineKind, cfg: &EngineConfig, devices: &[String]) -> Result<(Path, EngineKind)> {
    if matches!(kind, EngineKind::Auto | EngineKind::AfXdp) {
        match XdpIo::open(devices, 0, cfg.zero_copy) {
            Ok(x) => {
                tracing::info!(engine = "afxdp", interfaces = ?devices, sockets = ?x.modes(), "data plane ready");
                return Ok((Path::Xdp(x), EngineKind::AfXdp));
            }
            Err(e) if kind == EngineKind::AfXdp => return Err(e.context("AF_XDP engine")),
            Err(e) => tracing::info!(reason = format!("{e:#}"), "AF_XDP unavailable; using AF_PACKET"),
        }
    }
    let guard = Guard::install(devices).context("installing the nftables ingress guard")?;
    let ring = RxRing::new(cfg.ring, cfg.ring_block_size, cfg.ring_blocks, &afpacket::ip_not_loopback_filter())
        .context("opening the AF_PACKET receive ring (needs CAP_NET_RAW)")?;
    let tx = TxBatch::new().context("opening the AF_PACKET transmit socket")?;
    tracing::info!(engine = "afpacket", ring = ?cfg.ring, interfaces = ?devices, "data plane ready");
    Ok((Path::Packet { ring, tx, guard }, EngineKind::AfPacket))
}

/// Starts the engine thread. Setup errors (no permission, no nft, host
/// namespace) are returned before the thread runs.
pub fn start(cfg: EngineConfig) -> Result<(Handle, std::thread::JoinHandle<()>)> {
    let waker = Waker::new()?;
    let (io, kind) = match cfg.kind {
        EngineKind::None => (None, EngineKind::None),
        kind => {
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
            let (path, kind) = open_path(kind, &cfg, &devices)?;
            let resolver = Resolver::spawn(waker.clone()).context("opening rtnetlink")?;
            let rtnl = Rtnl::new().context("opening rtnetlink")?;
            (Some(Io { path, filtered: FilterState::default(), resolver, rtnl }), kind)
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
        tun_ident: 0,
        stats: EngineStats::default(),
        icmp: IcmpBudget::new(),
        start: Instant::now(),
        kind,
    };
    let t = std::thread::Builder::new().name("rlvs-engine".into()).spawn(move || {
        let run = std::panic::AssertUnwindSafe(|| engine.run(rx, waker, stop));
        if std::panic::catch_unwind(run).is_err() {
            // A director that no longer forwards must not keep its VIPs:
            // leaving lets the backup take over at once.
            tracing::error!("the packet engine failed; rlvs exits");
            std::process::exit(70);
        }
    })?;
    Ok((handle, t))
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
            match self.io.as_ref().map(|io| &io.path) {
                Some(Path::Packet { ring, .. }) => fds.push(ring.fd()),
                Some(Path::Xdp(x)) => fds.extend(x.fds()),
                None => {}
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
                // The director's own addresses change (VIPs come and go).
                self.sync_guard(true);
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
        match &mut io.path {
            Path::Packet { ring, tx, .. } => {
                let mut c = Consumer {
                    director: &mut self.director,
                    tx,
                    hops: &self.hops,
                    pending: &mut self.pending,
                    tun_ident: &mut self.tun_ident,
                    stats: &mut self.stats,
                    icmp: &mut self.icmp,
                    replies: Vec::new(),
                    now,
                };
                // Bounded so control requests are answered even under full load.
                for _ in 0..64 {
                    if !ring.next_block(&mut c) {
                        break;
                    }
                }
            }
            Path::Xdp(x) => {
                let mut descs = [Desc::default(); 64];
                let mut recycle = [0u64; 64];
                for si in 0..x.tx.socks.len() {
                    // Bounded as above.
                    for _ in 0..16 {
                        let n = x.tx.socks[si].receive(&mut descs);
                        if n == 0 {
                            break;
                        }
                        let ifindex = x.tx.socks[si].ifindex as i32;
                        let mut kept = 0;
                        let mut c = Consumer {
                            director: &mut self.director,
                            tx: &mut x.tx,
                            hops: &self.hops,
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
                            c.tx.taken = false;
                            c.frame(RxFrame { vnet_and_frame: buf, ifindex, pkttype: PACKET_HOST, truncated: false });
                            if !c.tx.taken {
                                recycle[kept] = d.addr;
                                kept += 1;
                            }
                        }
                        c.block_done();
                        x.tx.socks[si].recycle(&recycle[..kept]);
                    }
                }
            }
        }
    }

    fn apply_resolver_updates(&mut self) {
        let Some(io) = self.io.as_mut() else { return };
        while let Ok((addr, hop)) = io.resolver.updates.try_recv() {
            match hop {
                Some(h) => {
                    self.hops.insert(addr, h);
                    let mut bufs = Vec::new();
                    let tx: &mut dyn Transmit = match &mut io.path {
                        Path::Packet { tx, .. } => tx,
                        Path::Xdp(x) => &mut x.tx,
                    };
                    for held in self.pending.remove(&addr).unwrap_or_default() {
                        match (held, addr) {
                            (Held::Routed(mut frame), _) => {
                                let vnet = afpacket::VNET_HDR_LEN;
                                if rlvs_lvs::fwd::dr::rewrite(&mut frame[vnet..], h.src, h.dst).is_ok() {
                                    bufs.push(frame);
                                    let f = bufs.last_mut().unwrap();
                                    // SAFETY: `bufs` outlives the flush below.
                                    unsafe { tx.queue(h.ifindex, h.dst.0, f) };
                                    self.stats.forwarded += 1;
                                }
                            }
                            (Held::Tunnel(mut frame, kind), IpAddr::V4(rip)) => {
                                let n = xmit::tunnel_out(tx, &mut bufs, &h, rip, &mut frame, kind, &mut self.tun_ident);
                                self.stats.forwarded += n.unwrap_or(0) as u64;
                            }
                            _ => {}
                        }
                    }
                    tx.flush();
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
        let now = self.now();
        let resp = rlvs_ctl::handle(&mut self.director, msg.req, now, self.kind.name());
        (msg.reply)(resp);
        if !mutating {
            return;
        }
        self.sync_guard(false);
        let Some(io) = &self.io else { return };
        let mut addrs: Vec<IpAddr> =
            self.director.services().iter().flat_map(|s| s.dests.iter().map(|d| d.config.addr)).collect();
        addrs.sort();
        addrs.dedup();
        self.hops.retain(|a, _| addrs.contains(a));
        io.resolver.watch(addrs);
    }

    /// Brings the nft guard's sets in line with the tables (and, when
    /// `reread_local`, with the director's current addresses).
    fn sync_guard(&mut self, reread_local: bool) {
        let Some(io) = self.io.as_mut() else { return };
        let services = self.director.service_keys();
        let infos = self.director.services();
        let sources = |method: FwdMethod| -> Vec<(IpAddr, Protocol, u16)> {
            let mut v: Vec<(IpAddr, Protocol, u16)> = infos
                .iter()
                .flat_map(|s| {
                    let p = s.key.protocol;
                    s.dests
                        .iter()
                        .filter(move |d| d.config.fwd == method)
                        .map(move |d| (d.config.addr, p, d.config.port))
                })
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let (nat_sources, fnat_sources) = (sources(FwdMethod::Masq), sources(FwdMethod::FullNat));
        let mut laddrs: Vec<IpAddr> = infos.iter().flat_map(|s| s.laddrs.iter().copied()).collect();
        laddrs.sort();
        laddrs.dedup();
        let local = if reread_local || io.filtered.local.is_empty() {
            let mut l = io.rtnl.all_addresses().unwrap_or_default();
            l.sort();
            l
        } else {
            io.filtered.local.clone()
        };
        let want = FilterState { services, nat_sources, local, fnat_sources, laddrs };
        if want == io.filtered {
            return;
        }
        let done = match &mut io.path {
            Path::Packet { guard, .. } => {
                guard.update(&want.services, &want.nat_sources, &want.local, &want.fnat_sources, &want.laddrs)
            }
            Path::Xdp(x) => match x.prog.as_mut() {
                Some(p) => p.update(&io.filtered, &want),
                None => Ok(()),
            },
        };
        match done {
            Ok(()) => io.filtered = want,
            Err(e) => tracing::error!(error = format!("{e:#}"), "could not update the traffic filter"),
        }
    }
}
