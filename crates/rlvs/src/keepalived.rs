//! The keepalived face: invoked through a link named `keepalived`, rlvs
//! takes keepalived's command line (`-f -n -l -D -G -t -P -C -p -r -c -i`
//! and their long forms) and behaves as keepalived 2.2.7 does: forks into
//! the background unless `-n`, writes its pid files, `-t` checks the
//! configuration and exits with keepalived's codes.

use crate::daemon;
use std::path::PathBuf;
use std::process::ExitCode;

/// keepalived 2.2.7's exit codes (lib/scheduler.h): outside `-t` they
/// follow systemd.exec(5), so a unit's Restart= and logs read them right.
const EXIT_OK: u8 = 0;
const EXIT_FATAL: u8 = 1;
const EXIT_CONFIG: u8 = 2;
const EXIT_NO_CONFIG: u8 = 6;
/// Under `-t` (core/main.c, config_test_exit).
const EXIT_TEST_CONFIG: u8 = 4;
const EXIT_TEST_FAILED: u8 = 5;
/// Under `-t`: a SECURITY VIOLATION (CONFIG_SECURITY_ERROR).
const EXIT_TEST_SECURITY: u8 = 6;

#[derive(Debug, PartialEq)]
struct Opts {
    config: Option<PathBuf>,
    dont_fork: bool,
    log_console: bool,
    log_detail: bool,
    /// syslog facility (-S); LOG_DAEMON unless told.
    log_facility: u8,
    no_syslog: bool,
    config_test: bool,
    vrrp_only: bool,
    check_only: bool,
    pid: Option<PathBuf>,
    vrrp_pid: Option<PathBuf>,
    checkers_pid: Option<PathBuf>,
    config_id: Option<String>,
    /// What keepalived prints and carries on from (a bad -S).
    warnings: String,
    /// Non-option arguments, which keepalived names on stdout and ignores.
    unexpected: Option<String>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            config: None,
            dont_fork: false,
            log_console: false,
            log_detail: false,
            log_facility: 3,
            no_syslog: false,
            config_test: false,
            vrrp_only: false,
            check_only: false,
            pid: None,
            vrrp_pid: None,
            checkers_pid: None,
            config_id: None,
            warnings: String::new(),
            unexpected: None,
        }
    }
}

/// keepalived 2.2.7's own help text, as Debian's build prints it.
const USAGE: &str = "Usage: keepalived [OPTION...]
  -f, --use-file=FILE          Use the specified configuration file
                                default '/etc/keepalived/keepalived.conf'
  -P, --vrrp                   Only run with VRRP subsystem
  -C, --check                  Only run with Health-checker subsystem
  -B, --no_bfd                 Don't run BFD subsystem
      --all                    Force all child processes to run, even if have no configuration
  -l, --log-console            Log messages to local console
  -D, --log-detail             Detailed log messages
  -S, --log-facility=([0-7]|local[0-7]|user|daemon)
                               Set syslog facility to LOG_LOCAL[0-7], user or daemon (default)
  -G, --no-syslog              Don't log via syslog
  -u, --umask=MASK             umask for file creation (in numeric form)
  -X, --release-vips           Drop VIP on transition from signal.
  -V, --dont-release-vrrp      Don't remove VRRP VIPs and VROUTEs on daemon stop
  -I, --dont-release-ipvs      Don't remove IPVS topology on daemon stop
  -R, --dont-respawn           Don't respawn child processes
  -n, --dont-fork              Don't fork the daemon process
  -d, --dump-conf              Dump the configuration data
  -p, --pid=FILE               Use specified pidfile for parent process
  -r, --vrrp_pid=FILE          Use specified pidfile for VRRP child process
  -T, --genhash                Enter into genhash utility mode (this should be the first option used).
  -c, --checkers_pid=FILE      Use specified pidfile for checkers child process
  -a, --address-monitoring     Report all address additions/deletions notified via netlink
  -b, --bfd_pid=FILE           Use specified pidfile for BFD child process
  -x, --snmp                   Enable SNMP subsystem
  -A, --snmp-agent-socket=FILE Use the specified socket for master agent
  -s, --namespace=NAME         Run in network namespace NAME (overrides config)
  -m, --core-dump              Produce core dump if terminate abnormally
  -M, --core-dump-pattern=PATN Also set /proc/sys/kernel/core_pattern to PATN (default 'core')
  -e, --all-config             Error if any configuration file missing (same as includet)
  -i, --config-id id           Skip any configuration lines beginning '@' that don't match id
                                or any lines beginning @^ that do match.
                                The config-id defaults to the node name if option not used
      --signum=SIGFUNC         Return signal number for STOP, RELOAD, DATA, STATS, STATS_CLEAR, JSON
  -t, --config-test[=LOG_FILE] Check the configuration for obvious errors, output to
                                stderr by default
  -v, --version                Display the version number
  -h, --help                   Display this help message
