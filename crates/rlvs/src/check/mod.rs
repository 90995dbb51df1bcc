//! The checker side: keepalived.conf's virtual servers put into the engine
//! and their real servers health-checked. It runs on a thread and tokio
//! runtime of its own, so a probe that hangs (each is bounded anyway) can
//! never delay VRRP. The schedules and pool rules are `rlvs_health`'s; this
//! shell runs the probes and sends table changes to the engine.

pub(crate) mod probe;
pub(crate) mod setup;
mod table;

use rlvs_ctl::ControlMsg;
use rlvs_ctl::{Request, Response};
use rlvs_health::checker::{Outcome, Step};
use rlvs_health::pool::{Event, Op};
use setup::{CheckerRt, Probe, VsRt};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

pub enum Command {
    /// Apply a configuration; the sender, if any, hears once the engine
    /// has applied every change the reload asked of it.
    Reload(Box<rlvs_conf::Config>, Option<oneshot::Sender<()>>),
    /// `rlvs ctl status`: every managed real server's state.
    Status(oneshot::Sender<Vec<rlvs_ctl::RsState>>),
    /// `rlvs ctl drain|enable|weight`: the answer for the operator.
    Operator {
        addr: std::net::IpAddr,
        port: Option<u16>,
        op: rlvs_ctl::OperatorOp,
        reply: oneshot::Sender<rlvs_ctl::Response>,
    },
    Stop(oneshot::Sender<()>),
    /// keepalived_check.data's text (the DATA signal).
    Dump(oneshot::Sender<String>),
    /// Every checker's results, for metrics.
    Metrics(oneshot::Sender<Vec<CheckerMetrics>>),
    /// Every virtual server's quorum, for the scale-out announcement.
    Quorum(oneshot::Sender<Vec<VsQuorum>>),
}

/// A virtual server's quorum (keepalived's quorum and hysteresis over its
/// live real servers' weights), under the service keys it programs.
#[derive(Debug, Clone)]
pub struct VsQuorum {
    pub name: String,
    pub keys: Vec<rlvs_lvs::types::ServiceKey>,
    pub up: bool,
}

/// One checker's results, as the metrics show them.
#[derive(Debug, Clone)]
pub struct CheckerMetrics {
    pub vs: String,
    pub rs: String,
    /// HTTP_GET, TCP_CHECK...; `#2` on a second checker of one kind.
    pub checker: String,
    pub stats: setup::CheckStats,
}

pub struct Handle {
    pub commands: mpsc::UnboundedSender<Command>,
    /// Counts the checker loop's turns, for the systemd watchdog.
    pub beat: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Turns true once the configuration's virtual servers are in the
    /// engine's table (systemd's READY waits for it).
    pub installed: tokio::sync::watch::Receiver<bool>,
}

/// A probe's answer: checker id, the generation it was started for (a
/// reload may have replaced the checker), the outcome, and a weight for
/// MISC_CHECK's misc_dynamic and FILE_CHECK.
type ProbeResult = (usize, u64, Outcome, Option<i64>, Duration);

pub fn spawn(config: rlvs_conf::Config, engine: rlvs_ctl::EngineHandle) -> (Handle, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let beat = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let loop_beat = beat.clone();
    let (installed_tx, installed) = tokio::sync::watch::channel(false);
    let t = std::thread::Builder::new()
        .name("rlvs-checkers".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("checker runtime: {e}");
                    return;
                }
            };
            rt.block_on(run(config, engine, rx, loop_beat, installed_tx));
        })
        .expect("spawning the checker thread");
    (Handle { commands: tx, beat, installed }, t)
}

pub(crate) fn sockaddr_of(a: SocketAddr) -> (libc::sockaddr_storage, u32) {
    // SAFETY: zeroed storage is a valid initial value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match a {
        SocketAddr::V4(v) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: v.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: fits in storage.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in, sin) };
            (ss, std::mem::size_of::<libc::sockaddr_in>() as u32)
        }
        SocketAddr::V6(v) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as u16,
                sin6_port: v.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr { s6_addr: v.ip().octets() },
                sin6_scope_id: 0,
            };
            // SAFETY: fits in storage.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in6, sin6) };
            (ss, std::mem::size_of::<libc::sockaddr_in6>() as u32)
        }
    }
}

pub(crate) struct Manager {
    engine: rlvs_ctl::EngineHandle,
    table: table::Table,
    vss: Vec<VsRt>,
    checkers: Vec<CheckerRt>,
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    results: mpsc::UnboundedSender<ProbeResult>,
    tls: Arc<rustls::ClientConfig>,
    local: HashSet<IpAddr>,
    global: rlvs_conf::model::GlobalDefs,
}

