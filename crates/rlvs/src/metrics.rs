//! `--metrics ADDR:PORT` (or RLVS_METRICS for the keepalived face):
//! Prometheus text, built with prometheus-client at each scrape from
//! what the daemon's parts report: the table (per virtual and real
//! server: connections, packets and bytes each way, rates, active and
//! inactive connections, weight), the checkers (up or down, operator
//! holds), the VRRP instances (state and keepalived's counters), and the
//! process. docs/METRICS.md lists every metric and the exporters'
//! names it covers.

use anyhow::{Context, Result};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rlvs_ctl::{EngineHandle, Request, Response, RsState};
use std::sync::atomic::AtomicU64;
use tokio::sync::{mpsc, oneshot};

type Labels = Vec<(String, String)>;
type Counters = Family<Labels, Counter<u64>>;
type Gauges = Family<Labels, Gauge<i64>>;
type FloatGauges = Family<Labels, Gauge<f64, AtomicU64>>;
type FloatCounters = Family<Labels, Counter<f64, AtomicU64>>;

/// Where a scrape's figures come from.
#[derive(Clone)]
pub struct Sources {
    pub engine: EngineHandle,
    pub vrrp: Option<crate::daemon::VrrpStatus>,
    pub checkers: Option<mpsc::UnboundedSender<crate::check::Command>>,
    pub announce: Option<mpsc::UnboundedSender<crate::announce::Ask>>,
}

pub async fn serve(addr: std::net::SocketAddr, sources: Sources) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("--metrics {addr}"))?;
    tracing::info!("metrics on http://{addr}/metrics");
    loop {
        let (stream, _) = listener.accept().await?;
        let sources = sources.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let sources = sources.clone();
                async move {
                    let (status, body) = if req.uri().path() == "/metrics" {
                        (200, render(&sources).await)
                    } else {
                        (404, "not found: the metrics are at /metrics\n".to_string())
                    };
                    hyper::Response::builder()
                        .status(status)
                        .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                        .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await {
                tracing::debug!("metrics client: {e}");
            }
        });
    }
}

fn counters(r: &mut Registry, name: &str, help: &str) -> Counters {
    let f = Counters::default();
    r.register(name, help, f.clone());
    f
}

fn gauges(r: &mut Registry, name: &str, help: &str) -> Gauges {
    let f = Gauges::default();
    r.register(name, help, f.clone());
    f
}

fn float_gauges(r: &mut Registry, name: &str, help: &str) -> FloatGauges {
    let f = FloatGauges::default();
    r.register(name, help, f.clone());
    f
}