";

/// keepalived 2.2.7's short options (getopt_long's string, core/main.c).
const SHORT_WITH_ARG: &str = "uSfpisrcbA";
const SHORT_OPTIONAL_ARG: &str = "tMg";
const SHORT_FLAGS: &str = "vhlndDReGmPCVXaITBx";

/// keepalived's long options and their short equivalents; the numbers
/// are keepalived's own codes for options with no short form.
const LONG: &[(&str, &str)] = &[
    ("use-file", "f"),
    ("vrrp", "P"),
    ("check", "C"),
    ("no_bfd", "B"),
    ("all", "3"),
    ("log-console", "l"),
    ("log-detail", "D"),
    ("log-facility", "S"),
    ("log-file", "g"),
    ("all-config", "e"),
    ("no-syslog", "G"),
    ("umask", "u"),
    ("release-vips", "X"),
    ("dont-release-vrrp", "V"),
    ("dont-release-ipvs", "I"),
    ("dont-respawn", "R"),
    ("dont-fork", "n"),
    ("dump-conf", "d"),
    ("pid", "p"),
    ("vrrp_pid", "r"),
    ("genhash", "T"),
    ("checkers_pid", "c"),
    ("address-monitoring", "a"),
    ("bfd_pid", "b"),
    ("snmp", "x"),
    ("snmp-agent-socket", "A"),
    ("core-dump", "m"),
    ("core-dump-pattern", "M"),
    ("namespace", "s"),
    ("config-id", "i"),
    ("signum", "4"),
    ("config-test", "t"),
    ("config-fd", "8"),
    ("version", "v"),
    ("help", "h"),
];

/// What the command line asks for before any daemon work.
#[derive(Debug, PartialEq)]
enum Parsed {
    Run(Opts),
    /// -v, -h, --signum: print and exit with this code.
    Exit {
        stdout: String,
        stderr: String,
        code: u8,
    },
    /// -T as the first option: the rest is genhash's command line.
    Genhash(Vec<String>),
}

