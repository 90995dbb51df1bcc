//! `rlvs daemon`: owns the engine thread, serves the control socket of its
//! network namespace and, given a keepalived.conf, runs its VRRP
//! instances; SIGHUP reloads the file, SIGTERM or SIGINT stop.

use crate::backend::Chosen;
use anyhow::{bail, Context, Result};
use rlvs_conf::{Loaded, Severity};
use rlvs_ctl::{ControlMsg, EngineHandle as Handle};
use rlvs_ctl::{CtlError, Request, Response};
use rlvs_dataplane::EngineConfig;
use std::path::PathBuf;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{signal, SignalKind};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// keepalived.conf to run (VRRP instances; virtual servers follow).
    #[arg(long = "use-file", short = 'f')]
    pub config: Option<PathBuf>,
    /// `@id` lines of the configuration are kept for this id.
    #[arg(long = "config-id")]
    pub config_id: Option<String>,
    /// Refuse a configuration with any warning.
    #[arg(long)]
    pub strict: bool,
    /// Backend: kernel (kernel IPVS over netlink), afxdp, afpacket (rlvs's
    /// own data plane), none (tables without forwarding), or auto: kernel
    /// IPVS when ip_vs is loaded or loads and no FULLNAT is configured,
    /// else AF_XDP when its XDP program attaches, else AF_PACKET.
    #[arg(long, env = "RLVS_ENGINE", default_value = "auto",
          value_parser = ["auto", "kernel", "afxdp", "afpacket", "none"])]
    pub engine: String,
    /// AF_XDP: copy mode even where the driver could do zero-copy.
    #[arg(long)]
    pub xdp_copy: bool,
    /// AF_XDP: at most this many worker threads, one per receive queue
    /// (0: one per CPU).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Rules each table of the traffic filter takes (virtual services, NAT
    /// and FULLNAT real servers, local addresses, the director's own
    /// addresses): with AF_XDP the size of each BPF map. A request that
    /// would go past it is refused ("Memory allocation problem") and the
    /// log says which table is full.
    #[arg(long, env = "RLVS_FILTER_ENTRIES", default_value_t = rlvs_dataplane::maps::FILTER_ENTRIES,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub filter_entries: u32,
    /// AF_XDP: the bpffs directory to pin the XDP program's maps and links
    /// in (default: the host's /sys/fs/bpf, mounted if absent).
    #[arg(long, env = "RLVS_BPFFS")]
    pub bpffs: Option<PathBuf>,
    /// AF_XDP: stopping leaves the XDP program attached and its maps pinned,
    /// so established connections keep being forwarded until an rlvs starts
    /// again in this namespace and takes over (an upgrade). Without it a
    /// stop removes everything, as a stop of kernel IPVS's keepalived does
    /// not (the kernel keeps the table): choose per deployment.
    #[arg(long)]
    pub keep_forwarding: bool,
    /// Interface to serve (repeatable); default: every interface but lo.
    #[arg(long = "interface", short = 'i')]
    pub interfaces: Vec<String>,
    /// Allow the raw-frame engine in the host's own network namespace (a
    /// real director); without it rlvs only runs inside a namespace.
    #[arg(long)]
    pub host_netns: bool,
    /// AF_PACKET receive ring: v2 (a slot per frame, lowest latency) or v3
    /// (blocks, fewer wake-ups under load, up to 1 ms added latency).
    #[arg(long, default_value = "v2", value_parser = ["v2", "v3"])]
    pub ring: String,
    /// Log filter, as RUST_LOG (e.g. debug, rlvs_dataplane=trace).
    #[arg(long, default_value = "info")]
    pub log: String,
    /// Log lines as keepalived writes them (`Sat Nov 28 01:32:28 2026: ...`).
    #[arg(long, hide = true)]
    pub keepalived_log: bool,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (off by
    /// default; 127.0.0.1:9650 keeps them on this host).
    #[arg(long, env = "RLVS_METRICS")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Only the VRRP side of the configuration (keepalived -P).
    #[arg(long)]
    pub vrrp_only: bool,
    /// Only the virtual servers and their checkers (keepalived -C).
    #[arg(long)]
    pub check_only: bool,
    #[command(flatten)]
    pub defence: crate::defence::DefenceArgs,
    /// Scale-out settings (a file apart from keepalived.conf): announce
    /// the VIPs with quorum through the BGP daemon's view of rlvs's own
    /// devices, with per-service sloppy TCP; see docs/SCALE-OUT.md.
    #[arg(long, env = "RLVS_SCALE_OUT")]
    pub scale_out: Option<PathBuf>,
}

