//! keepalived.conf's virtual servers into engine services, pools and
//! checkers; and the difference a reload makes (kept servers keep their
//! state and connections, weights change by edit).

use super::probe::Conn;
use super::Manager;
use crate::vrrp::scripts::{self, Runnable};
use rlvs_conf::model::{self as m, Config, LbKind, VirtualServer, VsProtocol, VsTarget, VsgEntry};
use rlvs_ctl::Request;
use rlvs_health::checker::{Checker, Style, Timing};
use rlvs_health::pool::{Event, Pool, RealServer, Target};
use rlvs_lvs::director::TimeoutTriple;
use rlvs_lvs::types::{svc_flags, DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

#[derive(Clone)]
pub enum Probe {
    Tcp(Conn),
    Http { conn: Conn, check: m::HttpCheck },
    Smtp { conn: Conn, helo: String },
    Udp { conn: Conn, check: m::UdpCheck },
    Dns { conn: Conn, qtype: String, name: String },
    Ping(Conn),
    Misc { script: Option<Runnable>, timeout: Duration, dynamic: bool, iweight: i64 },
    File { path: String, weight: i32, reverse: bool, init: Option<i64>, iweight: i64 },
}

pub struct CheckerRt {
    pub vs: usize,
    pub rs: usize,
    pub core: Checker,
    pub probe: Probe,
    pub gen: u64,
    pub running: bool,
    pub retired: bool,
    pub log_all_failures: bool,
    pub last_weight: Option<i64>,
    /// As configured, for keepalived_check.data.
    pub model: m::Checker,
    pub stats: CheckStats,
}

/// What a checker's probes found, for metrics.
#[derive(Debug, Clone, Default)]
pub struct CheckStats {
    pub succeeded: u64,
    pub failed: u64,
    pub failures: std::collections::BTreeMap<&'static str, u64>,
    pub last_ok: Option<bool>,
    pub last_duration: Duration,
    pub duration_total: Duration,
}

pub struct VsRt {
    pub model: VirtualServer,
    pub keys: Vec<ServiceKey>,
    pub svc: ServiceConfig,
    pub pool: Pool,
    pub dests: Vec<DestConfig>,
    pub sorry: Option<DestConfig>,
    pub in_table: HashSet<Target>,
    pub notify_up: Vec<Option<Runnable>>,
    pub notify_down: Vec<Option<Runnable>>,
    pub quorum_up: Option<Runnable>,
    pub quorum_down: Option<Runnable>,
    pub ha_suspend: bool,
    pub laddrs: Vec<IpAddr>,
}

impl VsRt {
    /// The notify scripts that pool events call for.
    pub fn scripts(&self, events: &[Event]) -> Vec<Runnable> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::RsUp(i) => self.notify_up.get(*i).cloned().flatten(),
                Event::RsDown(i) => self.notify_down.get(*i).cloned().flatten(),
                Event::QuorumUp => self.quorum_up.clone(),
                Event::QuorumDown => self.quorum_down.clone(),
            })
            .collect()
    }

    pub fn dest(&self, t: Target) -> Option<DestConfig> {
        match t {
            Target::Rs(i) => self.dests.get(i).copied(),
            Target::Sorry => self.sorry,
        }
    }

    /// ha_suspend: whether the virtual address is on this director.
    pub fn local(&self, local: &HashSet<IpAddr>) -> bool {
        self.keys.iter().any(|k| local.contains(&k.addr))
    }
}

fn protocol(p: VsProtocol) -> Protocol {
    match p {
        VsProtocol::Tcp => Protocol::Tcp,
        VsProtocol::Udp => Protocol::Udp,
        VsProtocol::Sctp => Protocol::Sctp,
    }
}

/// `[10.1.1.244]:tcp:80`, keepalived's way of naming a service.
fn trio(addr: IpAddr, p: VsProtocol, port: u16) -> String {
    let proto = match p {
        VsProtocol::Tcp => "tcp",
        VsProtocol::Udp => "udp",
        VsProtocol::Sctp => "sctp",
    };
    format!("[{addr}]:{proto}:{port}")
}

fn vs_name(v: &VirtualServer) -> String {
    match &v.target {
        VsTarget::Addr { addr, port } => trio(*addr, v.protocol, *port),
        VsTarget::Fwmark(f) => format!("FWM {f}"),
        VsTarget::Group(g) => format!("[{g}]:0"),
    }
}