/// getopt_long as keepalived configures it: short options group (`-nlD`),
/// a required argument is attached (`-fFILE`) or follows, an optional one
/// (`-t`) only attaches. Every bad option is reported, then exit 1; -v
/// and -h act the moment they are met, as in keepalived.
fn parse(argv: &[String]) -> Parsed {
    let mut o = Opts::default();
    let mut errors = String::new();
    let mut loose: Vec<&str> = Vec::new();
    let mut i = 1;
    let mut first = true;
    while i < argv.len() {
        let a = &argv[i];
        i += 1;
        if a == "--" {
            loose.extend(argv[i..].iter().map(String::as_str));
            break;
        }
        let mut opts: Vec<(String, Option<String>)> = Vec::new();
        if let Some(long) = a.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            // getopt accepts any unambiguous prefix of a long option.
            let exact = LONG.iter().find(|(n, _)| *n == name);
            let matches: Vec<_> = LONG.iter().filter(|(n, _)| n.starts_with(name)).collect();
            let Some(&(full, short)) = exact.or((matches.len() == 1).then(|| matches[0])) else {
                errors.push_str(&format!("Unknown option {a}\n"));
                continue;
            };
            let required = SHORT_WITH_ARG.contains(short) || ["4", "8"].contains(&short);
            let value = if required && value.is_none() {
                match argv.get(i) {
                    Some(v) => {
                        i += 1;
                        Some(v.clone())
                    }
                    None => {
                        errors.push_str(&format!("Missing parameter for option --{full}\n"));
                        continue;
                    }
                }
            } else {
                value
            };
            if required && value.as_deref() == Some("") {
                errors.push_str(&format!("Missing parameter for option --{full}\n"));
                continue;
            }
            opts.push((short.to_string(), value));
        } else if let Some(group) = a.strip_prefix('-').filter(|g| !g.is_empty()) {
            let chars: Vec<char> = group.chars().collect();
            let mut k = 0;
            while k < chars.len() {
                let c = chars[k];
                k += 1;
                let rest: String = chars[k..].iter().collect();
                if SHORT_WITH_ARG.contains(c) {
                    let v = if !rest.is_empty() {
                        Some(rest)
                    } else if let Some(v) = argv.get(i) {
                        i += 1;
                        Some(v.clone())
                    } else {
                        errors.push_str(&format!("Missing parameter for option -{c}\n"));
                        break;
                    };
                    opts.push((c.to_string(), v));
                    break;
                } else if SHORT_OPTIONAL_ARG.contains(c) {
                    opts.push((c.to_string(), (!rest.is_empty()).then_some(rest)));
                    break;
                } else if SHORT_FLAGS.contains(c) {
                    opts.push((c.to_string(), None));
                } else {
                    errors.push_str(&format!("Unknown option -{c}\n"));
                }
            }
        } else {
            loose.push(a);
            continue;
        }
        for (short, value) in opts {
            match short.as_str() {
                "T" if first => return Parsed::Genhash(argv[i..].to_vec()),
                "v" => return Parsed::Exit { stdout: String::new(), stderr: errors + &version_text(), code: EXIT_OK },
                "h" => return Parsed::Exit { stdout: String::new(), stderr: errors + USAGE, code: EXIT_OK },
                "4" => {
                    let name = value.unwrap_or_default();
                    return match signum(&name) {
                        Some(n) => Parsed::Exit { stdout: format!("{n}\n"), stderr: errors, code: EXIT_OK },
                        None => Parsed::Exit {
                            stdout: String::new(),
                            stderr: errors + &format!("Unknown sigfunc {name}\n"),
                            code: EXIT_FATAL,
                        },
                    };
                }
                "S" => match value.as_deref().and_then(crate::logging::parse_facility) {
                    Some(f) => o.log_facility = f,
                    None => o.warnings.push_str(&format!("Invalid log facility '{}'\n", value.unwrap_or_default())),
                },
                _ => apply(&mut o, &short, value),
            }
            first = false;
        }
    }
    if !loose.is_empty() {
        o.unexpected = Some(format!("Unexpected argument(s): {} \n", loose.join(" ")));
    }
    if !errors.is_empty() {
        return Parsed::Exit { stdout: o.unexpected.unwrap_or_default(), stderr: errors, code: EXIT_FATAL };
    }
    Parsed::Run(o)
}

/// `--signum`: the signal keepalived answers for each function (glibc's
/// SIGRTMIN is 34, SIGRTMAX 64).
fn signum(name: &str) -> Option<i32> {
    Some(match name {
        "STOP" => libc::SIGTERM,
        "RELOAD" => libc::SIGHUP,
        "DATA" => libc::SIGUSR1,
        "STATS" => libc::SIGUSR2,
        "STATS_CLEAR" => libc::SIGRTMAX() - 1,
        "JSON" => libc::SIGRTMIN() + 2,
        _ => return None,
    })
}

fn version_text() -> String {
    format!(
        "Keepalived v2.2.7 (rlvs {})\n\nCopyright(C) 2001-2022 Alexandre Cassen, <acassen@gmail.com>\n\
         rlvs: LVS and keepalived in one program; this is its keepalived face.\n",
        env!("CARGO_PKG_VERSION")
    )
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
        "G" => o.no_syslog = true,
        // The rest change nothing rlvs does (SNMP, BFD, core dumps, which
        // child processes run) or are kept as keepalived's defaults.
        _ => {}
    }
}