/// Sends a request to the engine and logs what it refuses.
fn send(engine: &rlvs_ctl::EngineHandle, req: Request) {
    let what = format!("{req:?}");
    engine.send(ControlMsg {
        req,
        reply: Box::new(move |r| {
            if let Response::Error(e) = r {
                tracing::warn!("IPVS: {what} refused: {e:?}");
            }
        }),
    });
}

impl Manager {
    fn status(&self) -> Vec<rlvs_ctl::RsState> {
        let mut out = Vec::new();
        for v in &self.vss {
            for (i, rs) in v.pool.rs.iter().enumerate() {
                let hold = v.dests.get(i).and_then(|d| self.table.hold_of(d.addr, d.port));
                out.push(rlvs_ctl::RsState { vs: v.pool.name.clone(), rs: rs.name.clone(), up: rs.alive(), hold });
            }
        }
        out
    }

    fn metrics(&self) -> Vec<CheckerMetrics> {
        let mut seen: std::collections::HashMap<(usize, usize, &'static str), u32> = Default::default();
        let mut out = Vec::new();
        for c in self.checkers.iter().filter(|c| !c.retired) {
            let kind = setup::kind_name(&c.model.kind);
            let n = seen.entry((c.vs, c.rs, kind)).or_default();
            *n += 1;
            let checker = if *n == 1 { kind.to_string() } else { format!("{kind}#{n}") };
            let v = &self.vss[c.vs];
            out.push(CheckerMetrics {
                vs: v.pool.name.clone(),
                rs: v.pool.rs[c.rs].name.clone(),
                checker,
                stats: c.stats.clone(),
            });
        }
        out
    }

    /// An operator's drain, weight or enable, logged per real server.
    fn operator(&mut self, addr: std::net::IpAddr, port: Option<u16>, op: rlvs_ctl::OperatorOp) -> rlvs_ctl::Response {
        match self.table.hold(addr, port, op) {
            Ok(keys) => {
                let what = match op {
                    rlvs_ctl::OperatorOp::Drain => "drained (weight 0, established connections kept)".to_string(),
                    rlvs_ctl::OperatorOp::Weight(w) => format!("weight set to {w} by the operator"),
                    rlvs_ctl::OperatorOp::Enable => "enabled: configured weight and checks rule again".to_string(),
                };
                let lines: Vec<String> = keys
                    .iter()
                    .map(|(service, a, p)| {
                        let vs = self.vss.iter().find(|v| v.keys.contains(service)).map(|v| v.pool.name.clone());
                        let rs = if a.is_ipv6() { format!("[{a}]:{p}") } else { format!("{a}:{p}") };
                        format!("{rs} in VS {}: {what}", vs.unwrap_or_else(|| format!("{service:?}")))
                    })
                    .collect();
                for l in &lines {
                    tracing::info!("(ctl) {l}");
                }
                rlvs_ctl::Response::Done(lines)
            }
            Err(e) => rlvs_ctl::Response::Refused(e),
        }
    }

    fn apply(&mut self, vi: usize, ops: Vec<Op>) {
        for op in ops {
            let vs = &mut self.vss[vi];
            let (target, weight) = match op {
                Op::Set { target, weight } => (target, Some(weight)),
                Op::Remove(t) => (t, None),
            };
            let Some(mut dest) = vs.dest(target) else { continue };
            if let Some(w) = weight {
                dest.weight = w as i32;
                vs.in_table.insert(target);
            } else {
                vs.in_table.remove(&target);
            }
            for key in vs.keys.clone() {
                self.table.want(key, dest, weight.is_some());
            }
        }
    }

    fn events(&self, vi: usize, events: &[Event]) {
        for s in self.vss[vi].scripts(events) {
            crate::vrrp::scripts::notify(&s, &[]);
        }
    }

    fn out(&mut self, vi: usize, o: rlvs_health::pool::Out) {
        for l in &o.logs {
            tracing::info!("{l}");
        }
        self.events(vi, &o.events);
        self.apply(vi, o.ops);
    }

    fn schedule(&mut self, id: usize, after: Duration) {
        let c = &mut self.checkers[id];
        c.running = false;
        self.heap.push(Reverse((Instant::now() + after, id, c.gen)));
    }

    fn start_probe(&mut self, id: usize) {
        let c = &mut self.checkers[id];
        let vs = &self.vss[c.vs];
        if vs.ha_suspend && !vs.local(&self.local) {
            let d = c.core.timing.delay_loop;
            self.schedule(id, d);
            return;
        }
        c.running = true;
        let (gen, tx, tls) = (c.gen, self.results.clone(), self.tls.clone());
        let probe = c.probe.clone();
        let url = c.core.url();
        tokio::spawn(async move {
            let started = Instant::now();
            let (out, weight) = run_probe(&probe, url, tls).await;
            let _ = tx.send((id, gen, out, weight, started.elapsed()));
        });
    }

    fn result(&mut self, id: usize, gen: u64, out: Outcome, weight: Option<i64>, took: Duration) {
        let Some(c) = self.checkers.get_mut(id) else { return };
        if c.gen != gen || c.retired {
            return;
        }
        c.stats.record(&out, took);
        if let Outcome::Fail(reason) = &out {
            if self.global.checker_log_all_failures || c.log_all_failures {
                tracing::info!("Check on service {} failed: {reason}", c.core.name);
            } else {
                tracing::debug!("Check on service {} failed: {reason}", c.core.name);
            }
        }
        let step: Step = c.core.result(&out);
        let (vi, ri) = (c.vs, c.rs);
        if let Some(l) = &step.log {
            tracing::info!("{l}");
        }
        // Why it went down, whatever log_all_failures says.
        if let (Some(false), Outcome::Fail(reason)) = (step.became, &out) {
            tracing::info!("Last check of service {} failed: {reason}", c.core.name);
        }
        // misc_dynamic / FILE_CHECK: a weight with the success.
        if let (Outcome::Ok, Some(w)) = (&out, weight) {
            if c.last_weight != Some(w) {
                c.last_weight = Some(w);
                let o = self.vss[vi].pool.set_weight(ri, w);
                self.out(vi, o);
            }
        }
        if let Some(up) = step.became {
            let o = self.vss[vi].pool.checker_changed(ri, up);
            self.out(vi, o);
        }
        self.schedule(id, step.next_in);
    }

    fn refresh_local(&mut self) {
        if !self.vss.iter().any(|v| v.ha_suspend) {
            return;
        }
        if let Ok(mut r) = rlvs_dataplane::netlink::Rtnl::new() {
            if let Ok(a) = r.all_addresses() {
                self.local = a.into_iter().collect();
            }
        }
    }

    /// The table emptied as keepalived empties it at stop; with omega, the
    /// down notifiers run (all at once, each cut off after a second, as
    /// keepalived bounds them) before the daemon goes on exiting.
    async fn shutdown(&mut self) {
        let mut last_words = Vec::new();
        for vi in 0..self.vss.len() {
            let omega = self.vss[vi].model.omega;
            let o = self.vss[vi].pool.clear(true, omega);
            for l in &o.logs {
                tracing::info!("{l}");
            }
            last_words.extend(self.vss[vi].scripts(&o.events));
            self.apply(vi, o.ops);
            for key in self.vss[vi].keys.clone() {
                send(&self.engine, Request::DelService { key });
                self.table.forget_service(&key);
            }
        }
        let mut running = tokio::task::JoinSet::new();
        for s in last_words {
            running.spawn(async move { crate::vrrp::scripts::notify_before_exit(&s, Duration::from_secs(1)).await });
        }
        while running.join_next().await.is_some() {}
    }
}

async fn run_probe(p: &Probe, url: usize, tls: Arc<rustls::ClientConfig>) -> (Outcome, Option<i64>) {
    match p {
        Probe::Tcp(c) => (probe::tcp(c).await, None),
        Probe::Http { conn, check } => match check.urls.get(url) {
            Some(u) => (probe::http(conn, check, u, check.ssl.then_some(tls)).await, None),
            None => (Outcome::Fail("no url".into()), None),
        },
        Probe::Smtp { conn, helo } => (probe::smtp(conn, helo).await, None),
        Probe::Udp { conn, check } => (probe::udp(conn, check).await, None),
        Probe::Dns { conn, qtype, name } => (probe::dns(conn, qtype, name).await, None),
        Probe::Ping(c) => (probe::ping(c).await, None),
        Probe::Misc { script, timeout, dynamic, iweight } => misc(script, *timeout, *dynamic, *iweight).await,
        Probe::File { path, weight, reverse, init, iweight } => {
            let v: i64 = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()).or(*init).unwrap_or(0);
            let m = if *reverse { -1 } else { 1 };
            let w = i64::from(*weight);
            if w == 0 {
                (if v == 0 { Outcome::Ok } else { Outcome::Fail(format!("{path} = {v}")) }, None)
            } else if v * w * m <= -254 {
                (Outcome::Fail(format!("{path} = {v}")), None)
            } else {
                (Outcome::Ok, Some(*iweight + v * w * m))
            }
        }
    }
}