/// A fwmark service as kernel IPVS keys it: the mark and a family, which
/// is ip_family's, else that of the real servers, as keepalived takes it.
fn fwmark_key(v: &VirtualServer, mark: u32) -> ServiceKey {
    let v6 = match v.ip_family {
        Some(f) => f == 6,
        None => v.real_servers.first().is_some_and(|r| r.addr.is_ipv6()),
    };
    let addr =
        if v6 { IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED) };
    ServiceKey { protocol: Protocol::Tcp, addr, port: 0, fwmark: mark }
}

/// Every IPVS service a virtual server stands for. fwmark services exist
/// only where the kernel matches marks (`kernel`).
fn keys(c: &Config, v: &VirtualServer, kernel: bool) -> Vec<ServiceKey> {
    let p = protocol(v.protocol);
    match &v.target {
        VsTarget::Addr { addr, port } => vec![ServiceKey::new(p, *addr, *port)],
        VsTarget::Fwmark(f) if kernel => vec![fwmark_key(v, *f)],
        VsTarget::Fwmark(f) => {
            tracing::error!("virtual_server fwmark {f}: fwmark services need the kernel IPVS backend - skipping");
            Vec::new()
        }
        VsTarget::Group(name) => {
            let Some(g) = c.vs_groups.iter().find(|g| &g.name == name) else {
                tracing::error!("Virtual server group {name} specified but not configured");
                return Vec::new();
            };
            let mut out = Vec::new();
            for (e, _) in &g.entries {
                match e {
                    VsgEntry::Range { first, last, port } => {
                        let span: Vec<IpAddr> = match (first, last) {
                            (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(*a)..=u32::from(*b))
                                .take(256)
                                .map(|x| IpAddr::from(std::net::Ipv4Addr::from(x)))
                                .collect(),
                            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(*a)..=u128::from(*b))
                                .take(256)
                                .map(|x| IpAddr::from(std::net::Ipv6Addr::from(x)))
                                .collect(),
                            _ => Vec::new(),
                        };
                        out.extend(span.into_iter().map(|a| ServiceKey::new(p, a, *port)));
                    }
                    VsgEntry::Fwmark(f) if kernel => out.push(fwmark_key(v, *f)),
                    VsgEntry::Fwmark(f) => {
                        tracing::error!("VS group {name}: fwmark {f} needs the kernel IPVS backend - skipping")
                    }
                }
            }
            out
        }
    }
}

fn fwd(k: LbKind) -> FwdMethod {
    match k {
        LbKind::Nat => FwdMethod::Masq,
        LbKind::Dr => FwdMethod::DirectRoute,
        LbKind::Tun => FwdMethod::Tunnel,
        LbKind::FullNat => FwdMethod::FullNat,
    }
}

fn dest(rs: &m::RealServer, vs_port: u16) -> DestConfig {
    let mut d = DestConfig::new(rs.addr, if rs.port == 0 { vs_port } else { rs.port }, fwd(rs.lvs_method), rs.weight);
    d.u_threshold = rs.uthreshold.unwrap_or(0);
    d.l_threshold = rs.lthreshold.unwrap_or(0);
    if let Some(t) = &rs.tun {
        d.tun_type = match t.kind.as_str() {
            "gue" => 1,
            "gre" => 2,
            _ => 0,
        };
        d.tun_port = t.port.unwrap_or(0);
        d.tun_flags = match t.csum.as_deref() {
            Some("csum") => 1,
            Some("remcsum") => 2,
            _ => 0,
        };
    }
    d
}

fn service_config(v: &VirtualServer) -> ServiceConfig {
    let mut c = ServiceConfig { scheduler: v.lb_algo.clone(), ..Default::default() };
    for f in &v.sched_flags {
        c.flags |= match f.as_str() {
            "hashed" => svc_flags::HASHED,
            "flag-1" | "sh-fallback" | "mh-fallback" => svc_flags::SCHED1,
            "flag-2" | "sh-port" | "mh-port" => svc_flags::SCHED2,
            "flag-3" => svc_flags::SCHED3,
            _ => 0,
        };
    }
    if v.ops {
        c.flags |= svc_flags::ONEPACKET;
    }
    if let Some(t) = v.persistence_timeout {
        c.flags |= svc_flags::PERSISTENT;
        c.timeout = t;
        c.netmask = match v.persistence_granularity {
            Some(IpAddr::V4(m)) => u32::from(m),
            Some(IpAddr::V6(m)) => u128::from(m).count_ones(),
            None => {
                if matches!(v.target, VsTarget::Addr { addr: IpAddr::V6(_), .. }) {
                    128
                } else {
                    0xffff_ffff
                }
            }
        };
    }
    c.pe_name = v.persistence_engine.clone().unwrap_or_default();
    c
}

