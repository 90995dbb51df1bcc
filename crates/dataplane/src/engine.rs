//! The engine: the control thread, which answers control requests, keeps
//! next hops and the traffic filter in step with the tables, expires
//! connections, and drives the first packet worker between those chores;
//! and the other workers, one thread each (see worker.rs). Control requests
//! arrive through a channel and an eventfd wake-up.

use crate::afpacket::{self, RxRing, TxBatch};
use crate::iface;
use crate::netlink::Rtnl;
use crate::nft::Guard;
use crate::resolver::{Resolver, Waker};
use crate::worker::{Port, Shared, Worker};
use crate::xdp::Program;
use anyhow::{bail, Context, Result};
use rlvs_ctl::{Request, Response};
use rlvs_lvs::{Director, FwdMethod, Protocol, ServiceKey};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, RwLock};
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
    /// AF_XDP: at most this many workers (one per receive queue below it);
    /// 0 for one per CPU.
    pub workers: usize,
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
            workers: 0,
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
    shared: Arc<Shared>,
}

impl Handle {
    pub fn send(&self, msg: ControlMsg) {
        if self.tx.send(msg).is_ok() {
            self.waker.wake();
        }
    }

    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
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
    /// AF_XDP frames whose TCP/UDP checksum was left partial by a local
    /// sender (finished on the way out).
    pub partial_checksums: u64,
}

/// What keeps the director's own kernel away from the engine's traffic.
enum Filter {
    Guard(Guard),
    Xdp(Program),
}

struct Ctl {
    filter: Filter,
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
    shared: Arc<Shared>,
    /// The first worker, driven by this thread; None without a data plane.
    worker: Option<Worker>,
    ctl: Option<Ctl>,
    /// The other workers' wake-ups and threads.
    others: Vec<(Arc<Waker>, std::thread::JoinHandle<()>)>,
    kind: EngineKind,
}

/// Opens the packet path `kind` asks for; `Auto` tries AF_XDP and falls
/// back to AF_PACKET, saying why. Returns the filter and one port per worker.
fn open_path(kind: EngineKind, cfg: &EngineConfig, devices: &[String]) -> Result<(Filter, Vec<Port>, EngineKind)> {
    if matches!(kind, EngineKind::Auto | EngineKind::AfXdp) {
        let max =
            if cfg.workers == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { cfg.workers };
        match crate::xdp_io::open(devices, cfg.zero_copy, max) {
            Ok((prog, sides)) => {
                let sockets = crate::xdp_io::modes(&sides);
                tracing::info!(engine = "afxdp", interfaces = ?devices, workers = sides.len(), ?sockets, "data plane ready");
                return Ok((Filter::Xdp(prog), sides.into_iter().map(Port::Xdp).collect(), EngineKind::AfXdp));
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
    Ok((Filter::Guard(guard), vec![Port::Packet { ring, tx }], EngineKind::AfPacket))
}

/// Runs `f` on a thread named `name`; if it panics, the process exits: a
/// director that no longer forwards must not keep its VIPs (leaving lets
/// the backup take over at once).
fn spawn_or_die(name: String, f: impl FnOnce() + Send + 'static) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(name.clone()).spawn(move || {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
            tracing::error!(thread = name, "the packet engine failed; rlvs exits");
            std::process::exit(70);
        }
    })
}

/// Starts the engine thread (and its workers). Setup errors (no
/// permission, no nft, host namespace) are returned before anything runs.
pub fn start(cfg: EngineConfig) -> Result<(Handle, std::thread::JoinHandle<()>)> {
    let waker = Waker::new()?;
    let shared = Arc::new(Shared {
        director: Mutex::new(Director::new()),
        hops: RwLock::new(Default::default()),
        start: Instant::now(),
        stop: Default::default(),
    });
    let mut engine =
        Engine { shared: shared.clone(), worker: None, ctl: None, others: Vec::new(), kind: EngineKind::None };
    if cfg.kind != EngineKind::None {
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
        let (filter, ports, kind) = open_path(cfg.kind, &cfg, &devices)?;
        let resolver = Resolver::spawn(waker.clone()).context("opening rtnetlink")?;
        let rtnl = Rtnl::new().context("opening rtnetlink")?;
        engine.ctl = Some(Ctl { filter, filtered: FilterState::default(), resolver, rtnl });
        engine.kind = kind;
        for (id, port) in ports.into_iter().enumerate() {
            if id == 0 {
                engine.worker = Some(Worker::new(0, shared.clone(), port, waker.clone()));
                continue;
            }
            let w = Worker::new(id, shared.clone(), port, Waker::new()?);
            let wk = w.waker.clone();
            engine.others.push((wk, spawn_or_die(format!("rlvs-worker-{id}"), move || w.run())?));
        }
    }
    let (tx, rx) = channel();
    let handle = Handle { tx, waker: waker.clone(), shared: shared.clone() };
    let t = spawn_or_die("rlvs-engine".into(), move || engine.run(rx, waker))?;
    Ok((handle, t))
}