/// A configuration rlvs will not run: keepalived's KEEPALIVED_EXIT_CONFIG.
#[derive(Debug)]
pub struct ConfigRefused(pub String);

impl std::fmt::Display for ConfigRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigRefused {}

/// Loads the configuration and reports what it says. Err when it cannot
/// be used: missing, warnings under --strict, or — when `refuse_errors`,
/// as on a reload — an error that dropped part of it. At start-up rlvs,
/// like keepalived, runs what is valid; a reload must not make the
/// running configuration worse, so it refuses instead.
pub fn load(path: &std::path::Path, config_id: Option<String>, strict: bool, refuse_errors: bool) -> Result<Loaded> {
    let opts = rlvs_conf::Options { config_id };
    let loaded = rlvs_conf::load_file(path, opts).map_err(|d| ConfigRefused(d.to_string()))?;
    for d in &loaded.diags {
        match d.severity {
            Severity::Note => tracing::info!("{d}"),
            Severity::Warning => tracing::warn!("{d}"),
            Severity::Error => tracing::error!("{d}"),
        }
    }
    match loaded.worst() {
        Some(Severity::Error) if refuse_errors || strict => {
            Err(ConfigRefused(format!("{} has errors", path.display())).into())
        }
        Some(Severity::Warning) if strict => {
            Err(ConfigRefused(format!("{} has warnings (--strict)", path.display())).into())
        }
        _ => Ok(loaded),
    }
}

pub fn run(args: Args) -> Result<()> {
    crate::logging::init(crate::logging::Options {
        filter: &args.log,
        console: true,
        keepalived_style: args.keepalived_log,
        syslog: None,
    })?;
    raise_file_limit();
    serve_until_stopped(args)
}

/// Every health check in flight holds a socket, and a keepalived.conf can
/// name thousands of real servers; like keepalived, take the whole hard
/// limit for open files rather than fail checks at the default 1024.
fn raise_file_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit write to and read from a valid rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            let wanted = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) != 0 {
                tracing::warn!(limit = lim.rlim_cur, "could not raise the open-file limit");
            }
        }
    }
}

