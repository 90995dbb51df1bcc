//! rlvs: one binary, several faces. Invoked as `ipvsadm` it is ipvsadm,
//! as `keepalived` it is keepalived; otherwise the first argument picks
//! the face.

mod announce;
mod backend;
mod check;
mod ctl;
mod daemon;
mod decap;
mod defence;
mod dumps;
mod genhash;
mod keepalived;
mod lab;
mod logging;
mod metrics;
mod realserver;
mod syncd;
mod systemd;
mod verdict;
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
    /// Runtime control of the daemon in this namespace.
    Ctl {
        #[command(subcommand)]
        cmd: CtlCmd,
    },
    /// keepalived's genhash: the MD5 of a page, for HTTP_GET's `digest`.
    #[command(disable_help_flag = true)]
    Genhash {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Remove what rlvs's own data plane leaves in the kernel once no
    /// daemon runs: pinned XDP maps and links, the nftables table. The
    /// packages run it on removal.
    Cleanup,
    /// Write the man pages and shell completions generated from this
    /// command line into DIR (used by scripts/package.sh).
    #[command(hide = true)]
    GenDocs { dir: std::path::PathBuf },
    /// Prepare or undo a real server (VIP on lo, ARP settings), as the seed's rs.sh.
    Realserver(realserver::Args),
    /// Network-namespace labs that replay the seed tutorial.
    Lab(lab::Args),
}