impl Engine {
    fn run(&mut self, rx: Receiver<ControlMsg>, waker: Arc<Waker>) {
        let mut last_expire = Instant::now();
        let mut last_stats = Instant::now();
        let mut fds = vec![waker.fd()];
        if let Some(w) = &self.worker {
            fds.extend(w.fds());
        }
        while !self.shared.stop.load(Ordering::SeqCst) {
            if let Err(e) = afpacket::poll_readable(&fds, 100) {
                tracing::error!(error = %e, "poll failed");
            }
            waker.drain();
            while let Ok(msg) = rx.try_recv() {
                self.control(msg);
            }
            self.apply_resolver_updates();
            if let Some(w) = self.worker.as_mut() {
                w.receive();
            }
            if last_expire.elapsed().as_millis() >= 1000 {
                let now = self.shared.now();
                let n = self.shared.director.lock().unwrap_or_else(|e| e.into_inner()).expire(now);
                if n > 0 {
                    tracing::trace!(expired = n, "connections expired");
                }
                // The director's own addresses change (VIPs come and go).
                self.sync_filter(true);
                last_expire = Instant::now();
            }
            if last_stats.elapsed().as_secs() >= 10 {
                if let Some(w) = &self.worker {
                    let conns = self.shared.director.lock().unwrap_or_else(|e| e.into_inner()).conn_count();
                    tracing::debug!(stats = ?w.stats, conns, "engine");
                }
                last_stats = Instant::now();
            }
        }
        for (wk, t) in self.others.drain(..) {
            wk.wake();
            let _ = t.join();
        }
        let stats = self.worker.as_ref().map(|w| w.stats).unwrap_or_default();
        tracing::info!(?stats, "engine stopped");
    }

    /// New next hops into the shared table; the workers send what they held.
    fn apply_resolver_updates(&mut self) {
        let Some(ctl) = self.ctl.as_mut() else { return };
        let mut changed = false;
        {
            let mut hops = self.shared.hops.write().unwrap_or_else(|e| e.into_inner());
            while let Ok((addr, hop)) = ctl.resolver.updates.try_recv() {
                changed = true;
                match hop {
                    Some(h) => hops.insert(addr, h),
                    None => hops.remove(&addr),
                };
            }
        }
        if changed {
            if let Some(w) = self.worker.as_mut() {
                w.release_pending();
            }
            for (wk, _) in &self.others {
                wk.wake();
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
        let now = self.shared.now();
        let addrs = {
            let mut d = self.shared.director.lock().unwrap_or_else(|e| e.into_inner());
            let resp = rlvs_ctl::handle(&mut d, msg.req, now, self.kind.name());
            (msg.reply)(resp);
            // Without a packet engine there is no filter to follow the
            // tables and no next hop to resolve; the walk below over every
            // real server would make a bulk load (`ipvsadm -R`) quadratic
            // for nothing.
            if !mutating || self.ctl.is_none() {
                return;
            }
            let mut addrs: Vec<IpAddr> =
                d.services().iter().flat_map(|s| s.dests.iter().map(|d| d.config.addr)).collect();
            addrs.sort();
            addrs.dedup();
            addrs
        };
        self.sync_filter(false);
        let Some(ctl) = &self.ctl else { return };
        self.shared.hops.write().unwrap_or_else(|e| e.into_inner()).retain(|a, _| addrs.contains(a));
        ctl.resolver.watch(addrs);
    }

    /// Brings the traffic filter in line with the tables (and, when
    /// `reread_local`, with the director's current addresses).
    fn sync_filter(&mut self, reread_local: bool) {
        let Some(ctl) = self.ctl.as_mut() else { return };
        let (services, nat_sources, fnat_sources, laddrs) = {
            let d = self.shared.director.lock().unwrap_or_else(|e| e.into_inner());
            let services = d.service_keys();
            let infos = d.services();
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
            let mut laddrs: Vec<IpAddr> = infos.iter().flat_map(|s| s.laddrs.iter().copied()).collect();
            laddrs.sort();
            laddrs.dedup();
            (services, sources(FwdMethod::Masq), sources(FwdMethod::FullNat), laddrs)
        };
        let local = if reread_local || ctl.filtered.local.is_empty() {
            let mut l = ctl.rtnl.all_addresses().unwrap_or_default();
            l.sort();
            l
        } else {
            ctl.filtered.local.clone()
        };
        let want = FilterState { services, nat_sources, local, fnat_sources, laddrs };
        if want == ctl.filtered {
            return;
        }
        let done = match &mut ctl.filter {
            Filter::Guard(guard) => {
                guard.update(&want.services, &want.nat_sources, &want.local, &want.fnat_sources, &want.laddrs)
            }
            Filter::Xdp(p) => p.update(&ctl.filtered, &want),
        };
        match done {
            Ok(()) => ctl.filtered = want,
            Err(e) => tracing::error!(error = format!("{e:#}"), "could not update the traffic filter"),
        }
    }
}
