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
    /// Only the VRRP side of the configuration (keepalived -P).
    #[arg(long)]
    pub vrrp_only: bool,
    /// Only the virtual servers and their checkers (keepalived -C).
    #[arg(long)]
    pub check_only: bool,
}

pub fn init_logging(filter: &str, keepalived_style: bool) -> Result<()> {
    let f = tracing_subscriber::EnvFilter::try_new(filter).context("--log")?;
    let b = tracing_subscriber::fmt().with_env_filter(f).with_writer(std::io::stderr);
    if keepalived_style {
        b.with_timer(KeepalivedTime).with_level(false).with_target(false).with_ansi(false).init();
    } else {
        b.init();
    }
    Ok(())
}

/// keepalived's log timestamps: `Sat Nov 28 01:32:28 2026:`.
struct KeepalivedTime;

impl tracing_subscriber::fmt::time::FormatTime for KeepalivedTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        // SAFETY: time/localtime_r/strftime on our own buffers.
        let s = unsafe {
            let t = libc::time(std::ptr::null_mut());
            let mut tm: libc::tm = std::mem::zeroed();
            libc::localtime_r(&t, &mut tm);
            let mut buf = [0u8; 64];
            let n = libc::strftime(
                buf.as_mut_ptr() as *mut libc::c_char,
                buf.len(),
                c"%a %b %e %H:%M:%S %Y:".as_ptr(),
                &tm,
            );
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        w.write_str(&s)
    }
}

/// Loads the configuration and reports what it says. Err when it cannot
/// be used: missing, warnings under --strict, or — when `refuse_errors`,
/// as on a reload — an error that dropped part of it. At start-up rlvs,
/// like keepalived, runs what is valid; a reload must not make the
/// running configuration worse, so it refuses instead.
pub fn load(path: &std::path::Path, config_id: Option<String>, strict: bool, refuse_errors: bool) -> Result<Loaded> {
    let opts = rlvs_conf::Options { config_id };
    let loaded = rlvs_conf::load_file(path, opts).map_err(|d| anyhow::anyhow!("{d}"))?;
    for d in &loaded.diags {
        match d.severity {
            Severity::Note => tracing::info!("{d}"),
            Severity::Warning => tracing::warn!("{d}"),
            Severity::Error => tracing::error!("{d}"),
        }
    }
    match loaded.worst() {
        Some(Severity::Error) if refuse_errors || strict => bail!("{} has errors", path.display()),
        Some(Severity::Warning) if strict => bail!("{} has warnings (--strict)", path.display()),
        _ => Ok(loaded),
    }
}

pub fn run(args: Args) -> Result<()> {
    init_logging(&args.log, args.keepalived_log)?;
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
        Chosen::Kernel(client) => {
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
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let vrrp = config.map(|c| tokio::spawn(crate::vrrp::run(c.config, stop_rx, ready_tx)));
        let vrrp_handle = match vrrp {
            Some(_) => ready_rx.await.ok(),
            None => None,
        };
        let syncd = sync_config.map(|c| {
            let roles = vrrp_handle.as_ref().map(|v| ((v.status.clone(), v.changed.clone()), v.commands.clone()));
            tokio::spawn(crate::syncd::run(c, handle.clone(), roles, syncd_stop))
        });
        let served =
            serve(std_listener, handle.clone(), &args, vrrp_handle.as_ref(), checkers.as_ref().map(|c| &c.0)).await;
        let _ = stop_tx.send(true);
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

async fn serve(
    std_listener: std::os::unix::net::UnixListener,
    handle: Handle,
    args: &Args,
    vrrp: Option<&crate::vrrp::Handle>,
    checkers: Option<&crate::check::Handle>,
) -> Result<()> {
    let listener = UnixListener::from_std(std_listener)?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            r = listener.accept() => {
                let (stream, _) = r?;
                let h = handle.clone();
                let status = vrrp.map(|v| v.status.clone());
                tokio::spawn(async move {
                    if let Err(e) = client(stream, h, status).await {
                        tracing::debug!(error = %e, "control client");
                    }
                });
            }
            _ = hup.recv() => reload(args, vrrp, checkers),
            _ = term.recv() => { tracing::info!("Stopping"); return Ok(()) }
            _ = tokio::signal::ctrl_c() => { tracing::info!("Stopping"); return Ok(()) }
        }
    }
}

/// SIGHUP: a configuration that loads replaces the running one; one that
/// does not leaves it untouched, and says why.
fn reload(args: &Args, vrrp: Option<&crate::vrrp::Handle>, checkers: Option<&crate::check::Handle>) {
    let Some(path) = &args.config else {
        tracing::info!("SIGHUP without a configuration file - nothing to reload");
        return;
    };
    tracing::info!("Reloading ...");
    match load(path, args.config_id.clone(), args.strict, true) {
        Ok(l) => {
            if let Some(c) = checkers {
                let _ = c.commands.send(crate::check::Command::Reload(Box::new(l.config.clone())));
            }
            if let Some(v) = vrrp {
                let _ = v.commands.send(crate::vrrp::Command::Reload(Box::new(l.config)));
            }
        }
        Err(e) => tracing::error!("Reload failed, keeping the running configuration: {e:#}"),
    }
}

type VrrpStatus = std::sync::Arc<std::sync::Mutex<Vec<crate::vrrp::Status>>>;

async fn client(stream: UnixStream, handle: Handle, vrrp: Option<VrrpStatus>) -> Result<()> {
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