#[derive(Subcommand)]
enum CtlCmd {
    /// VRRP instances, virtual servers and their real servers (weights,
    /// connections, checks, operator holds), the engine, sync daemons.
    Status {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Weight 0 for a real server (ADDR or ADDR:PORT, every virtual
    /// server it is in): no new connections, established ones go on. It
    /// holds across reloads and health transitions until `enable`.
    Drain { rs: String },
    /// Lift a drain or weight: the configured weight and the checks rule again.
    Enable { rs: String },
    /// Give a real server this weight until `enable`.
    Weight { rs: String, weight: u32 },
    /// `on`: put a VRRP instance in FAULT so the peer takes the VIPs (a
    /// master hands over at once); `off`: return it. Holds across reloads.
    Maintenance {
        instance: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// The connection table's bound and IPVS's defences: shows them, and
    /// changes those given (as `sysctl net.ipv4.vs.*` does the kernel's).
    Defence {
        #[command(flatten)]
        set: defence::DefenceArgs,
        /// The engine's counters, with the defences', as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The BGP announcement of this director's VIPs (scale-out): shows
    /// it; `drain` announces them with GRACEFUL_SHUTDOWN for the drain
    /// time, then withdraws them; `resume` announces them again.
    Announce {
        #[arg(value_parser = ["status", "drain", "resume"], default_value = "status")]
        op: String,
        /// `drain`: return only once every VIP is withdrawn.
        #[arg(long)]
        wait: bool,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// The real server new connections from CLIENT would get from the
    /// virtual service VIP:PORT, one line per client port, without making
    /// them: directors behind ECMP must all answer the same.
    Pick {
        service: String,
        client: std::net::IpAddr,
        /// Client ports: N or FIRST-LAST.
        #[arg(long, default_value = "1024-1087")]
        ports: String,
        #[arg(long)]
        udp: bool,
    },
    /// Reload the daemon's keepalived.conf (as SIGHUP does).
    Reload {
        /// Return only once the reload is applied: VRRP and the checkers
        /// run the new file and the table holds its changes. A file that
        /// does not load is refused, with why, and exit status 1.
        #[arg(long)]
        wait: bool,
    },
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
        Some("genhash") => return genhash::main(argv),
        // Debian's and RHEL's wrappers around `ipvsadm -S` and `-R`.
        Some("ipvsadm-save") => {
            let numeric = argv.iter().skip(1).any(|a| a == "-n");
            let mut v = vec!["ipvsadm".to_string(), "-S".to_string()];
            if numeric {
                v.push("-n".into());
            }
            return adm(v);
        }
        Some("ipvsadm-restore") => return adm(vec!["ipvsadm".into(), "-R".into()]),
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
        Face::Ctl { cmd: CtlCmd::Status { json } } => report(ctl::status(json)),
        Face::Ctl { cmd: CtlCmd::Reload { wait } } => report(ctl::reload(wait)),
        Face::Ctl { cmd: CtlCmd::Defence { set, json } } => report(defence::ctl(&set, json)),
        Face::Ctl { cmd: CtlCmd::Announce { op, wait, json } } => report(ctl::announce(&op, wait, json)),
        Face::Ctl { cmd: CtlCmd::Pick { service, client, ports, udp } } => {
            report(ctl::pick(&service, client, &ports, udp))
        }
        Face::Ctl { cmd: CtlCmd::Drain { rs } } => report(ctl::operator(&rs, rlvs_ctl::OperatorOp::Drain)),
        Face::Ctl { cmd: CtlCmd::Enable { rs } } => report(ctl::operator(&rs, rlvs_ctl::OperatorOp::Enable)),
        Face::Ctl { cmd: CtlCmd::Maintenance { instance, state } } => {
            report(ctl::call(&rlvs_ctl::Request::Maintenance { instance, on: state == "on" }))
        }
        Face::Ctl { cmd: CtlCmd::Weight { rs, weight } } => {
            report(ctl::operator(&rs, rlvs_ctl::OperatorOp::Weight(weight)))
        }
        Face::Genhash { args } => {
            let mut argv = vec!["genhash".to_string()];
            argv.extend(args);
            genhash::main(argv)
        }
        Face::Cleanup => report(cleanup()),
        Face::GenDocs { dir } => report(gen_docs(&dir)),
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

/// What rlvs's own engine leaves of this network namespace once no daemon
/// runs (killed, or stopped with --keep-forwarding): its pin directory
/// (unpinning drops the last reference to each XDP link, so the program
/// leaves its interfaces), its table state in /run/rlvs, the nft table.
/// Other namespaces' directors are left alone.
fn cleanup() -> anyhow::Result<()> {
    if rlvs_ctl::Client::connect().is_ok() {
        anyhow::bail!("an rlvs daemon is running in this namespace; stop it first");
    }
    // The pins as the daemon finds them (through the host's bpffs when
    // `ip netns exec` gave this process a mount namespace of its own).
    let bpffs = std::env::var_os("RLVS_BPFFS").map(std::path::PathBuf::from);
    let pins = rlvs_dataplane::pins::open(bpffs.as_deref())?;
    let n = pins.count();
    pins.remove_all();
    pins.remove_root_if_empty();
    if n > 0 {
        println!("removed the {n} pinned maps and links of this namespace");
    }
    let state = std::path::Path::new("/run/rlvs").join(rlvs_dataplane::pins::netns_cookie()?.to_string());
    if state.exists() {
        std::fs::remove_dir_all(&state).map_err(|e| anyhow::anyhow!("removing {}: {e}", state.display()))?;
        println!("removed {}", state.display());
        let _ = std::fs::remove_dir("/run/rlvs");
    }
    rlvs_dataplane::nft::remove_table();
    Ok(())
}

fn gen_docs(dir: &Path) -> anyhow::Result<()> {
    use clap::CommandFactory;
    let man = dir.join("man");
    let completions = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    let cmd = Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).section("8").render(&mut page)?;
    std::fs::write(man.join("rlvs.8"), page)?;
    // The faces have their own pages (ipvsadm(8), keepalived(8), genhash(1)).
    for sub in cmd.get_subcommands().filter(|s| !["adm", "keepalived", "genhash"].contains(&s.get_name())) {
        man_pages(&man, sub, "rlvs")?;
    }
    std::fs::write(man.join("keepalived.conf.5"), keepalived_conf_page())?;
    for (shell, file) in [
        (clap_complete::Shell::Bash, "rlvs.bash"),
        (clap_complete::Shell::Zsh, "_rlvs"),
        (clap_complete::Shell::Fish, "rlvs.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "rlvs", &mut out);
        std::fs::write(completions.join(file), out)?;
    }
    Ok(())
}

/// keepalived.conf(5): the hand-written part, then every block's keywords
/// from the table the reader itself uses, so the page cannot drift.
fn keepalived_conf_page() -> String {
    use rlvs_conf::schema::{table, BlockKind};
    let roff = |s: &str| s.replace('\\', "\\e").replace('-', "\\-");
    let mut page = include_str!("../../../packaging/man/keepalived.conf.5.in").to_string();
    for kind in BlockKind::ALL {
        let t = table(kind);
        page.push_str(&format!(".SS {}\n", roff(kind.describe())));
        let mut acted: Vec<&str> = t.acted.to_vec();
        acted.sort_unstable();
        page.push_str(&format!(".TP\n.B acted on\n{}\n", roff(&acted.join(", "))));
        if !t.ignored.is_empty() {
            page.push_str(".TP\n.B accepted without effect\n");
            let mut ignored: Vec<_> = t.ignored.to_vec();
            ignored.sort_unstable();
            for (kw, why) in ignored {
                page.push_str(&format!("\\fB{}\\fR: {}.\n.br\n", roff(kw), roff(why)));
            }
        }
    }
    page.push_str(".SH SEE ALSO\n.BR keepalived (8),\n.BR genhash (1),\n.BR ipvsadm (8),\n.BR rlvs (8)\n");
    page
}

/// `rlvs-ctl-reload.8` and the like: a page per subcommand, at every
/// depth, as the parent page's SUBCOMMANDS section names them.
fn man_pages(dir: &Path, cmd: &clap::Command, parent: &str) -> anyhow::Result<()> {
    if cmd.is_hide_set() || cmd.get_name() == "help" {
        return Ok(());
    }
    let name = format!("{parent}-{}", cmd.get_name());
    let bin = format!("{} {}", parent.replace('-', " "), cmd.get_name());
    // A one-shot generator: leaking the names clap wants as &'static costs nothing.
    let (static_name, static_bin): (&'static str, &'static str) =
        (Box::leak(name.clone().into_boxed_str()), Box::leak(bin.into_boxed_str()));
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone().name(static_name).bin_name(static_bin)).section("8").render(&mut page)?;
    std::fs::write(dir.join(format!("{name}.8")), page)?;
    for sub in cmd.get_subcommands() {
        man_pages(dir, sub, &name)?;
    }
    Ok(())
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
