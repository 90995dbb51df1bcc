//! rlvs: one binary, several faces. Invoked as `ipvsadm` it is ipvsadm,
//! as `keepalived` it is keepalived; otherwise the first argument picks
//! the face.

mod backend;
mod check;
mod daemon;
mod decap;
mod keepalived;
mod lab;
mod realserver;
mod syncd;
mod vrrp;

use clap::{Parser, Subcommand};
use std::path::Path;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "rlvs", version, about = "LVS load balancing and keepalived high availability, in one program")]
struct Cli {
    #[command(subcommand)]
    face: Face,
}

#[derive(Subcommand)]
enum Face {
    /// Run the director: tables, data plane and control socket, and the
    /// VRRP instances of a keepalived.conf (foreground).
    Daemon(daemon::Args),
    /// The keepalived face: `rlvs keepalived -n -f FILE` is `keepalived -n -f FILE`.
    #[command(disable_help_flag = true)]
    Keepalived {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The ipvsadm face: `rlvs adm -Ln` is `ipvsadm -Ln`.
    #[command(disable_help_flag = true)]
    Adm {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The VRRP instances of the daemon in this namespace, as JSON.
    Status,
    /// Prepare or undo a real server (VIP on lo, ARP settings), as the seed's rs.sh.
    Realserver(realserver::Args),
    /// Network-namespace labs that replay the seed tutorial.
    Lab(lab::Args),
}

/// The kernel's IPVS table as the ipvsadm face's backend, connected on
/// first use like the daemon's.
#[derive(Default)]
struct KernelBackend {
    client: Option<rlvs_ipvs::client::Client>,
}

impl rlvs_adm::Backend for KernelBackend {
    fn call(&mut self, req: rlvs_ctl::Request) -> Result<rlvs_ctl::Response, rlvs_adm::BackendError> {
        if self.client.is_none() {
            // ipvsadm loads ip_vs when the kernel has no IPVS yet; so does this.
            let (c, _) = rlvs_ipvs::client::Client::connect_loading().map_err(|(e, _)| match e {
                rlvs_ipvs::client::Error::NotAvailable => rlvs_adm::BackendError::KernelUnavailable,
                e => rlvs_adm::BackendError::Io(std::io::Error::other(e.to_string())),
            })?;
            self.client = Some(c);
        }
        Ok(rlvs_ipvs::backend::handle(self.client.as_mut().expect("connected above"), req))
    }

    fn is_kernel(&self) -> bool {
        true
    }
}

fn adm(argv: Vec<String>) -> ExitCode {
    // Which table answers is decided by a fixed rule (backend.rs), never by
    // whether a daemon happens to be up.
    let kernel = backend::adm_table().0 == backend::AdmTable::Kernel;
    let mut daemon = rlvs_adm::DaemonBackend::default();
    let mut kernel_table = KernelBackend::default();
    let backend: &mut dyn rlvs_adm::Backend = if kernel { &mut kernel_table } else { &mut daemon };
    let out = rlvs_adm::run(&argv, backend, &mut std::io::stdin().lock());
    use std::io::Write;
    let _ = std::io::stdout().write_all(out.stdout.as_bytes());
    let _ = std::io::stderr().write_all(out.stderr.as_bytes());
    ExitCode::from(out.code as u8)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let invoked = argv.first().map(|a| Path::new(a).file_name().unwrap_or_default().to_string_lossy().into_owned());
    match invoked.as_deref() {
        Some("ipvsadm") => return adm(argv),
        Some("keepalived") => return keepalived::main(argv),
        _ => {}
    }
    let cli = Cli::parse();
    match cli.face {
        Face::Adm { args } => {
            let mut argv = vec!["ipvsadm".to_string()];
            argv.extend(args);
            adm(argv)
        }
        Face::Daemon(a) => report(daemon::run(a)),
        Face::Keepalived { args } => {
            let mut argv = vec!["keepalived".to_string()];
            argv.extend(args);
            keepalived::main(argv)
        }
        Face::Status => report(status()),
        Face::Realserver(a) => report(realserver::run(a)),
        Face::Lab(a) => report(lab::run(a)),
    }
}

fn status() -> anyhow::Result<()> {
    let mut c = rlvs_ctl::Client::connect().map_err(|e| anyhow::anyhow!("no rlvs daemon in this namespace: {e}"))?;
    match c.call(&rlvs_ctl::Request::VrrpStatus)? {
        rlvs_ctl::Response::Vrrp(list) => {
            println!("{}", serde_json::to_string_pretty(&list)?);
            Ok(())
        }
        other => anyhow::bail!("unexpected answer {other:?}"),
    }
}

fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rlvs: {e:#}");
            ExitCode::FAILURE
        }
    }
}
