//! `rlvs daemon`: owns the engine thread and serves the control socket of
//! its network namespace until SIGTERM or SIGINT.

use anyhow::{bail, Context, Result};
use rlvs_ctl::{CtlError, Request, Response};
use rlvs_dataplane::{ControlMsg, EngineConfig, EngineKind, Handle};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

#[derive(clap::Args)]
pub struct Args {
    /// Packet engine: afpacket, or none for tables without forwarding.
    #[arg(long, default_value = "afpacket")]
    engine: String,
    /// Interface to serve (repeatable); default: every interface but lo.
    #[arg(long = "interface", short = 'i')]
    interfaces: Vec<String>,
    /// Allow the raw-frame engine in the host's own network namespace (a
    /// real director); without it rlvs only runs inside a namespace.
    #[arg(long)]
    host_netns: bool,
    /// AF_PACKET receive ring: v2 (a slot per frame, lowest latency) or v3
    /// (blocks, fewer wake-ups under load, up to 1 ms added latency).
    #[arg(long, default_value = "v2", value_parser = ["v2", "v3"])]
    ring: String,
    /// Log filter, as RUST_LOG (e.g. debug, rlvs_dataplane=trace).
    #[arg(long, default_value = "info")]
    log: String,
}

pub fn run(args: Args) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log).context("--log")?)
        .with_writer(std::io::stderr)
        .init();
    let kind = match args.engine.as_str() {
        "afpacket" => EngineKind::AfPacket,
        "none" => EngineKind::None,
        other => bail!("unknown engine {other:?} (afpacket or none)"),
    };
    // Bind first: a second daemon in the same namespace must fail before it
    // touches the data plane of the first.
    let std_listener = bind_control_socket()?;
    let cfg =
        EngineConfig { kind, interfaces: args.interfaces, allow_host_netns: args.host_netns, ..Default::default() };
    let (handle, engine) = rlvs_dataplane::start(cfg)?;
    tracing::info!(engine = kind.name(), socket = "@rlvs/control", "rlvs daemon running");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let served = rt.block_on(serve(std_listener, handle.clone()));
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

async fn serve(std_listener: std::os::unix::net::UnixListener, handle: Handle) -> Result<()> {
    let listener = UnixListener::from_std(std_listener)?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            r = listener.accept() => {
                let (stream, _) = r?;
                let h = handle.clone();
                tokio::spawn(async move {
                    if let Err(e) = client(stream, h).await {
                        tracing::debug!(error = %e, "control client");
                    }
                });
            }
            _ = term.recv() => { tracing::info!("SIGTERM"); return Ok(()) }
            _ = tokio::signal::ctrl_c() => { tracing::info!("SIGINT"); return Ok(()) }
        }
    }
}

async fn client(stream: UnixStream, handle: Handle) -> Result<()> {
    // Kernel IPVS needs CAP_NET_ADMIN; the daemon admits root only.
    let root = stream.peer_cred().map(|c| c.uid() == 0).unwrap_or(false);
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Some(line) = lines.next_line().await? {
        let resp = if !root {
            Response::Error(CtlError::PermissionDenied)
        } else {
            match serde_json::from_str::<Request>(&line) {
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