/// The daemon proper, logging already set up.
pub fn serve_until_stopped(args: Args) -> Result<()> {
    let config = match &args.config {
        Some(p) => Some(load(p, args.config_id.clone(), args.strict, false)?),
        None => None,
    };
    if config.as_ref().is_some_and(|c| !c.config.instances.is_empty())
        && rlvs_dataplane::iface::in_initial_netns()
        && !args.host_netns
    {
        bail!(
            "refusing to run VRRP in the host's own network namespace: it adds addresses and sends raw frames \
             (--host-netns, or RLVS_ALLOW_HOST_NETNS=1 for the keepalived face, on a real director)"
        );
    }
    let scale_out = match &args.scale_out {
        Some(p) => Some(crate::announce::settings::Settings::load(p).map_err(ConfigRefused)?),
        None => None,
    };
    let chosen = crate::backend::choose(&args.engine, config.as_ref().map(|l| &l.config))?;
    crate::backend::warn_if_adm_reads_elsewhere(&chosen);
    // Bind first: a second daemon in the same namespace must fail before it
    // touches the data plane of the first.
    let std_listener = bind_control_socket()?;
    let ring = if args.ring == "v3" {
        rlvs_dataplane::afpacket::RingVersion::V3
    } else {
        rlvs_dataplane::afpacket::RingVersion::V2
    };
    let (handle, engine) = match chosen {
        Chosen::Kernel(mut client) => {
            if !args.defence.is_empty() {
                match rlvs_ipvs::backend::handle(&mut client, Request::SetDefence(args.defence.change())) {
                    Response::Ok => {}
                    Response::Refused(why) => bail!("{why}"),
                    other => bail!("setting the kernel's defences: {other:?}"),
                }
            }
            let (e, t) = rlvs_ipvs::engine::start(*client)?;
            (std::sync::Arc::new(e) as Handle, t)
        }
        Chosen::Own(kind) => {
            let cfg = EngineConfig {
                kind,
                interfaces: args.interfaces.clone(),
                allow_host_netns: args.host_netns,
                ring,
                zero_copy: !args.xdp_copy,
                workers: args.workers,
                filter_entries: args.filter_entries,
                bpffs: args.bpffs.clone(),
                keep_forwarding: args.keep_forwarding,
                defence: args.defence.config().0,
                derive_conn_limit: args.defence.config().1,
                ..Default::default()
            };
            let (h, t) = rlvs_dataplane::start(cfg)?;
            (std::sync::Arc::new(h) as Handle, t)
        }
    };
    tracing::info!(socket = "@rlvs/control", engine = handle.name(), "rlvs daemon running");
    // The checker side: its own thread, so nothing it does can hold VRRP up.
    let checkers = config
        .as_ref()
        .filter(|c| !args.vrrp_only && !c.config.virtual_servers.is_empty())
        .map(|c| crate::check::spawn(c.config.clone(), handle.clone()));
    // keepalived runs the sync daemons from its VRRP side, whatever -C says
    // of checkers; -P (VRRP alone) has no table to sync.
    let sync_config = config
        .as_ref()
        .filter(|c| c.config.global.lvs_sync_daemon.is_some() && handle.name() != "none")
        .map(|c| c.config.clone());
    let config = config.filter(|c| !args.check_only && !c.config.instances.is_empty());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let served = rt.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let syncd_stop = stop_rx.clone();
        let announce_stop = stop_rx.clone();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let vrrp = config.map(|c| tokio::spawn(crate::vrrp::run(c.config, stop_rx, ready_tx)));
        let vrrp_handle = match vrrp {
            Some(_) => ready_rx.await.ok(),
            None => None,
        };
        let syncd = sync_config.map(|c| {
            let roles = vrrp_handle.as_ref().map(|v| ((v.status.clone(), v.changed.clone()), v.commands.clone()));
            let installed = checkers.as_ref().map(|(h, _)| h.installed.clone());
            tokio::spawn(crate::syncd::run(c, handle.clone(), roles, syncd_stop, installed))
        });
        let announce = match scale_out {
            Some(s) => {
                let c = checkers.as_ref().map(|(h, _)| h.commands.clone());
                match crate::announce::start(s, handle.clone(), c, announce_stop) {
                    Ok(a) => Some(a),
                    Err(e) => {
                        let _ = stop_tx.send(true);
                        return Err(e);
                    }
                }
            }
            None => None,
        };
        let parts = Parts {
            checkers: checkers.as_ref().map(|c| c.0.commands.clone()),
            vrrp: vrrp_handle.as_ref().map(|v| v.commands.clone()),
            announce: announce.as_ref().map(|a| a.0.commands.clone()),
        };
        let served =
            serve(std_listener, handle.clone(), &args, vrrp_handle.as_ref(), checkers.as_ref().map(|c| &c.0), parts)
                .await;
        crate::systemd::stopping();
        let _ = stop_tx.send(true);
        // Withdraw before anything stops forwarding.
        if let Some((_, t)) = announce {
            let _ = t.await;
        }
        if let Some(t) = syncd {
            let _ = t.await;
        }
        if let Some((h, _)) = &checkers {
            // Shutting down services first, as keepalived does on stop.
            let (tx, rx) = tokio::sync::oneshot::channel();
            if h.commands.send(crate::check::Command::Stop(tx)).is_ok() {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), rx).await;
            }
        }
        if let Some(t) = vrrp {
            match t.await {
                Ok(Err(e)) => tracing::error!("VRRP: {e:#}"),
                Err(e) => tracing::error!("VRRP task: {e}"),
                Ok(Ok(())) => {}
            }
        }
        served
    });
    if let Some((_, t)) = checkers {
        let _ = t.join();
    }
    handle.stop();
    let _ = engine.join();
    tracing::info!("rlvs daemon stopped");
    served
}

fn bind_control_socket() -> Result<std::os::unix::net::UnixListener> {
    let addr = rlvs_ctl::socket_addr()?;
    match std::os::unix::net::UnixListener::bind_addr(&addr) {
        Ok(l) => {
            l.set_nonblocking(true)?;
            Ok(l)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            bail!("another rlvs daemon is already running in this network namespace")
        }
        Err(e) => Err(e).context("binding the control socket @rlvs/control"),
    }
}

/// What systemd's STATUS line says: the VRRP instances' states, the
/// number of virtual services and the engine.
fn describe(vrrp: Option<&VrrpStatus>, services: u32, engine: &str) -> String {
    let states = vrrp
        .and_then(|v| v.lock().ok().map(|s| s.iter().map(|i| format!("{} {}", i.name, i.state)).collect::<Vec<_>>()))
        .unwrap_or_default();
    let vrrp = if states.is_empty() { String::new() } else { format!("{}; ", states.join(", ")) };
    let s = if services == 1 { "" } else { "s" };
    format!("{vrrp}{services} virtual service{s}; engine {engine}")
}

/// A reload asked over the control socket, and where to answer.
type ReloadAsk = tokio::sync::oneshot::Sender<Response>;

