//! The engine: the control thread, which answers control requests, keeps
//! next hops and the traffic filter in step with the tables, expires
//! connections, and drives the first packet worker between those chores;
//! and the other workers, one thread each (see worker.rs). Control requests
//! arrive through a channel and an eventfd wake-up. What the director's
//! events and a takeover from an earlier daemon do is in events.rs.

use crate::afpacket::{self, RxRing, TxBatch};
use crate::fastpath::FastPath;
use crate::filter::{Follower, Rule};
use crate::iface;
use crate::netlink::Rtnl;
use crate::nft::Guard;
use crate::resolver::{Resolver, Waker};
use crate::state::StateFile;
use crate::worker::{Port, Shared, Worker};
use crate::xdp::Program;
use anyhow::{bail, Context, Result};
use rlvs_ctl::{CtlError, Request, Response};
use rlvs_lvs::{Director, IpvsError};

use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

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
    /// How many rules each table of the traffic filter takes (services,
    /// port-zero services, NAT and FULLNAT real servers, local addresses,
    /// the director's addresses); past that, requests that would add one
    /// are refused.
    pub filter_entries: u32,
    /// AF_XDP: the bpffs to pin the program's maps and links in (default:
    /// the host's /sys/fs/bpf, mounted if absent).
    pub bpffs: Option<std::path::PathBuf>,
    /// AF_XDP: an orderly stop leaves the program attached and its maps
    /// pinned, so established connections keep being forwarded until a
    /// daemon starts again (an upgrade).
    pub keep_forwarding: bool,
    /// The connection table's bound and defences; the cost of a
    /// connection is filled in from the data path chosen.
    pub defence: rlvs_lvs::defence::DefenceConfig,
    /// The bound is what an eighth of memory holds (`default_conn_limit`),
    /// whatever `defence` says.
    pub derive_conn_limit: bool,
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
            filter_entries: crate::maps::FILTER_ENTRIES,
            bpffs: None,
            keep_forwarding: false,
            defence: Default::default(),
            derive_conn_limit: true,
        }
    }
}

/// What one connection costs under `kind`: its user-space entry and,
/// under AF_XDP, its entries in the pinned maps (see maps.rs).
pub fn bytes_per_conn(kind: EngineKind) -> u64 {
    let user = rlvs_lvs::ConnTable::BYTES_PER_CONN;
    match kind {
        EngineKind::AfXdp => user + crate::maps::BPF_BYTES_PER_CONN,
        _ => user,
    }
}

/// The bound a table gets unless told: what an eighth of the host's memory
/// holds at `bytes_per_conn` (the kernel's IPVS, unbounded, would take it
/// all before its defences acted on free memory).
pub fn default_conn_limit(bytes_per_conn: u64) -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 =
        meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024 / 8 / bytes_per_conn.max(1))
}

pub use rlvs_ctl::{ControlMsg, Reply, Subscriber};

enum Msg {
    Control(ControlMsg),
    Subscribe(Subscriber),
}

/// How other threads talk to the engine thread.
#[derive(Clone)]
pub struct Handle {
    tx: Sender<Msg>,
    waker: Arc<Waker>,
    shared: Arc<Shared>,
    kind: EngineKind,
}

impl Handle {
    /// Queues a request; its reply is called once the change it made is in
    /// the data plane (traffic filter and next-hop watch), so a client that
    /// sees the reply can send traffic at once.
    pub fn send(&self, msg: ControlMsg) {
        if self.tx.send(Msg::Control(msg)).is_ok() {
            self.waker.wake();
        }
    }

    /// Has `f` called with the table events of every request sent after
    /// this call.
    pub fn subscribe(&self, f: Subscriber) {
        if self.tx.send(Msg::Subscribe(f)).is_ok() {
            self.waker.wake();
        }
    }

    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.waker.wake();
    }
}

impl rlvs_ctl::Engine for Handle {
    fn send(&self, msg: ControlMsg) {
        Handle::send(self, msg)
    }
    fn subscribe(&self, f: Subscriber) {
        Handle::subscribe(self, f)
    }
    fn stop(&self) {
        Handle::stop(self)
    }
    fn name(&self) -> &'static str {
        self.kind.name()
    }
}