/// MISC_CHECK: exit 0 is up; with misc_dynamic, 2-255 are up with weight
/// code - 2; the rest, a signal or the timeout, down.
async fn misc(
    script: &Option<crate::vrrp::scripts::Runnable>,
    timeout: Duration,
    dynamic: bool,
    iweight: i64,
) -> (Outcome, Option<i64>) {
    let Some(r) = script else { return (Outcome::Fail("script disabled".into()), None) };
    let mut cmd = tokio::process::Command::new(&r.argv[0]);
    cmd.args(&r.argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd.process_group(0).kill_on_drop(true);
    if r.uid != 0 || r.gid != 0 {
        cmd.uid(r.uid).gid(r.gid);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (Outcome::Fail(format!("failed to run ({e})")), None),
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(st)) => match st.code() {
            Some(0) => (Outcome::Ok, dynamic.then_some(iweight)),
            Some(c) if dynamic && (2..=255).contains(&c) => (Outcome::Ok, Some(i64::from(c) - 2)),
            Some(c) => (Outcome::Fail(format!("exited with status {c}")), None),
            None => (Outcome::Fail("killed by a signal".into()), None),
        },
        Ok(Err(e)) => (Outcome::Fail(e.to_string()), None),
        Err(_) => {
            if let Some(pid) = child.id() {
                // SAFETY: killing the script's own process group.
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            }
            let _ = child.wait().await;
            (Outcome::Fail("timed out".into()), None)
        }
    }
}