async fn serve(
    std_listener: std::os::unix::net::UnixListener,
    handle: Handle,
    args: &Args,
    vrrp: Option<&crate::vrrp::Handle>,
    checkers: Option<&crate::check::Handle>,
    parts: Parts,
) -> Result<()> {
    let listener = UnixListener::from_std(std_listener)?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (reload_tx, mut reload_rx) = tokio::sync::mpsc::unbounded_channel::<ReloadAsk>();
    // keepalived's dump signals, each forwarded here.
    let (dump_tx, mut dump_rx) = tokio::sync::mpsc::unbounded_channel::<crate::dumps::Ask>();
    let mut _dump_signals = Vec::new();
    for (signum, ask) in crate::dumps::signals() {
        let mut sig = signal(SignalKind::from_raw(signum))?;
        let tx = dump_tx.clone();
        _dump_signals.push(AbortOnDrop(tokio::spawn(async move {
            while sig.recv().await.is_some() {
                if tx.send(ask).is_err() {
                    break;
                }
            }
        })));
    }
    let status = vrrp.map(|v| v.status.clone());
    if let Some(c) = checkers {
        // READY means the table holds the configuration's virtual servers.
        let mut installed = c.installed.clone();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), installed.wait_for(|done| *done)).await;
    }
    let services = crate::systemd::engine_answers(&handle).await.unwrap_or(0);
    crate::systemd::ready(&describe(status.as_ref(), services, handle.name()));
    let _watchdog = sd_notify::watchdog_enabled().map(|period| {
        let mut beats = Vec::new();
        if let Some(v) = vrrp {
            beats.push(crate::systemd::Beat { name: "the VRRP loop", count: v.beat.clone() });
        }
        if let Some(c) = checkers {
            beats.push(crate::systemd::Beat { name: "the checker loop", count: c.beat.clone() });
        }
        let (engine, status) = (handle.clone(), status.clone());
        AbortOnDrop(tokio::spawn(crate::systemd::watchdog(period, beats, handle.clone(), move |n| {
            describe(status.as_ref(), n, engine.name())
        })))
    });
    let _metrics = args.metrics.map(|addr| {
        let sources = crate::metrics::Sources {
            engine: handle.clone(),
            vrrp: status.clone(),
            checkers: checkers.map(|c| c.commands.clone()),
            announce: parts.announce.clone(),
        };
        AbortOnDrop(tokio::spawn(async move {
            if let Err(e) = crate::metrics::serve(addr, sources).await {
                tracing::error!("metrics: {e:#}");
            }
        }))
    });
    loop {
        tokio::select! {
            r = listener.accept() => {
                let (stream, _) = r?;
                let h = handle.clone();
                let status = status.clone();
                let reload_tx = reload_tx.clone();
                let parts = parts.clone();
                tokio::spawn(async move {
                    if let Err(e) = client(stream, h, status, reload_tx, parts).await {
                        tracing::debug!(error = %e, "control client");
                    }
                });
            }
            _ = hup.recv() => { reload(args, vrrp, checkers, &handle).await; }
            Some(ask) = dump_rx.recv() => {
                crate::dumps::answer(ask, vrrp, checkers.map(|c| &c.commands)).await;
            }
            Some(ask) = reload_rx.recv() => {
                let r = reload(args, vrrp, checkers, &handle).await;
                let _ = ask.send(r);
            }
            _ = term.recv() => { tracing::info!("Stopping"); return Ok(()) }
            _ = tokio::signal::ctrl_c() => { tracing::info!("Stopping"); return Ok(()) }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// SIGHUP or `rlvs ctl reload`: a configuration that loads replaces the
/// running one, and the answer comes once VRRP and the checkers have
/// applied it and the engine has taken every change; one that does not
/// load leaves everything untouched, and says why.
async fn reload(
    args: &Args,
    vrrp: Option<&crate::vrrp::Handle>,
    checkers: Option<&crate::check::Handle>,
    engine: &Handle,
) -> Response {
    let Some(path) = &args.config else {
        tracing::info!("SIGHUP without a configuration file - nothing to reload");
        return Response::Refused("the daemon runs without a configuration file".into());
    };
    tracing::info!("Reloading ...");
    crate::systemd::reloading();
    let answer = match load(path, args.config_id.clone(), args.strict, true) {
        Ok(l) => {
            let mut applied = Vec::new();
            if let Some(c) = checkers {
                let (tx, rx) = tokio::sync::oneshot::channel();
                if c.commands.send(crate::check::Command::Reload(Box::new(l.config.clone()), Some(tx))).is_ok() {
                    applied.push(rx);
                }
            }
            if let Some(v) = vrrp {
                let (tx, rx) = tokio::sync::oneshot::channel();
                if v.commands.send(crate::vrrp::Command::Reload(Box::new(l.config), Some(tx))).is_ok() {
                    applied.push(rx);
                }
            }
            for rx in applied {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(30), rx).await;
            }
            Response::Ok
        }
        Err(e) => {
            tracing::error!("Reload failed, keeping the running configuration: {e:#}");
            Response::Refused(format!("{e:#}; the running configuration is kept"))
        }
    };
    let services = crate::systemd::engine_answers(engine).await.unwrap_or(0);
    let status = vrrp.map(|v| v.status.clone());
    crate::systemd::ready(&describe(status.as_ref(), services, engine.name()));
    answer
}

/// Where a control client's operator requests go.
#[derive(Clone)]
struct Parts {
    checkers: Option<tokio::sync::mpsc::UnboundedSender<crate::check::Command>>,
    vrrp: Option<tokio::sync::mpsc::UnboundedSender<crate::vrrp::Command>>,
    announce: Option<tokio::sync::mpsc::UnboundedSender<crate::announce::Ask>>,
}

pub type VrrpStatus = std::sync::Arc<std::sync::Mutex<Vec<crate::vrrp::Status>>>;

async fn client(
    stream: UnixStream,
    handle: Handle,
    vrrp: Option<VrrpStatus>,
    reloads: tokio::sync::mpsc::UnboundedSender<ReloadAsk>,
    parts: Parts,
) -> Result<()> {
    // Kernel IPVS needs CAP_NET_ADMIN; the daemon admits root only.
    let root = stream.peer_cred().map(|c| c.uid() == 0).unwrap_or(false);
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Some(line) = lines.next_line().await? {
        let resp = if !root {
            Response::Error(CtlError::PermissionDenied)
        } else {
            match serde_json::from_str::<Request>(&line) {
                Ok(Request::VrrpStatus) => {
                    let list = vrrp.as_ref().and_then(|v| v.lock().ok().map(|s| s.clone())).unwrap_or_default();
                    Response::Vrrp(list.iter().filter_map(|s| serde_json::to_value(s).ok()).collect())
                }
                Ok(Request::Reload) => {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    if reloads.send(tx).is_err() {
                        Response::Refused("the daemon is stopping".into())
                    } else {
                        rx.await.unwrap_or(Response::Refused("the daemon is stopping".into()))
                    }
                }
                Ok(Request::Operator { addr, port, op }) => {
                    let (reply, rx) = tokio::sync::oneshot::channel();
                    let cmd = crate::check::Command::Operator { addr, port, op, reply };
                    match parts.checkers.as_ref().map(|c| c.send(cmd)) {
                        Some(Ok(())) => rx.await.unwrap_or(Response::Refused("the checkers stopped".into())),
                        _ => Response::Refused(
                            "no checkers: this daemon runs no virtual servers of a keepalived.conf".into(),
                        ),
                    }
                }
                Ok(Request::Checkers) => {
                    let (reply, rx) = tokio::sync::oneshot::channel();
                    match parts.checkers.as_ref().map(|c| c.send(crate::check::Command::Status(reply))) {
                        Some(Ok(())) => Response::Checkers(rx.await.unwrap_or_default()),
                        _ => Response::Checkers(Vec::new()),
                    }
                }
                Ok(Request::Maintenance { instance, on }) => {
                    let (reply, rx) = tokio::sync::oneshot::channel();
                    let cmd = crate::vrrp::Command::Maintenance { instance, on, reply };
                    match parts.vrrp.as_ref().map(|v| v.send(cmd)) {
                        Some(Ok(())) => rx.await.unwrap_or(Response::Refused("VRRP stopped".into())),
                        _ => Response::Refused("no VRRP instances in this daemon".into()),
                    }
                }
                Ok(Request::Announce(op)) => {
                    let (reply, rx) = tokio::sync::oneshot::channel();
                    match parts.announce.as_ref().map(|a| a.send((op, reply))) {
                        Some(Ok(())) => rx.await.unwrap_or(Response::Refused("the daemon is stopping".into())),
                        _ => Response::Refused("this daemon announces nothing (no --scale-out settings)".into()),
                    }
                }
                Ok(req) => {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    handle.send(ControlMsg {
                        req,
                        reply: Box::new(move |r| {
                            let _ = tx.send(r);
                        }),
                    });
                    rx.await.context("engine stopped")?
                }
                Err(_) => Response::Error(CtlError::BadRequest),
            }
        };
        let mut out = serde_json::to_vec(&resp)?;
        out.push(b'\n');
        w.write_all(&out).await?;
    }
    Ok(())
}
