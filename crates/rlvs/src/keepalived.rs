//! The keepalived face: invoked through a link named `keepalived`, rlvs
//! takes keepalived's command line (`-f -n -l -D -G -t -P -C -p -r -c -i`
//! and their long forms) and behaves as keepalived 2.2.7 does: forks into
//! the background unless `-n`, writes its pid files, `-t` checks the
//! configuration and exits with keepalived's codes.

use crate::daemon;
use std::path::PathBuf;
use std::process::ExitCode;

/// keepalived's exit codes (core/main.h).
const EXIT_OK: u8 = 0;
const EXIT_FATAL: u8 = 3;
const EXIT_CONFIG: u8 = 4;
const EXIT_CONFIG_TEST: u8 = 5;

#[derive(Debug, Default, PartialEq)]
struct Opts {
    config: Option<PathBuf>,
    dont_fork: bool,
    log_console: bool,
    log_detail: bool,
    config_test: bool,
    vrrp_only: bool,
    check_only: bool,
    pid: Option<PathBuf>,
    vrrp_pid: Option<PathBuf>,
    checkers_pid: Option<PathBuf>,
    config_id: Option<String>,
    version: bool,
    help: bool,
}

const USAGE: &str = "Usage: keepalived [OPTION...]
  -f, --use-file=FILE          Use the specified configuration file
                                default '/etc/keepalived/keepalived.conf'
  -P, --vrrp                   Only run with VRRP subsystem
  -C, --check                  Only run with Health-checker subsystem
  -l, --log-console            Log messages to local console
  -D, --log-detail             Detailed log messages
  -G, --no-syslog              Don't log via syslog
  -n, --dont-fork              Don't fork the daemon process
  -p, --pid=FILE               Use specified pidfile for parent process
  -r, --vrrp_pid=FILE          Use specified pidfile for VRRP child process
  -c, --checkers_pid=FILE      Use specified pidfile for checkers child process
  -i, --config-id id           Skip any configuration lines beginning '@' that don't match id
                                or any lines beginning @^ that do match.
                                The config-id defaults to the node name if option not used
  -t, --config-test[=LOG_FILE] Check the configuration for obvious errors, output to
                                stderr by default
  -v, --version                Display the version number
  -h, --help                   Display this help message
";

/// getopt_long as keepalived configures it: short options may be grouped
/// (`-nlD`), an argument may be attached (`-fFILE`) or follow.
fn parse(argv: &[String]) -> Result<Opts, String> {
    let mut o = Opts::default();
    let mut i = 1;
    let with_arg = |name: &str| matches!(name, "f" | "p" | "r" | "c" | "i" | "S" | "u" | "s" | "b" | "A" | "M");
    while i < argv.len() {
        let a = &argv[i];
        i += 1;
        if let Some(long) = a.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let short = match name {
                "use-file" => "f",
                "vrrp" => "P",
                "check" => "C",
                "log-console" => "l",
                "log-detail" => "D",
                "no-syslog" => "G",
                "dont-fork" => "n",
                "pid" => "p",
                "vrrp_pid" => "r",
                "checkers_pid" => "c",
                "config-id" => "i",
                "config-test" => "t",
                "version" => "v",
                "help" => "h",
                "no_bfd" | "all" | "release-vips" | "dont-release-vrrp" | "dont-release-ipvs" | "dont-respawn"
                | "dump-conf" | "address-monitoring" | "core-dump" | "all-config" | "snmp" => continue,
                "log-facility" | "umask" | "namespace" | "snmp-agent-socket" | "core-dump-pattern" | "bfd_pid"
                | "signum" => {
                    if value.is_none() {
                        i += 1;
                    }
                    continue;
                }
                other => return Err(format!("keepalived: unrecognized option '--{other}'")),
            };
            let value = if with_arg(short) && value.is_none() {
                let v = argv
                    .get(i)
                    .cloned()
                    .ok_or_else(|| format!("keepalived: option '--{name}' requires an argument"))?;
                i += 1;
                Some(v)
            } else {
                value
            };
            apply(&mut o, short, value);
            continue;
        }
        let Some(group) = a.strip_prefix('-').filter(|g| !g.is_empty()) else {
            return Err(format!("keepalived: unexpected argument '{a}'"));
        };
        let chars: Vec<char> = group.chars().collect();
        let mut k = 0;
        while k < chars.len() {
            let c = chars[k].to_string();
            k += 1;
            if !"fPClDGnprcitvhBRVIXdaxmeSusbAMT".contains(c.as_str()) {
                return Err(format!("keepalived: invalid option -- '{c}'"));
            }
            if with_arg(&c) {
                let rest: String = chars[k..].iter().collect();
                let v = if !rest.is_empty() {
                    rest
                } else {
                    let v = argv
                        .get(i)
                        .cloned()
                        .ok_or_else(|| format!("keepalived: option requires an argument -- '{c}'"))?;
                    i += 1;
                    v
                };
                apply(&mut o, &c, Some(v));
                break;
            }
            apply(&mut o, &c, None);
        }
    }
    Ok(o)
}