/// What keeps the director's own kernel away from the engine's traffic.
enum Filter {
    Guard(Guard),
    Xdp(Program),
}

impl Filter {
    fn apply(&mut self, added: &[Rule], removed: &[Rule]) -> Result<()> {
        if added.is_empty() && removed.is_empty() {
            return Ok(());
        }
        match self {
            Filter::Guard(g) => g.apply(added, removed),
            Filter::Xdp(p) => p.apply(added, removed),
        }
    }
}

struct Ctl {
    filter: Filter,
    resolver: Resolver,
    rtnl: Rtnl,
    /// AF_XDP: the connections forwarded inside the XDP program.
    fast: Option<FastPath>,
}

struct Engine {
    shared: Arc<Shared>,
    /// When the estimator's next tick is due.
    fold_at: rlvs_lvs::Time,
    /// The first worker, driven by this thread; None without a data plane.
    worker: Option<Worker>,
    ctl: Option<Ctl>,
    /// The other workers' wake-ups and threads.
    others: Vec<(Arc<Waker>, std::thread::JoinHandle<()>)>,
    kind: EngineKind,
    follower: Follower,
    subscribers: Vec<Subscriber>,
    /// A test hook (RLVS_TEST_FILTER_DELAY_MS): the traffic filter follows
    /// a change this much later, while packets keep flowing, which holds
    /// open the window an answer sent before the filter would fall into.
    filter_delay: Duration,
    /// When the delayed filter changes are applied.
    filter_due: Option<Instant>,
    /// Answers waiting for their changes to reach the data plane.
    held: Vec<(Reply, Response)>,
    /// AF_XDP: what a restarted daemon needs besides the pinned maps.
    state: Option<StateFile>,
    /// Connection sync daemons (set once the engine's kind is known).
    sync: Option<crate::sync::SyncShell>,
    /// Clients of synced NAT/FULLNAT connections whose next hops are
    /// resolved for their replies (Director::take_wanted_hops).
    client_hops: std::collections::HashSet<std::net::IpAddr>,
}

mod events;

/// Requests applied together before the data plane catches up and their
/// replies go out; bounded so that worker 0's packets are not held up by
/// a bulk load.
const BATCH: usize = 256;