/// The node name's first label, keepalived's default config id.
fn node_name() -> Option<String> {
    // SAFETY: a plain C struct, for which all-zero bytes are a valid value.
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
        Parsed::Run(o) => o,
        Parsed::Genhash(rest) => {
            let mut v = vec!["genhash".to_string()];
            v.extend(rest);
            return crate::genhash::main(v);
        }
        Parsed::Exit { stdout, stderr, code } => {
            print!("{stdout}");
            eprint!("{stderr}");
            return ExitCode::from(code);
        }
    };
    eprint!("{}", o.warnings);
    if let Some(u) = &o.unexpected {
        print!("{u}");
    }
    let config = o.config.clone().unwrap_or_else(|| PathBuf::from("/etc/keepalived/keepalived.conf"));
    let config_id = o.config_id.clone().or_else(node_name);
    if o.config_test {
        return config_test(&config, config_id);
    }
    let _ = crate::logging::init(crate::logging::Options {
        filter: if o.log_detail { "debug" } else { "info" },
        console: o.log_console,
        keepalived_style: true,
        syslog: (!o.no_syslog).then_some(o.log_facility),
    });
    tracing::info!("Starting Keepalived v2.2.7 (rlvs {})", env!("CARGO_PKG_VERSION"));
    if let Some(k) = kernel_release() {
        tracing::info!("Running on {k}");
    }
    tracing::info!("Command line: {}", argv.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(" "));
    if !config.exists() {
        tracing::info!("Config files missing '{}'.", config.display());
        tracing::info!("Stopped Keepalived v2.2.7 (rlvs {})", env!("CARGO_PKG_VERSION"));
        return ExitCode::from(EXIT_NO_CONFIG);
    }
    tracing::info!("Configuration file {}", config.display());
    if !o.check_only {
        if let Some(lines) = vrrp_refuses(&config, config_id.clone()) {
            for l in lines {
                tracing::error!("{l}");
            }
            tracing::info!("Stopped Keepalived v2.2.7 (rlvs {})", env!("CARGO_PKG_VERSION"));
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    if !o.dont_fork {
        // SAFETY: daemon(3) forks before any thread exists here (logging
        // spawns none; the syslog socket is opened per line).
        if unsafe { libc::daemon(0, 0) } != 0 {
            tracing::error!("cannot fork: {}", std::io::Error::last_os_error());
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
        tracing::info!("daemon is already running (pid {running})");
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
        // keepalived has no such option: the face takes it from the environment.
        metrics: std::env::var("RLVS_METRICS").ok().and_then(|v| v.parse().ok()),
        vrrp_only: o.vrrp_only,
        check_only: o.check_only,
        defence: crate::defence::DefenceArgs::from_env(),
        scale_out: std::env::var_os("RLVS_SCALE_OUT").map(Into::into),
    };
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
            let code = if e.is::<daemon::ConfigRefused>() { EXIT_CONFIG } else { EXIT_FATAL };
            tracing::info!("Stopped Keepalived v2.2.7 (rlvs {})", env!("CARGO_PKG_VERSION"));
            ExitCode::from(code)
        }
    }
}

/// `uname -srv`, as keepalived's "Running on" line gives it.
fn kernel_release() -> Option<String> {
    // SAFETY: a plain C struct, for which all-zero bytes are a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct; its fields are NUL-terminated.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let f = |p: &[libc::c_char]| unsafe { std::ffi::CStr::from_ptr(p.as_ptr()) }.to_string_lossy().into_owned();
    Some(format!("{} {} {}", f(&u.sysname), f(&u.release), f(&u.version)))
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
            return ExitCode::from(EXIT_TEST_CONFIG);
        }
    };
    for d in &loaded.diags {
        eprintln!("{d}");
    }
    let host = crate::verdict::check(&loaded.config);
    for l in &host.lines {
        eprintln!("{l}");
    }
    // keepalived exits 6 for a security violation, 5 for whatever else it
    // reported, 4 only for a missing file (above) or a fatal error; notes
    // are rlvs's own, or keepalived's log lines, and count not.
    match loaded.worst() {
        _ if host.security => ExitCode::from(EXIT_TEST_SECURITY),
        Some(Severity::Error | Severity::Warning) => ExitCode::from(EXIT_TEST_FAILED),
        _ if host.errors => ExitCode::from(EXIT_TEST_FAILED),
        _ => ExitCode::from(EXIT_OK),
    }
}

use rlvs_conf::Severity;