fn float_counters(r: &mut Registry, name: &str, help: &str) -> FloatCounters {
    let f = FloatCounters::default();
    r.register(name, help, f.clone());
    f
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The table's figures for one virtual or real server, each direction.
struct Traffic {
    conns: Counters,
    packets: Counters,
    bytes: Counters,
    cps: FloatGauges,
    pps: FloatGauges,
    bps: FloatGauges,
}

impl Traffic {
    fn new(r: &mut Registry, of: &str, what: &str) -> Traffic {
        let n = |s: &str| format!("rlvs_{of}_{s}");
        Traffic {
            conns: counters(r, &n("connections"), &format!("Connections scheduled to the {what}")),
            packets: counters(
                r,
                &n("packets"),
                &format!("Packets through the {what}, by direction (in: from clients)"),
            ),
            bytes: counters(r, &n("bytes"), &format!("Bytes through the {what}, by direction (in: from clients)")),
            cps: float_gauges(
                r,
                &n("connection_rate"),
                &format!("New connections per second to the {what} (2 s estimator)"),
            ),
            pps: float_gauges(r, &n("packet_rate"), &format!("Packets per second through the {what}, by direction")),
            bps: float_gauges(r, &n("byte_rate"), &format!("Bytes per second through the {what}, by direction")),
        }
    }

    fn set(&self, l: &Labels, s: &rlvs_lvs::stats::Counters, rates: &rlvs_lvs::stats::Rates) {
        let dir = |d: &str| {
            let mut l = l.clone();
            l.push(("direction".into(), d.into()));
            l
        };
        self.conns.get_or_create(l).inc_by(s.conns);
        self.packets.get_or_create(&dir("in")).inc_by(s.inpkts);
        self.packets.get_or_create(&dir("out")).inc_by(s.outpkts);
        self.bytes.get_or_create(&dir("in")).inc_by(s.inbytes);
        self.bytes.get_or_create(&dir("out")).inc_by(s.outbytes);
        self.cps.get_or_create(l).set(rates.cps as f64);
        self.pps.get_or_create(&dir("in")).set(rates.inpps as f64);
        self.pps.get_or_create(&dir("out")).set(rates.outpps as f64);
        self.bps.get_or_create(&dir("in")).set(rates.inbps as f64);
        self.bps.get_or_create(&dir("out")).set(rates.outbps as f64);
    }
}

async fn ask(engine: &EngineHandle, req: Request) -> Option<Response> {
    crate::systemd::ask(engine, req).await
}

/// One scrape's text.
pub async fn render(src: &Sources) -> String {
    let mut r = Registry::default();
    let info = gauges(&mut r, "rlvs_engine_info", "The engine that holds the table (1 for the one in use)");
    let vs_t = Traffic::new(&mut r, "virtual_server", "virtual server");
    let rs_t = Traffic::new(&mut r, "real_server", "real server");
    let active = gauges(&mut r, "rlvs_real_server_active_connections", "Established connections to the real server");
    let inactive =
        gauges(&mut r, "rlvs_real_server_inactive_connections", "Connections to the real server in other states");
    let weight =
        gauges(&mut r, "rlvs_real_server_weight", "The real server's weight in the table (0: drained or quiesced)");
    let up = gauges(&mut r, "rlvs_real_server_up", "1 when the real server's checks pass, 0 when they fail");
    let held =
        gauges(&mut r, "rlvs_real_server_operator_hold", "1 while an operator's drain or weight holds the real server");
    let vrrp_state =
        gauges(&mut r, "rlvs_vrrp_state", "1 for the state each VRRP instance is in (INIT, BACKUP, MASTER, FAULT)");
    let vrrp_prio = gauges(&mut r, "rlvs_vrrp_priority", "Configured priority of the VRRP instance");
    let vrrp_eff = gauges(&mut r, "rlvs_vrrp_effective_priority", "Priority after tracked scripts and interfaces");
    let vrrp_counters: Vec<(&str, Counters)> = VRRP_COUNTERS
        .iter()
        .map(|(field, name, help)| (*field, counters(&mut r, &format!("rlvs_vrrp_{name}"), help)))
        .collect();
    let process = [
        ("process_cpu_seconds_total", "Total user and system CPU time spent in seconds."),
        ("process_resident_memory_bytes", "Resident memory size in bytes."),
        ("process_virtual_memory_bytes", "Virtual memory size in bytes."),
        ("process_open_fds", "Number of open file descriptors."),
        ("process_max_fds", "Maximum number of open file descriptors."),
        ("process_start_time_seconds", "Start time of the process since unix epoch in seconds."),
    ];

    info.get_or_create(&labels(&[("engine", src.engine.name())])).set(1);
    let services = match ask(&src.engine, Request::ListServices).await {
        Some(Response::Services(s)) => s,
        _ => Vec::new(),
    };
    let checkers: Vec<RsState> = match &src.checkers {
        Some(tx) => {
            let (reply, rx) = oneshot::channel();
            if tx.send(crate::check::Command::Status(reply)).is_ok() {
                rx.await.unwrap_or_default()
            } else {
                Vec::new()
            }
        }
        None => Vec::new(),
    };
    for svc in &services {
        let k = &svc.key;
        let proto = format!("{:?}", k.protocol).to_lowercase();
        let vs = if k.fwmark != 0 { format!("FWM {}", k.fwmark) } else { format!("[{}]:{proto}:{}", k.addr, k.port) };
        let vl = labels(&[("vs", &vs)]);
        vs_t.set(&vl, &svc.stats, &svc.rates);
        for d in &svc.dests {
            let rs = format!("[{}]:{proto}:{}", d.config.addr, d.config.port);
            let l = labels(&[("vs", &vs), ("rs", &rs)]);
            rs_t.set(&l, &d.stats, &d.rates);
            active.get_or_create(&l).set(d.activeconns as i64);
            inactive.get_or_create(&l).set(d.inactconns as i64);
            weight.get_or_create(&l).set(d.config.weight as i64);
        }
    }
    // From the checkers: real servers out of the table count too.
    for c in &checkers {
        let l = labels(&[("vs", &c.vs), ("rs", &c.rs)]);
        up.get_or_create(&l).set(i64::from(c.up));
        held.get_or_create(&l).set(i64::from(c.hold.is_some()));
    }
    let vrrp = src.vrrp.as_ref().and_then(|v| v.lock().ok().map(|s| s.clone())).unwrap_or_default();
    for i in &vrrp {
        let l = labels(&[("instance", &i.name)]);
        for st in ["INIT", "BACKUP", "MASTER", "FAULT"] {
            let mut sl = l.clone();
            sl.push(("state".into(), st.into()));
            vrrp_state.get_or_create(&sl).set(i64::from(i.state == st));
        }
        vrrp_prio.get_or_create(&l).set(i64::from(i.priority));
        vrrp_eff.get_or_create(&l).set(i64::from(i.effective_priority));
        let stats = serde_json::to_value(i.stats).unwrap_or_default();
        for (field, family) in &vrrp_counters {
            family.get_or_create(&l).inc_by(stats.get(field).and_then(|v| v.as_u64()).unwrap_or(0));
        }
    }
    if let Some(tx) = &src.checkers {
        let (reply, rx) = oneshot::channel();
        if tx.send(crate::check::Command::Metrics(reply)).is_ok() {
            checker_metrics(&mut r, &rx.await.unwrap_or_default());
        }
    }
    if let Some(Response::EngineStats(e)) = ask(&src.engine, Request::EngineStats).await {
        engine_metrics(&mut r, &e);
    }
    if let Some(tx) = &src.announce {
        let (reply, rx) = oneshot::channel();
        if tx.send((rlvs_ctl::AnnounceOp::Status, reply)).is_ok() {
            if let Ok(Response::Announce(a)) = rx.await {
                announce_metrics(&mut r, &a);
            }
        }
    }
    let mut open = String::new();
    let _ = prometheus_client::encoding::text::encode_registry(&mut open, &r);
    let mut out = as_prometheus_text(&open);
    out.push_str(&process_metrics(&process));
    out
}

/// Scale-out: where each VIP lives (what the BGP daemon announces).
fn announce_metrics(r: &mut Registry, a: &rlvs_ctl::AnnounceStatus) {
    let place =
        gauges(r, "rlvs_announce_vip", "1 for the VIP's place: announced, draining (GRACEFUL_SHUTDOWN) or withdrawn");
    let draining = gauges(r, "rlvs_announce_draining", "1 while an operator's drain is on");
    let healthy = gauges(r, "rlvs_announce_data_plane_healthy", "1 while the data plane answers within 1 s");
    for v in &a.vips {
        for p in ["announced", "draining", "withdrawn"] {
            let vip = v.vip.to_string();
            place.get_or_create(&labels(&[("vip", &vip), ("place", p)])).set(i64::from(v.place == p));
        }
    }
    draining.get_or_create(&labels(&[])).set(i64::from(a.draining));
    healthy.get_or_create(&labels(&[])).set(i64::from(a.healthy));
}

/// Per checker: probes by result, failures by reason, the last result
/// and how long probes take.
fn checker_metrics(r: &mut Registry, list: &[crate::check::CheckerMetrics]) {
    let checks = counters(r, "rlvs_checker_checks", "Probes the checker completed, by result");
    let failures = counters(r, "rlvs_checker_failures", "Failed probes, by reason");
    let last = gauges(r, "rlvs_checker_last_result", "1 when the checker's last probe succeeded, 0 when it failed");
    let last_duration = float_gauges(r, "rlvs_checker_last_duration_seconds", "How long the checker's last probe took");
    let total_duration = float_counters(
        r,
        "rlvs_checker_duration_seconds",
        "Time spent in the checker's probes (with checks_total: the mean)",
    );
    for c in list {
        let l = labels(&[("vs", &c.vs), ("rs", &c.rs), ("checker", &c.checker)]);
        let with = |k: &str, v: &str| {
            let mut l = l.clone();
            l.push((k.into(), v.into()));
            l
        };
        checks.get_or_create(&with("result", "success")).inc_by(c.stats.succeeded);
        checks.get_or_create(&with("result", "failure")).inc_by(c.stats.failed);
        for (reason, n) in &c.stats.failures {
            failures.get_or_create(&with("reason", reason)).inc_by(*n);
        }
        if let Some(ok) = c.stats.last_ok {
            last.get_or_create(&l).set(i64::from(ok));
            last_duration.get_or_create(&l).set(c.stats.last_duration.as_secs_f64());
        }
        total_duration.get_or_create(&l).inc_by(c.stats.duration_total.as_secs_f64());
    }
}

/// The bound's accounting and the defences (defence.rs in rlvs-lvs).
struct DefenceMetrics {
    bytes: Gauges,
    available: Gauges,
    level: Gauges,
    drop_rate: Gauges,
    actions: Counters,
}

impl DefenceMetrics {
    fn register(r: &mut Registry) -> DefenceMetrics {
        DefenceMetrics {
            bytes: gauges(
                r,
                "rlvs_engine_connection_bytes",
                "What the connection table's entries cost, user space and XDP maps together",
            ),
            available: gauges(
                r,
                "rlvs_engine_available_pages",
                "What is left of the connection table's bound, in 4 KiB pages (the defences' available memory)",
            ),
            level: gauges(r, "rlvs_engine_defence_level", "Each defence's setting as its sysctl shows it (2: acting)"),
            drop_rate: gauges(
                r,
                "rlvs_engine_drop_rate",
                "drop_packet drops one new connection in this many (0: none)",
            ),
            actions: counters(r, "rlvs_engine_defence_actions", "What the bound and the defences did, by action"),
        }
    }

    fn set(&self, d: &rlvs_lvs::defence::DefenceStatus, connections: u64) {
        self.bytes.get_or_create(&Vec::new()).set(connections.saturating_mul(d.config.bytes_per_conn) as i64);
        if let Some(p) = d.available_pages {
            self.available.get_or_create(&Vec::new()).set(p as i64);
        }
        let c = &d.config;
        for (name, v) in [("drop_entry", c.drop_entry), ("drop_packet", c.drop_packet), ("secure_tcp", c.secure_tcp)] {
            self.level.get_or_create(&labels(&[("defence", name)])).set(i64::from(v));
        }
        self.drop_rate.get_or_create(&Vec::new()).set(i64::from(d.drop_rate));
        let acts = [
            ("refused_at_limit", d.refused_at_limit),
            ("packet_dropped", d.packets_dropped),
            ("entry_swept", d.entries_dropped),
            ("entry_replaced", d.entries_replaced),
        ];
        for (action, n) in acts {
            self.actions.get_or_create(&labels(&[("action", action)])).inc_by(n);
        }
    }
}

/// The engine's packet counters, its tables' sizes and connection sync.
fn engine_metrics(r: &mut Registry, e: &rlvs_ctl::EngineCounters) {
    let packets = counters(
        r,
        "rlvs_engine_packets",
        "Packets the engine handled, by path (slow: the engine's own loop; fast: inside XDP) and action",
    );
    let drops = counters(r, "rlvs_engine_drops", "Packets for virtual services the engine dropped, by reason");
    let icmp =
        counters(r, "rlvs_engine_icmp_sent", "ICMP errors sent to clients (port unreachable, fragmentation needed)");
    let conns = gauges(r, "rlvs_engine_connections", "Entries in the connection table");
    let limit = gauges(r, "rlvs_engine_connection_limit", "The connection table's bound (absent: unbounded)");
    let defence_metrics = DefenceMetrics::register(r);
    let map_entries = gauges(r, "rlvs_fastpath_map_entries", "Entries in the XDP fast path's pinned connection maps");
    let map_capacity = gauges(r, "rlvs_fastpath_map_capacity", "Capacity of each XDP connection map");
    let sync_sent = counters(r, "rlvs_sync_messages_sent", "Connection sync messages sent (master)");
    let sync_received = counters(r, "rlvs_sync_messages_received", "Connection sync messages received (backup)");
    let sync_conns = counters(r, "rlvs_sync_connections_received", "Connections learnt from sync messages (backup)");
    let sync_rejected = counters(r, "rlvs_sync_messages_rejected", "Sync messages the backup dropped, by reason");
    let pk = |path: &str, action: &str| labels(&[("path", path), ("action", action)]);
    packets.get_or_create(&pk("slow", "forwarded")).inc_by(e.forwarded);
    packets.get_or_create(&pk("slow", "replied")).inc_by(e.replies);
    packets.get_or_create(&pk("slow", "not_ours")).inc_by(e.not_ours);
    packets.get_or_create(&pk("slow", "waited_for_neighbour")).inc_by(e.waiting_for_neighbour);
    for (reason, n) in &e.drops {
        drops.get_or_create(&labels(&[("reason", reason)])).inc_by(*n);
    }
    icmp.get_or_create(&Vec::new()).inc_by(e.icmp_sent);
    conns.get_or_create(&Vec::new()).set(e.connections as i64);
    if let Some(l) = e.connection_limit {
        limit.get_or_create(&Vec::new()).set(l as i64);
    }
    if let Some(d) = &e.defence {
        defence_metrics.set(d, e.connections);
    }
    if let Some(f) = &e.fast_path {
        packets.get_or_create(&pk("fast", "forwarded")).inc_by(f.forwarded);
        packets.get_or_create(&pk("fast", "punted")).inc_by(f.punted);
        drops.get_or_create(&labels(&[("reason", "no_engine_socket")])).inc_by(f.orphaned);
        for (map, n) in &f.map_entries {
            map_entries.get_or_create(&labels(&[("map", map)])).set(*n as i64);
            map_capacity.get_or_create(&labels(&[("map", map)])).set(f.map_capacity as i64);
        }
    }
    sync_sent.get_or_create(&Vec::new()).inc_by(e.sync_sent);
    sync_received.get_or_create(&Vec::new()).inc_by(e.sync_received);
    sync_conns.get_or_create(&Vec::new()).inc_by(e.sync_conns_received);
    for (reason, n) in &e.sync_rejected {
        sync_rejected.get_or_create(&labels(&[("reason", reason)])).inc_by(*n);
    }
}

/// prometheus-client writes OpenMetrics, where a counter family `x` has
/// samples `x_total`; the Prometheus text format that node_exporter,
/// promtool and every scraper read names the family `x_total` too.
fn as_prometheus_text(open: &str) -> String {
    let counters: std::collections::HashSet<&str> =
        open.lines().filter_map(|l| l.strip_prefix("# TYPE ").and_then(|r| r.strip_suffix(" counter"))).collect();
    let mut out = String::with_capacity(open.len() + 1024);
    for line in open.lines() {
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|tag| {
            let rest = line.strip_prefix(tag)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{tag}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// keepalived's VRRP counters (its JSON and SNMP names), as rlvs's core
/// keeps them: field, metric name (after rlvs_vrrp_, before _total), help.
const VRRP_COUNTERS: &[(&str, &str, &str)] = &[
    ("advert_rcvd", "adverts_received", "VRRP adverts received"),
    ("advert_sent", "adverts_sent", "VRRP adverts sent"),
    ("become_master", "become_master", "Transitions to MASTER"),
    ("release_master", "release_master", "Transitions from MASTER"),
    ("pri_zero_rcvd", "priority_zero_received", "Adverts with priority 0 received (a master handing over)"),
    ("pri_zero_sent", "priority_zero_sent", "Adverts with priority 0 sent"),
    ("packet_len_err", "packet_length_errors", "Adverts dropped for their length"),
    ("ip_ttl_err", "ip_ttl_errors", "Adverts dropped for a TTL other than 255"),
    ("version_err", "version_errors", "Adverts of another VRRP version"),
    ("invalid_type_rcvd", "invalid_type_received", "VRRP packets of an unknown type"),
    ("addr_list_err", "address_list_errors", "Adverts whose address list differs from the configuration"),
    ("invalid_authtype", "authentication_invalid", "Adverts with an unknown authentication type"),
    ("authtype_mismatch", "authentication_mismatch", "Adverts with another authentication type"),
    ("auth_failure", "authentication_failure", "Adverts whose password does not match"),
    ("checksum_err", "checksum_errors", "Adverts with a bad checksum"),
    ("interval_mismatch", "advert_interval_errors", "Adverts with another advert interval"),
];

/// The standard process metrics, read from /proc/self (what the Go and
/// Python clients export under the same names).
fn process_metrics(names: &[(&str, &str)]) -> String {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which may hold spaces: state is 3rd.
    let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let (tick, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK) as f64, libc::sysconf(libc::_SC_PAGESIZE) as f64) };
    let boot: f64 = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse().ok())))
        .unwrap_or(0.0);
    let fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0) as f64;
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into a valid rlimit.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    let value = |name: &str| match name {
        "process_cpu_seconds_total" => (field(14) + field(15)) / tick,
        "process_resident_memory_bytes" => field(24) * page,
        "process_virtual_memory_bytes" => field(23),
        "process_open_fds" => fds,
        "process_max_fds" => lim.rlim_cur as f64,
        _ => boot + field(22) / tick,
    };
    let mut out = String::new();
    for (name, help) in names {
        let kind = if name.ends_with("_total") { "counter" } else { "gauge" };
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n", value(name)));
    }
    out
}