/// Opens the packet path `kind` asks for; `Auto` tries AF_XDP and falls
/// back to AF_PACKET, saying why. Returns the filter and one port per worker.
fn open_path(kind: EngineKind, cfg: &EngineConfig, devices: &[String]) -> Result<(Filter, Vec<Port>, EngineKind)> {
    if matches!(kind, EngineKind::Auto | EngineKind::AfXdp) {
        let max =
            if cfg.workers == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { cfg.workers };
        let opened = crate::pins::open(cfg.bpffs.as_deref())
            .context("the bpffs directory for the XDP program's pins")
            .and_then(|pins| crate::xdp_io::open(devices, cfg.zero_copy, max, cfg.filter_entries, pins));
        match opened {
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
        published: Default::default(),
    });
    let filter_delay = std::env::var("RLVS_TEST_FILTER_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::ZERO, Duration::from_millis);
    let mut engine = Engine {
        shared: shared.clone(),
        fold_at: rlvs_lvs::Time::ZERO,
        worker: None,
        ctl: None,
        others: Vec::new(),
        kind: EngineKind::None,
        follower: Follower::new(cfg.filter_entries as usize),
        subscribers: Vec::new(),
        filter_delay,
        filter_due: None,
        held: Vec::new(),
        state: None,
        sync: None,
        client_hops: Default::default(),
    };
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
        let (mut filter, ports, kind) = open_path(cfg.kind, &cfg, &devices)?;
        let mut saved = None;
        let fast = match &mut filter {
            Filter::Xdp(prog) => {
                prog.keep = cfg.keep_forwarding;
                let epoch = crate::fastpath::monotonic_ns().saturating_sub(shared.start.elapsed().as_nanos() as u64);
                let mut fast = prog.fast_path(epoch)?;
                let state = StateFile::open(crate::pins::netns_cookie()?)?;
                if prog.adopted {
                    saved = state.load();
                    if saved.is_none() {
                        tracing::warn!(
                            "pinned XDP state of an earlier daemon found without its state file; starting afresh"
                        );
                        prog.prune(&[])?;
                        fast.clear();
                    }
                }
                engine.state = Some(state);
                shared.director.lock().unwrap_or_else(|e| e.into_inner()).follow_conns(true);
                Some(fast)
            }
            Filter::Guard(_) => None,
        };
        let resolver = Resolver::spawn(waker.clone()).context("opening rtnetlink")?;
        let rtnl = Rtnl::new().context("opening rtnetlink")?;
        engine.ctl = Some(Ctl { filter, resolver, rtnl, fast });
        engine.kind = kind;
        // The director's own addresses before any request: replies to them
        // (health checks) are never the engine's.
        engine.reread_local();
        engine.catch_up();
        match saved {
            Some(saved) => engine.adopt(saved)?,
            // A snapshot of the empty tables replaces whatever an earlier
            // daemon's state file said.
            None => engine.snapshot(true),
        }
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
    let mut defence = cfg.defence;
    defence.bytes_per_conn = bytes_per_conn(engine.kind);
    if cfg.derive_conn_limit {
        defence.limit = default_conn_limit(defence.bytes_per_conn);
    }
    if let Err(why) = shared.director.lock().unwrap_or_else(|e| e.into_inner()).set_defence(defence) {
        bail!("connection defences: {why}");
    }
    tracing::info!(limit = ?defence.limit, bytes_per_conn = defence.bytes_per_conn, "connection table bound");
    // Under AF_XDP established flows bypass the director (sync.rs's notes).
    engine.sync = Some(crate::sync::SyncShell::new(shared.clone(), waker.clone(), engine.kind != EngineKind::AfXdp));
    let (tx, rx) = channel();
    let handle = Handle { tx, waker: waker.clone(), shared: shared.clone(), kind: engine.kind };
    let t = spawn_or_die("rlvs-engine".into(), move || engine.run(rx, waker))?;
    Ok((handle, t))
}

impl Engine {
    fn run(&mut self, rx: Receiver<Msg>, waker: Arc<Waker>) {
        let mut last_expire = Instant::now();
        let mut last_stats = Instant::now();
        let mut fds = vec![waker.fd()];
        if let Some(w) = &self.worker {
            fds.extend(w.fds());
        }
        let mut batch = Vec::with_capacity(BATCH);
        // The estimator's phase starts with the engine, as the kernel's
        // timer with its namespace.
        {
            let now = self.shared.now();
            let mut d = self.shared.director.lock().unwrap_or_else(|e| e.into_inner());
            d.estimate(now);
            self.fold_at = now + d.estimate_due_in(now).unwrap_or(rlvs_lvs::stats::ESTIMATOR_PERIOD);
        }
        while !self.shared.stop.load(Ordering::SeqCst) {
            if let Err(e) = afpacket::poll_readable(&fds, self.poll_timeout_ms()) {
                tracing::error!(error = %e, "poll failed");
            }
            waker.drain();
            while let Ok(m) = rx.try_recv() {
                match m {
                    Msg::Control(c) => batch.push(c),
                    Msg::Subscribe(f) => {
                        self.control(&mut batch);
                        self.subscribers.push(f);
                    }
                }
                if batch.len() == BATCH {
                    self.control(&mut batch);
                    if let Some(w) = self.worker.as_mut() {
                        w.receive();
                    }
                }
            }
            self.control(&mut batch);
            if self.filter_due.is_some_and(|t| Instant::now() >= t) {
                self.catch_up();
            }
            self.apply_resolver_updates();
            if let Some(w) = self.worker.as_mut() {
                w.receive();
                self.shared.publish(0, &w.stats);
            }
            self.follow_connections();
            self.fold_counters();
            if let Some(s) = self.sync.as_mut() {
                s.flush();
            }
            self.snapshot(false);
            if last_expire.elapsed().as_millis() >= 1000 {
                let now = self.shared.now();
                let shared = self.shared.clone();
                let mut d = shared.director.lock().unwrap_or_else(|e| e.into_inner());
                let n = match self.ctl.as_mut().and_then(|c| c.fast.as_mut()) {
                    Some(fast) => {
                        fast.collect_stats(&mut d);
                        d.expire_with(now, |k, o| fast.last_seen(k, o))
                    }
                    None => d.expire(now),
                };
                d.defend(now);
                drop(d);
                self.follow_connections();
                if n > 0 {
                    tracing::trace!(expired = n, "connections expired");
                }
                // The director's own addresses change (VIPs come and go).
                self.reread_local();
                self.catch_up();
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
        let keep = matches!(self.ctl.as_ref().map(|c| &c.filter), Some(Filter::Xdp(p)) if p.keep);
        if keep {
            self.snapshot(true);
        } else if let Some(st) = &self.state {
            st.remove();
        }
        let stats = self.worker.as_ref().map(|w| w.stats).unwrap_or_default();
        if let Some(fast) = self.ctl.as_ref().and_then(|c| c.fast.as_ref()) {
            let (forwarded, punted, orphaned) = fast.counters();
            tracing::info!(forwarded, punted, orphaned, "XDP fast path");
        }
        tracing::info!(?stats, "engine stopped");
    }

    /// Up to 100 ms, less when the estimator's tick comes sooner, so the
    /// tick is on time (listings show what it folds, as the kernel's do).
    fn poll_timeout_ms(&self) -> i32 {
        self.fold_at.0.saturating_sub(self.shared.now().0).min(100) as i32
    }

    /// The estimator's tick, when due: what the fast path forwarded since
    /// its last collection counts first.
    fn fold_counters(&mut self) {
        let now = self.shared.now();
        if now < self.fold_at {
            return;
        }
        let shared = self.shared.clone();
        let mut d = shared.director.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fast) = self.ctl.as_mut().and_then(|c| c.fast.as_mut()) {
            fast.collect_stats(&mut d);
        }
        d.estimate(now);
        self.fold_at = now + d.estimate_due_in(now).unwrap_or(rlvs_lvs::stats::ESTIMATOR_PERIOD);
    }

    /// New next hops into the shared table; the workers send what they held.
    fn apply_resolver_updates(&mut self) {
        let Some(ctl) = self.ctl.as_mut() else { return };
        let mut changed = false;
        {
            let mut hops = self.shared.hops.write().unwrap_or_else(|e| e.into_inner());
            while let Ok((addr, hop)) = ctl.resolver.updates.try_recv() {
                changed = true;
                // An answer for an address no longer watched is stale.
                let real_server = self.follower.watches(addr);
                let hop = hop.filter(|_| real_server || self.client_hops.contains(&addr));
                if let (Some(fast), true) = (ctl.fast.as_mut(), real_server) {
                    fast.resolved(addr, hop.as_ref());
                }
                match hop {
                    Some(h) => hops.insert(addr, h),
                    None => hops.remove(&addr),
                };
            }
        }
        if changed {
            if let Some(fast) = ctl.fast.as_mut() {
                // The director's lock before the next hops', as workers take them.
                let d = self.shared.director.lock().unwrap_or_else(|e| e.into_inner());
                let hops = self.shared.hops.read().unwrap_or_else(|e| e.into_inner());
                fast.retry_waiting(&d, &hops);
            }
            if let Some(w) = self.worker.as_mut() {
                w.release_pending();
            }
            for (wk, _) in &self.others {
                wk.wake();
            }
        }
    }

    /// Applies a batch of requests to the director, brings the data plane
    /// up to date with what they changed, and only then replies: a client
    /// that has its answer finds the change in force.
    fn control(&mut self, batch: &mut Vec<ControlMsg>) {
        if batch.is_empty() {
            return;
        }
        let now = self.shared.now();
        {
            let shared = self.shared.clone();
            let mut d = shared.director.lock().unwrap_or_else(|e| e.into_inner());
            // What the fast path forwarded counts before anything is read
            // or zeroed; a listing of connections shows their timers as the
            // fast path last saw them.
            if let Some(fast) = self.ctl.as_mut().and_then(|c| c.fast.as_mut()) {
                fast.collect_stats(&mut d);
                if batch.iter().any(|m| matches!(m.req, Request::ListConns)) {
                    d.refresh_seen(|k, o| fast.last_seen(k, o));
                }
            }
            for msg in batch.drain(..) {
                let refused = self.ctl.as_ref().and(self.follower.refuses(&msg.req));
                let resp = match refused {
                    Some(why) => {
                        tracing::error!(request = ?msg.req, "refused: {why}");
                        Response::Error(CtlError::Ipvs(IpvsError::NoMemory))
                    }
                    None if matches!(msg.req, Request::EngineStats) => {
                        let fast = self.ctl.as_ref().and_then(|c| c.fast.as_ref());
                        Response::EngineStats(crate::stats::counters(
                            &self.shared.totals(),
                            fast,
                            d.conn_count(),
                            d.defence_status(),
                            self.sync.as_ref(),
                        ))
                    }
                    None if matches!(
                        msg.req,
                        Request::StartDaemon(_) | Request::StopDaemon { .. } | Request::ListDaemons
                    ) =>
                    {
                        // The sync shell takes the director's lock itself.
                        drop(d);
                        let resp = match (self.sync.as_mut(), msg.req) {
                            (Some(s), Request::StartDaemon(cfg)) => s.start(cfg),
                            (Some(s), Request::StopDaemon { state }) => s.stop(state),
                            (Some(s), _) => s.list(),
                            (None, req) => rlvs_ctl::handle(
                                &mut shared.director.lock().unwrap_or_else(|e| e.into_inner()),
                                req,
                                now,
                                self.kind.name(),
                            ),
                        };
                        d = shared.director.lock().unwrap_or_else(|e| e.into_inner());
                        resp
                    }
                    None => {
                        let journalled = self.state.is_some().then(|| msg.req.clone());
                        let resp = rlvs_ctl::handle(&mut d, msg.req, now, self.kind.name());
                        if let (Some(st), Some(req), Response::Ok) = (self.state.as_mut(), journalled, &resp) {
                            st.record(&req);
                        }
                        resp
                    }
                };
                self.held.push((msg.reply, resp));
                // Each request's events before the next one's check for room.
                while let Some(e) = d.poll_event() {
                    self.event(&d, e);
                }
            }
        }
        self.catch_up();
    }

    fn reread_local(&mut self) {
        let Some(ctl) = self.ctl.as_mut() else { return };
        match ctl.rtnl.all_addresses() {
            Ok(addrs) => self.follower.set_local(&addrs),
            Err(e) => tracing::warn!(error = %e, "could not read the director's addresses"),
        }
    }

    /// Applies what changed since the last call to the traffic filter and
    /// the next-hop watch: only the rules that came or went, so a change
    /// costs the same in a table of ten services or of ten thousand.
    /// Then the answers held for those changes go out.
    fn catch_up(&mut self) {
        if !self.filter_delay.is_zero() && self.ctl.is_some() && self.follower.filter_changes() {
            let due = *self.filter_due.get_or_insert_with(|| Instant::now() + self.filter_delay);
            if Instant::now() < due {
                return;
            }
        }
        self.filter_due = None;
        self.apply_delta();
        // The journal before the answers: what a client was told of
        // survives a crash.
        if let Some(st) = self.state.as_mut() {
            st.flush();
        }
        for (reply, resp) in self.held.drain(..) {
            reply(resp);
        }
    }

    fn apply_delta(&mut self) {
        let delta = self.follower.take();
        let Some(ctl) = self.ctl.as_mut() else { return };
        if delta.is_empty() {
            return;
        }
        if let Err(e) = ctl.filter.apply(&delta.added, &delta.removed) {
            tracing::error!(error = format!("{e:#}"), "could not update the traffic filter; retrying every second");
            self.follower.requeue(delta.added, delta.removed);
        }
        if !delta.unwatch.is_empty() {
            let mut hops = self.shared.hops.write().unwrap_or_else(|e| e.into_inner());
            for a in &delta.unwatch {
                hops.remove(a);
            }
        }
        if let Some(fast) = ctl.fast.as_mut() {
            for &a in &delta.unwatch {
                fast.unwatch(a);
            }
            for &a in &delta.watch {
                fast.watch(a);
            }
        }
        ctl.resolver.watch(delta.watch, delta.unwatch);
    }
}