async fn run(
    config: rlvs_conf::Config,
    engine: rlvs_ctl::EngineHandle,
    mut commands: mpsc::UnboundedReceiver<Command>,
    beat: std::sync::Arc<std::sync::atomic::AtomicU64>,
    installed: tokio::sync::watch::Sender<bool>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<ProbeResult>();
    let (table, mut table_msgs) = table::Table::new(engine.clone());
    let mut m = Manager {
        engine,
        table,
        vss: Vec::new(),
        checkers: Vec::new(),
        heap: BinaryHeap::new(),
        results: tx,
        tls: probe::tls_config(),
        local: HashSet::new(),
        global: config.global.clone(),
    };
    setup::install(&mut m, &config, None);
    m.refresh_local();
    // The engine answers in order: once it has, the services are in.
    let _ = crate::systemd::engine_answers(&m.engine).await;
    let _ = installed.send(true);
    let mut local_tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let next = m.heap.peek().map(|Reverse((t, _, _))| *t);
        let sleep = async {
            match next {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {
                let now = Instant::now();
                while let Some(Reverse((t, id, gen))) = m.heap.peek().copied() {
                    if t > now {
                        break;
                    }
                    m.heap.pop();
                    let c = &m.checkers[id];
                    if c.gen == gen && !c.running && !c.retired {
                        m.start_probe(id);
                    }
                }
            }
            Some((id, gen, out, w, took)) = rx.recv() => m.result(id, gen, out, w, took),
            Some(msg) = table_msgs.recv() => m.table.message(msg),
            _ = local_tick.tick() => {
                m.refresh_local();
                beat.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Some(cmd) = commands.recv() => match cmd {
                Command::Reload(c, applied) => {
                    m.global = c.global.clone();
                    setup::reload(&mut m, &c);
                    if let Some(applied) = applied {
                        // The engine takes requests in order: its answer to
                        // this one comes after every change above.
                        let engine = m.engine.clone();
                        tokio::spawn(async move {
                            let _ = crate::systemd::engine_answers(&engine).await;
                            let _ = applied.send(());
                        });
                    }
                }
                Command::Status(reply) => {
                    let _ = reply.send(m.status());
                }
                Command::Dump(reply) => {
                    let _ = reply.send(crate::dumps::check_data(&m.global, &m.vss, &m.checkers));
                }
                Command::Metrics(reply) => {
                    let _ = reply.send(m.metrics());
                }
                Command::Quorum(reply) => {
                    let q = m.vss.iter().map(|v| VsQuorum { name: v.pool.name.clone(), keys: v.keys.clone(), up: v.pool.quorum_up() });
                    let _ = reply.send(q.collect());
                }
                Command::Operator { addr, port, op, reply } => {
                    let answer = m.operator(addr, port, op);
                    // Answered once the engine has the change (it takes
                    // requests in order), so the operator's next ipvsadm -Ln shows it.
                    let engine = m.engine.clone();
                    tokio::spawn(async move {
                        let _ = crate::systemd::engine_answers(&engine).await;
                        let _ = reply.send(answer);
                    });
                }
                Command::Stop(done) => {
                    m.shutdown().await;
                    let _ = done.send(());
                    return;
                }
            },
        }
    }
}