fn prep(s: &Option<m::NotifyScript>, g: &m::GlobalDefs) -> Option<Runnable> {
    let s = s.as_ref()?;
    match scripts::prepare(&s.command, s.user.as_ref(), g.script_user.as_ref(), g.enable_script_security) {
        Ok((r, _)) => Some(r),
        Err(e) => {
            tracing::warn!("{e}");
            None
        }
    }
}

fn build_vs(c: &Config, v: &VirtualServer, kernel: bool) -> Option<VsRt> {
    let keys = keys(c, v, kernel);
    if keys.is_empty() {
        return None;
    }
    let vs_port = keys[0].port;
    let name = vs_name(v);
    let rs: Vec<RealServer> = v
        .real_servers
        .iter()
        .map(|r| {
            // alpha: every checker starts down, the server out of the pool.
            let failed = if r.alpha { r.checkers.len() as u32 } else { 0 };
            RealServer::new(
                trio(r.addr, v.protocol, if r.port == 0 { vs_port } else { r.port }),
                i64::from(r.weight),
                r.inhibit_on_failure,
                failed,
            )
        })
        .collect();
    let sorry =
        v.sorry_server.map(|(a, p)| (trio(a, v.protocol, if p == 0 { vs_port } else { p }), v.sorry_server_inhibit));
    let sorry_dest = v.sorry_server.map(|(a, p)| {
        let k = v.sorry_server_lvs_method.unwrap_or(v.lb_kind);
        DestConfig::new(a, if p == 0 { vs_port } else { p }, fwd(k), 1)
    });
    let laddrs = match &v.laddr_group {
        Some(g) => match c.laddr_groups.iter().find(|x| &x.name == g) {
            Some(x) => x.addrs.clone(),
            None => {
                tracing::error!("VS {name}: laddr_group_name {g} is not configured");
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    Some(VsRt {
        keys,
        svc: service_config(v),
        pool: Pool::new(name, v.quorum, v.hysteresis, rs, sorry),
        dests: v.real_servers.iter().map(|r| dest(r, vs_port)).collect(),
        sorry: sorry_dest,
        in_table: HashSet::new(),
        notify_up: v.real_servers.iter().map(|r| prep(&r.notify_up, &c.global)).collect(),
        notify_down: v.real_servers.iter().map(|r| prep(&r.notify_down, &c.global)).collect(),
        quorum_up: prep(&v.quorum_up, &c.global),
        quorum_down: prep(&v.quorum_down, &c.global),
        ha_suspend: v.ha_suspend,
        laddrs,
        model: v.clone(),
    })
}

fn probe(c: &Config, v: &VirtualServer, r: &m::RealServer, ck: &m::Checker, vs_port: u16) -> Probe {
    let port = ck.connect_port.unwrap_or(if r.port == 0 { vs_port } else { r.port });
    let conn = Conn {
        dst: SocketAddr::new(ck.connect_ip.unwrap_or(r.addr), port),
        bindto: ck.bindto,
        bind_port: ck.bind_port,
        timeout: ck.timing.connect_timeout,
    };
    let _ = v;
    match &ck.kind {
        m::CheckKind::Tcp => Probe::Tcp(conn),
        m::CheckKind::Http(h) => Probe::Http { conn, check: h.clone() },
        m::CheckKind::Smtp { helo_name } => Probe::Smtp {
            conn,
            helo: helo_name.clone().or_else(|| c.global.router_id.clone()).unwrap_or_else(|| "localhost".into()),
        },
        m::CheckKind::Udp(u) => Probe::Udp { conn, check: u.clone() },
        m::CheckKind::Dns { query_type, name } => {
            let conn = Conn { dst: SocketAddr::new(conn.dst.ip(), ck.connect_port.unwrap_or(53)), ..conn };
            Probe::Dns { conn, qtype: query_type.clone(), name: name.clone() }
        }
        m::CheckKind::Ping => Probe::Ping(conn),
        m::CheckKind::Misc(mc) => {
            let g = &c.global;
            let script =
                match scripts::prepare(&mc.path, mc.user.as_ref(), g.script_user.as_ref(), g.enable_script_security) {
                    Ok((r, _)) => Some(r),
                    Err(e) => {
                        tracing::warn!("Disabling misc script {}: {e}", mc.path.join(" "));
                        None
                    }
                };
            Probe::Misc {
                script,
                timeout: mc.timeout.unwrap_or(v.delay_loop),
                dynamic: mc.dynamic,
                iweight: i64::from(r.weight),
            }
        }
        m::CheckKind::File { track_file, weight } => {
            let tf = c.track_files.iter().find(|t| &t.name == track_file);
            Probe::File {
                path: tf.map(|t| t.file.clone()).unwrap_or_else(|| track_file.clone()),
                weight: weight.or(tf.map(|t| t.weight)).unwrap_or(1),
                reverse: tf.is_some_and(|t| t.reverse),
                init: tf.and_then(|t| t.init),
                iweight: i64::from(r.weight),
            }
        }
    }
}

fn style(k: &m::CheckKind) -> Style {
    match k {
        m::CheckKind::Tcp => Style::Tcp,
        m::CheckKind::Http(h) => Style::Http { urls: h.urls.len() },
        m::CheckKind::Smtp { .. } => Style::Smtp,
        m::CheckKind::Udp(_) | m::CheckKind::Ping => Style::UdpPing,
        m::CheckKind::Dns { .. } => Style::Dns,
        m::CheckKind::Misc(_) | m::CheckKind::File { .. } => Style::Misc,
    }
}

/// A checker's first probe comes at a random point of its warmup, as
/// keepalived spreads them.
fn first_delay(warmup: Duration, salt: usize) -> Duration {
    if warmup.is_zero() {
        return Duration::ZERO;
    }
    let x = (salt as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ u64::from(std::process::id());
    Duration::from_micros(x % (warmup.as_micros() as u64).max(1))
}

fn new_checkers(mg: &mut Manager, c: &Config, vi: usize, only_rs: Option<&[usize]>) {
    let v = mg.vss[vi].model.clone();
    let vs_port = mg.vss[vi].keys[0].port;
    for (ri, r) in v.real_servers.iter().enumerate() {
        if only_rs.is_some_and(|o| !o.contains(&ri)) {
            continue;
        }
        for ck in &r.checkers {
            let timing = Timing {
                delay_loop: ck.timing.delay_loop,
                retry: ck.timing.retry,
                delay_before_retry: ck.timing.delay_before_retry,
                warmup: ck.timing.warmup,
            };
            let fast = matches!(&ck.kind, m::CheckKind::Http(h) if h.fast_recovery);
            let name = mg.vss[vi].pool.rs[ri].name.clone();
            // keepalived's line at a checker's start, which alerts and
            // runbooks look for.
            tracing::info!("Activating healthchecker for service {name} for VS {}", mg.vss[vi].pool.name);
            let core = Checker::new(style(&ck.kind), timing, name, r.alpha, fast);
            let id = mg.checkers.len();
            mg.checkers.push(super::CheckerRt {
                vs: vi,
                rs: ri,
                core,
                probe: probe(c, &v, r, ck, vs_port),
                gen: 0,
                running: false,
                retired: false,
                log_all_failures: ck.log_all_failures,
                last_weight: None,
                model: ck.clone(),
                stats: Default::default(),
            });
            let d = first_delay(timing.warmup, id);
            mg.schedule(id, d);
        }
    }
}

fn create_service(mg: &mut Manager, vi: usize) {
    let vs = &mg.vss[vi];
    for key in vs.keys.clone() {
        super::send(&mg.engine, Request::AddService { key, config: vs.svc.clone() });
        for &laddr in &vs.laddrs {
            super::send(&mg.engine, Request::AddLaddr { service: key, laddr });
        }
    }
    let o = mg.vss[vi].pool.init();
    mg.out(vi, o);
}

/// Start: global LVS settings, every virtual server, its checkers.
pub fn install(mg: &mut Manager, c: &Config, _previous: Option<()>) {
    if c.global.lvs_flush {
        super::send(&mg.engine, Request::Flush);
    }
    if let Some((tcp, fin, udp)) = c.global.lvs_timeouts {
        super::send(
            &mg.engine,
            Request::SetTimeouts(TimeoutTriple {
                tcp: tcp.unwrap_or(0),
                tcp_fin: fin.unwrap_or(0),
                udp: udp.unwrap_or(0),
            }),
        );
    }
    for v in &c.virtual_servers {
        let Some(rt) = build_vs(c, v, mg.engine.name() == "kernel") else { continue };
        mg.vss.push(rt);
        let vi = mg.vss.len() - 1;
        create_service(mg, vi);
        new_checkers(mg, c, vi, None);
    }
}

/// SIGHUP: virtual servers kept (same services) keep their pool state and
/// connections; weights change by edit; removed ones go; new ones start.
pub fn reload(mg: &mut Manager, c: &Config) {
    if let Some((tcp, fin, udp)) = c.global.lvs_timeouts {
        super::send(
            &mg.engine,
            Request::SetTimeouts(TimeoutTriple {
                tcp: tcp.unwrap_or(0),
                tcp_fin: fin.unwrap_or(0),
                udp: udp.unwrap_or(0),
            }),
        );
    }
    let old = std::mem::take(&mut mg.vss);
    let mut old: Vec<Option<VsRt>> = old.into_iter().map(Some).collect();
    // Which old virtual server each checker belonged to, before any moves.
    let old_vs: Vec<usize> = mg.checkers.iter().map(|c| c.vs).collect();
    for v in &c.virtual_servers {
        let Some(mut rt) = build_vs(c, v, mg.engine.name() == "kernel") else { continue };
        let found = old.iter().position(|o| o.as_ref().is_some_and(|o| o.keys == rt.keys));
        let vi = mg.vss.len();
        match found {
            None => {
                mg.vss.push(rt);
                create_service(mg, vi);
                new_checkers(mg, c, vi, None);
            }
            Some(oi) => {
                let prev = old[oi].take().unwrap();
                if prev.svc != rt.svc {
                    for key in rt.keys.clone() {
                        super::send(&mg.engine, Request::EditService { key, config: rt.svc.clone() });
                    }
                }
                for key in rt.keys.clone() {
                    for l in rt.laddrs.iter().filter(|l| !prev.laddrs.contains(l)) {
                        super::send(&mg.engine, Request::AddLaddr { service: key, laddr: *l });
                    }
                    for l in prev.laddrs.iter().filter(|l| !rt.laddrs.contains(l)) {
                        super::send(&mg.engine, Request::DelLaddr { service: key, laddr: *l });
                    }
                }
                // Servers carried over by address and port.
                let mut fresh_rs = Vec::new();
                let mut carried: Vec<(usize, usize)> = Vec::new();
                for (ni, d) in rt.dests.iter().enumerate() {
                    let same = prev.dests.iter().position(|o| o.addr == d.addr && o.port == d.port);
                    let checkers_same = same
                        .is_some_and(|oi2| prev.model.real_servers[oi2].checkers == rt.model.real_servers[ni].checkers);
                    match same.filter(|_| checkers_same) {
                        Some(o) => carried.push((o, ni)),
                        None => fresh_rs.push(ni),
                    }
                }
                for &(o, n) in &carried {
                    let from = prev.pool.rs[o].clone();
                    rt.pool.rs[n].carry_over(&from);
                    if prev.in_table.contains(&Target::Rs(o)) {
                        rt.in_table.insert(Target::Rs(n));
                    }
                }
                if prev.in_table.contains(&Target::Sorry) {
                    rt.in_table.insert(Target::Sorry);
                }
                mg.vss.push(rt);
                // Removed (or re-checked) servers leave the table.
                for (o, d) in prev.dests.iter().enumerate() {
                    if prev.in_table.contains(&Target::Rs(o)) && !carried.iter().any(|c| c.0 == o) {
                        tracing::info!("Removing service {} from VS {}", prev.pool.rs[o].name, prev.pool.name);
                        for key in mg.vss[vi].keys.clone() {
                            mg.table.want(key, *d, false);
                        }
                    }
                }
                // Weights of kept servers change by edit: connections stay.
                for &(o, n) in &carried {
                    let w = i64::from(mg.vss[vi].model.real_servers[n].weight);
                    if prev.pool.rs[o].weight != w {
                        mg.vss[vi].pool.rs[n].weight = prev.pool.rs[o].weight;
                        let out = mg.vss[vi].pool.set_weight(n, w);
                        mg.out(vi, out);
                    }
                }
                // New servers enter as keepalived adds them at start.
                if !fresh_rs.is_empty() {
                    let o = mg.vss[vi].pool.init();
                    mg.out(vi, o);
                }
                // Checkers of carried servers carry on; others start.
                let mut moved = Vec::new();
                for (id, ck) in mg.checkers.iter_mut().enumerate() {
                    if old_vs.get(id) != Some(&oi) || ck.retired {
                        continue;
                    }
                    match carried.iter().find(|c| c.0 == ck.rs) {
                        Some(&(_, n)) => {
                            ck.vs = vi;
                            ck.rs = n;
                            ck.gen += 1;
                            ck.running = false;
                            moved.push(id);
                        }
                        None => ck.retired = true,
                    }
                }
                for id in moved {
                    let d = mg.checkers[id].core.timing.delay_loop;
                    mg.schedule(id, d.min(Duration::from_secs(1)));
                }
                new_checkers(mg, c, vi, Some(&fresh_rs));
            }
        }
    }
    // Virtual servers no longer configured.
    for (oi, o) in old.into_iter().enumerate() {
        let Some(mut prev) = o else { continue };
        tracing::info!("Removing Virtual Server {}", prev.pool.name);
        let out = prev.pool.clear(false, prev.model.omega);
        for l in &out.logs {
            tracing::info!("{l}");
        }
        for s in prev.scripts(&out.events) {
            crate::vrrp::scripts::notify(&s, &[]);
        }
        for key in prev.keys.clone() {
            super::send(&mg.engine, Request::DelService { key });
            mg.table.forget_service(&key);
        }
        for (id, ck) in mg.checkers.iter_mut().enumerate() {
            if old_vs.get(id) == Some(&oi) {
                ck.retired = true;
            }
        }
    }
}

impl CheckStats {
    pub fn record(&mut self, out: &rlvs_health::checker::Outcome, took: Duration) {
        self.last_duration = took;
        self.duration_total += took;
        match out {
            rlvs_health::checker::Outcome::Ok => {
                self.succeeded += 1;
                self.last_ok = Some(true);
            }
            rlvs_health::checker::Outcome::Fail(why) => {
                self.failed += 1;
                self.last_ok = Some(false);
                *self.failures.entry(failure_reason(why)).or_default() += 1;
            }
        }
    }
}

/// The `reason` label of a failed probe, from the probes' own messages
/// (check/probe.rs): a handful of kinds an alert can key on.
pub fn failure_reason(why: &str) -> &'static str {
    let w = why.to_ascii_lowercase();
    if w.contains("timed out") || w.contains("timeout") || w.contains("no reply") {
        "timeout"
    } else if w.contains("refused") {
        "connection_refused"
    } else if w.contains("status code") {
        "http_status"
    } else if w.contains("md5") || w.contains("digest") {
        "digest_mismatch"
    } else if w.contains("exited with status") || w.contains("killed by a signal") || w.contains("script") {
        "script"
    } else if w.contains("unreachable")
        || w.contains("no route")
        || w.contains("reset")
        || w.contains("connect")
        || w.contains("socket")
    {
        "connection"
    } else if w.contains("response")
        || w.contains("greeting")
        || w.contains("helo")
        || w.contains("mismatch")
        || w.contains("rcode")
        || w.contains("status line")
        || w.contains("header")
    {
        "bad_response"
    } else {
        "other"
    }
}

/// keepalived's name of a checker kind.
pub fn kind_name(k: &m::CheckKind) -> &'static str {
    match k {
        m::CheckKind::Http(h) if h.ssl => "SSL_GET",
        m::CheckKind::Http(_) => "HTTP_GET",
        m::CheckKind::Tcp => "TCP_CHECK",
        m::CheckKind::Misc(_) => "MISC_CHECK",
        m::CheckKind::Smtp { .. } => "SMTP_CHECK",
        m::CheckKind::Dns { .. } => "DNS_CHECK",
        m::CheckKind::Udp(_) => "UDP_CHECK",
        m::CheckKind::Ping => "PING_CHECK",
        m::CheckKind::File { .. } => "FILE_CHECK",
    }
}

#[cfg(test)]
mod reason_tests {
    use super::failure_reason;

    #[test]
    fn probe_messages_fall_into_their_kinds() {
        assert_eq!(failure_reason("Connection refused (os error 111)"), "connection_refused");
        assert_eq!(failure_reason("timed out"), "timeout");
        assert_eq!(failure_reason("HTTP status code error to / => HTTP status code = 500"), "http_status");
        assert_eq!(failure_reason("MD5 digest error to / => MD5SUM abc"), "digest_mismatch");
        assert_eq!(failure_reason("exited with status 1"), "script");
        assert_eq!(failure_reason("HTTP response header not found"), "bad_response");
        assert_eq!(failure_reason("No route to host (os error 113)"), "connection");
        assert_eq!(failure_reason("something new"), "other");
    }
}