/// What stops keepalived 2.2.7's VRRP process at start, and with it
/// keepalived (exit 2): an instance its vrrp_complete_instance rejects,
/// or an interface that does not exist. None when VRRP can run.
fn vrrp_refuses(path: &std::path::Path, config_id: Option<String>) -> Option<Vec<String>> {
    let loaded = rlvs_conf::load_file(path, rlvs_conf::Options { config_id }).ok()?;
    // With dynamic_interfaces, keepalived waits for missing ones instead.
    let host = crate::verdict::check(&loaded.config);
    let missing = host.missing_interface && !loaded.config.global.dynamic_interfaces;
    if loaded.dropped_instances.is_empty() && !missing {
        return None;
    }
    let mut lines: Vec<String> = loaded.diags.iter().map(|d| d.to_string()).collect();
    if missing {
        lines.extend(host.lines.iter().filter(|l| l.contains("interface")).cloned());
    }
    lines.push(
        "VRRP: configuration error that keepalived stops on - exiting with status 2 (KEEPALIVED_EXIT_CONFIG)".into(),
    );
    Some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Parsed {
        let mut v = vec!["keepalived".to_string()];
        v.extend(args.iter().map(|s| s.to_string()));
        parse(&v)
    }

    fn run(args: &[&str]) -> Opts {
        match p(args) {
            Parsed::Run(o) => o,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn exit(args: &[&str]) -> (String, String, u8) {
        match p(args) {
            Parsed::Exit { stdout, stderr, code } => (stdout, stderr, code),
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn keepalived_command_lines() {
        let o = run(&["-nlD", "-f", "/etc/k.conf", "-p/run/a.pid", "--vrrp_pid=/run/b.pid", "-i", "c2"]);
        assert!(o.dont_fork && o.log_console && o.log_detail);
        assert_eq!(o.config.as_deref(), Some(std::path::Path::new("/etc/k.conf")));
        assert_eq!(o.pid.as_deref(), Some(std::path::Path::new("/run/a.pid")));
        assert_eq!(o.vrrp_pid.as_deref(), Some(std::path::Path::new("/run/b.pid")));
        assert_eq!(o.config_id.as_deref(), Some("c2"));
        let o = run(&["--use-file", "/x", "--dont-fork", "--log-console", "-t", "-P", "-G"]);
        assert!(o.config_test && o.vrrp_only && o.dont_fork && o.no_syslog);
        // Long options by unambiguous prefix, as getopt_long takes them.
        assert!(run(&["--dont-f"]).dont_fork);
    }

    /// Messages and codes as keepalived 2.2.7 gives them (lab capture,
    /// /work/benchout/lab14/facts.out; the lab test replays them).
    #[test]
    fn bad_options_exit_1_with_keepalived_messages() {
        assert_eq!(exit(&["--bogus"]), (String::new(), "Unknown option --bogus\n".into(), 1));
        assert_eq!(exit(&["-q"]), (String::new(), "Unknown option -q\n".into(), 1));
        assert_eq!(exit(&["-f"]), (String::new(), "Missing parameter for option -f\n".into(), 1));
        assert_eq!(exit(&["--use-file="]).1, "Missing parameter for option --use-file\n");
        assert_eq!(exit(&["-q", "-n", "--zz"]).1, "Unknown option -q\nUnknown option --zz\n");
        assert_eq!(exit(&["--signum=DATA"]), ("10\n".into(), String::new(), 0));
        assert_eq!(exit(&["--signum", "JSON"]).0, "36\n");
        assert_eq!(exit(&["--signum=STATS_CLEAR"]).0, "63\n");
        assert_eq!(exit(&["--signum=RELOAD"]).0, "1\n");
        assert_eq!(exit(&["--signum=bogus"]), (String::new(), "Unknown sigfunc bogus\n".into(), 1));
        assert_eq!(exit(&["-h"]).2, 0);
        assert!(exit(&["-v"]).1.starts_with("Keepalived v2.2.7"));
    }

    #[test]
    fn log_facility_as_keepalived_reads_it() {
        assert_eq!(run(&["-S", "3"]).log_facility, 19);
        assert_eq!(run(&["--log-facility=local7"]).log_facility, 23);
        assert_eq!(run(&["-Suser"]).log_facility, 1);
        assert_eq!(run(&[]).log_facility, 3);
        // A bad facility is reported and ignored, not fatal.
        let o = run(&["-S", "9"]);
        assert_eq!((o.log_facility, o.warnings.as_str()), (3, "Invalid log facility '9'\n"));
        assert_eq!(run(&["-n", "extra"]).unexpected.as_deref(), Some("Unexpected argument(s): extra \n"));
        assert_eq!(p(&["-T", "-s", "1.2.3.4"]), Parsed::Genhash(vec!["-s".into(), "1.2.3.4".into()]));
    }
}