fn apply(o: &mut Opts, short: &str, v: Option<String>) {
    match short {
        "f" => o.config = v.map(PathBuf::from),
        "P" => o.vrrp_only = true,
        "C" => o.check_only = true,
        "l" => o.log_console = true,
        "D" => o.log_detail = true,
        "n" => o.dont_fork = true,
        "p" => o.pid = v.map(PathBuf::from),
        "r" => o.vrrp_pid = v.map(PathBuf::from),
        "c" => o.checkers_pid = v.map(PathBuf::from),
        "i" => o.config_id = v,
        "t" => o.config_test = true,
        "v" => o.version = true,
        "h" => o.help = true,
        _ => {}
    }
}

/// The node name's first label, keepalived's default config id.
fn node_name() -> Option<String> {
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let n = unsafe { std::ffi::CStr::from_ptr(u.nodename.as_ptr()) }.to_string_lossy().into_owned();
    n.split('.').next().map(str::to_string)
}

pub fn main(argv: Vec<String>) -> ExitCode {
    let o = match parse(&argv) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            eprint!("{USAGE}");
            return ExitCode::from(EXIT_FATAL);
        }
    };
    if o.help {
        eprint!("{USAGE}");
        return ExitCode::from(EXIT_OK);
    }
    if o.version {
        eprintln!("Keepalived v2.2.7 (rlvs {})", env!("CARGO_PKG_VERSION"));
        return ExitCode::from(EXIT_OK);
    }
    let config = o.config.clone().unwrap_or_else(|| PathBuf::from("/etc/keepalived/keepalived.conf"));
    let config_id = o.config_id.clone().or_else(node_name);
    if o.config_test {
        return config_test(&config, config_id);
    }
    if !config.exists() {
        eprintln!("Configuration file '{}' not found", config.display());
        return ExitCode::from(EXIT_CONFIG);
    }
    if !o.dont_fork {
        // SAFETY: daemon(3) forks before any thread exists here.
        if unsafe { libc::daemon(0, 0) } != 0 {
            eprintln!("keepalived: cannot fork: {}", std::io::Error::last_os_error());
            return ExitCode::from(EXIT_FATAL);
        }
    }
    let pidfiles: Vec<PathBuf> = [
        Some(o.pid.clone().unwrap_or_else(|| PathBuf::from("/run/keepalived.pid"))),
        (!o.check_only).then(|| o.vrrp_pid.clone().unwrap_or_else(|| PathBuf::from("/run/vrrp.pid"))),
        (!o.vrrp_only).then(|| o.checkers_pid.clone().unwrap_or_else(|| PathBuf::from("/run/checkers.pid"))),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some(running) = pidfiles.first().and_then(|p| running_pid(p)) {
        eprintln!("daemon is already running (pid {running})");
        return ExitCode::from(EXIT_OK);
    }
    for p in &pidfiles {
        let _ = std::fs::write(p, format!("{}\n", std::process::id()));
    }
    let args = daemon::Args {
        config: Some(config),
        config_id,
        strict: false,
        // Health checks and virtual servers (the checker side) need the
        // data plane; -P runs VRRP alone.
        engine: if o.vrrp_only {
            "none".into()
        } else {
            std::env::var("RLVS_ENGINE").unwrap_or_else(|_| "auto".into())
        },
        interfaces: Vec::new(),
        // A real director runs in the host's namespace; rlvs only does so
        // when told (it sends raw frames).
        host_netns: std::env::var_os("RLVS_ALLOW_HOST_NETNS").is_some(),
        ring: "v2".into(),
        xdp_copy: false,
        workers: 0,
        filter_entries: std::env::var("RLVS_FILTER_ENTRIES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(rlvs_dataplane::maps::FILTER_ENTRIES),
        bpffs: std::env::var_os("RLVS_BPFFS").map(Into::into),
        keep_forwarding: std::env::var_os("RLVS_KEEP_FORWARDING").is_some(),
        log: if o.log_detail { "debug".into() } else { "info".into() },
        keepalived_log: true,
        vrrp_only: o.vrrp_only,
        check_only: o.check_only,
    };
    let _ = daemon::init_logging(&args.log, true);
    tracing::info!("Starting Keepalived v2.2.7 (rlvs {})", env!("CARGO_PKG_VERSION"));
    tracing::info!("Command line: {}", argv.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(" "));
    let r = daemon::serve_until_stopped(args);
    for p in &pidfiles {
        let _ = std::fs::remove_file(p);
    }
    match r {
        Ok(()) => {
            tracing::info!("Stopped Keepalived v2.2.7 (rlvs {})", env!("CARGO_PKG_VERSION"));
            ExitCode::from(EXIT_OK)
        }
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn running_pid(p: &std::path::Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(p).ok()?.trim().parse().ok()?;
    // SAFETY: signal 0 only checks the process exists.
    (pid != std::process::id() && unsafe { libc::kill(pid as i32, 0) } == 0).then_some(pid)
}

/// `-t`: every diagnostic on stderr; exit 0 when clean, 5 when keepalived
/// would have reported anything, 4 when the file is missing or unusable.
fn config_test(path: &std::path::Path, config_id: Option<String>) -> ExitCode {
    let loaded = match rlvs_conf::load_file(path, rlvs_conf::Options { config_id }) {
        Ok(l) => l,
        Err(d) => {
            eprintln!("{d}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    for d in &loaded.diags {
        eprintln!("{d}");
    }
    // Interfaces the file names must exist, as keepalived checks at load.
    let mut missing = false;
    let exists = |n: &str| rlvs_dataplane::iface::index_of(n).is_some();
    for i in &loaded.config.instances {
        if let Some((ifname, pos)) = &i.interface {
            if !exists(ifname) {
                eprintln!("{pos}: warning: WARNING - interface {ifname} for vrrp_instance {} doesn't exist", i.name);
                missing = true;
            }
        }
        for v in i.vips.iter().chain(&i.excluded_vips) {
            if let Some(dev) = &v.dev {
                if !exists(dev) {
                    eprintln!(
                        "{}: warning: WARNING - interface {dev} for ip address {}/{} doesn't exist",
                        v.pos, v.addr, v.prefix
                    );
                    missing = true;
                }
            }
        }
    }
    if missing {
        eprintln!("Non-existent interface specified in configuration");
    }
    // keepalived exits 5 for whatever it reported, 4 only for a missing
    // file (above) or a fatal error; notes are rlvs's own and count not.
    match loaded.worst() {
        Some(Severity::Error | Severity::Warning) => ExitCode::from(EXIT_CONFIG_TEST),
        _ if missing => ExitCode::from(EXIT_CONFIG_TEST),
        _ => ExitCode::from(EXIT_OK),
    }
}

use rlvs_conf::Severity;

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Opts, String> {
        let mut v = vec!["keepalived".to_string()];
        v.extend(args.iter().map(|s| s.to_string()));
        parse(&v)
    }

    #[test]
    fn keepalived_command_lines() {
        let o = p(&["-nlD", "-f", "/etc/k.conf", "-p/run/a.pid", "--vrrp_pid=/run/b.pid", "-i", "c2"]).unwrap();
        assert!(o.dont_fork && o.log_console && o.log_detail);
        assert_eq!(o.config.as_deref(), Some(std::path::Path::new("/etc/k.conf")));
        assert_eq!(o.pid.as_deref(), Some(std::path::Path::new("/run/a.pid")));
        assert_eq!(o.vrrp_pid.as_deref(), Some(std::path::Path::new("/run/b.pid")));
        assert_eq!(o.config_id.as_deref(), Some("c2"));
        let o = p(&["--use-file", "/x", "--dont-fork", "--log-console", "-t", "-P", "-G"]).unwrap();
        assert!(o.config_test && o.vrrp_only && o.dont_fork);
        assert!(p(&["-q"]).unwrap_err().contains("invalid option -- 'q'"));
        assert!(p(&["-f"]).unwrap_err().contains("requires an argument"));
        assert!(p(&["--bogus"]).unwrap_err().contains("unrecognized option"));
    }
}
