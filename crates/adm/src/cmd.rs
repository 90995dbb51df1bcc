//! process_options and parse_options of ipvsadm.c: the same checks in the
//! same order, so the same mistakes get the same message and exit code.

use crate::format::{self, *};
use crate::popt::{Parser, Tag};
use crate::resolve::{self, string_to_number};
use crate::{Backend, BackendError, Outcome};
use rlvs_ctl::{Request, Response};
use rlvs_lvs::director::TimeoutTriple;
use rlvs_lvs::types::svc_flags;
use rlvs_lvs::{DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey};
use std::net::{IpAddr, Ipv4Addr};

const VERSION: &str = "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)";
const USAGE: &str = include_str!("usage.txt");
const MAX_TIMEOUT: i64 = 86400 * 31;
const DEF_SCHED: &str = "wlc";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    None = 0,
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Timeout,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
}

const CMDNAMES: [&str; 14] = [
    "add-service",
    "edit-service",
    "delete-service",
    "flush",
    "list",
    "add-server",
    "delete-server",
    "edit-server",
    "set",
    "start-daemon",
    "stop-daemon",
    "restore",
    "save",
    "zero",
];

// Option bits (OPTC_*), in the order of the table below.
const NUMERIC: usize = 0;
const CONNECTION: usize = 1;
const SERVICE: usize = 2;
const SCHEDULER: usize = 3;
const PERSISTENT: usize = 4;
const NETMASK: usize = 5;
const SERVER: usize = 6;
const FORWARD: usize = 7;
const WEIGHT: usize = 8;
const UTHRESHOLD: usize = 9;
const LTHRESHOLD: usize = 10;
const MCAST: usize = 11;
const TIMEOUT: usize = 12;
const DAEMON: usize = 13;
const STATS: usize = 14;
const RATE: usize = 15;
const THRESHOLDS: usize = 16;
const PERSISTENTCONN: usize = 17;
const NOSORT: usize = 18;
const SYNCID: usize = 19;
const EXACT: usize = 20;
const ONEPACKET: usize = 21;
const PE: usize = 22;
const SCHED_FLAGS: usize = 23;
const MCAST_GROUP: usize = 24;
const MCAST_PORT: usize = 25;
const MCAST_TTL: usize = 26;
const SYNC_MAXLEN: usize = 27;
const TUN_INFO: usize = 28;
const TUN_TYPE: usize = 29;
const TUN_PORT: usize = 30;
const TUN_NOCSUM: usize = 31;
const TUN_CSUM: usize = 32;
const TUN_REMCSUM: usize = 33;

const OPTNAMES: [&str; 34] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

/// Legal combinations of commands (rows, in Cmd order) and options (columns,
/// in OPTNAMES order): '+' compulsory, 'x' illegal, '1' exclusive, ' ' optional.
const COMMANDS_V_OPTIONS: [&[u8; 34]; 14] = [
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx",
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx",
    b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    b" 11xxxxxxxxx11       xxxxxxx xxxxx",
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ",
    b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx",
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ",
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    b"xxxxxxxxxxx xxxxxxx xxxx    xxxxxx",
    b"xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx",
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    b" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    b"xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
];

const TUNNAMES: [&str; 3] = ["ipip", "gue", "gre"];
/// Per tunnel type, the options tun-port, tun-nocsum, tun-csum, tun-remcsum.
const TUNNEL_TYPES_V_OPTIONS: [&[u8; 4]; 3] = [b"xxxx", b"+111", b"x111"];
const TUNOPTS: [usize; 4] = [TUN_PORT, TUN_NOCSUM, TUN_CSUM, TUN_REMCSUM];

/// ipvsadm exits at once on many errors; this carries the exit code up.
struct Exit(i32);

struct Ctx<'a> {
    out: String,
    err: String,
    backend: &'a mut dyn Backend,
    program: String,
}

impl Ctx<'_> {
    fn fail(&mut self, code: i32, msg: impl AsRef<str>) -> Exit {
        self.err.push_str(msg.as_ref());
        self.err.push('\n');
        Exit(code)
    }

    fn tryhelp(&mut self) -> Exit {
        let p = self.program.clone();
        self.fail(
            255,
            format!("Try `{p} -h' or '{p} --help' for more information."),
        )
    }

    /// A request to the daemon; on a refused operation returns the errno.
    fn call(&mut self, req: Request) -> Result<Result<Response, i32>, Exit> {
        match self.backend.call(req) {
            Ok(Response::Error(e)) => Ok(Err(e.errno())),
            Ok(r) => Ok(Ok(r)),
            Err(BackendError::NotRunning) => Err(self.fail(
                2,
                "ipvsadm: no rlvs daemon is running in this network namespace; start one with `rlvs daemon` (as root)",
            )),
            Err(BackendError::Io(e)) => Err(self.fail(2, format!("ipvsadm: talking to the rlvs daemon failed: {e}"))),
        }
    }
}

#[derive(Clone)]
struct Svc {
    protocol: u8,
    addr: Option<IpAddr>,
    port: u16,
    fwmark: u32,
    v6_fwmark: bool,
    sched_name: String,
    flags: u32,
    timeout: u32,
    netmask: u32,
    pe_name: String,
}

#[derive(Clone)]
struct Dest {
    addr: Option<IpAddr>,
    port: u16,
    fwd: FwdMethod,
    weight: i64,
    u_threshold: i64,
    l_threshold: i64,
    tun_type: u8,
    tun_port: u16,
    tun_flags: u16,
}

struct Entry {
    cmd: Cmd,
    svc: Svc,
    dest: Dest,
    timeout: TimeoutTriple,
}

pub(crate) fn run(argv: &[String], backend: &mut dyn Backend) -> Outcome {
    let program = argv.first().cloned().unwrap_or_else(|| "ipvsadm".into());
    let mut ctx = Ctx {
        out: String::new(),
        err: String::new(),
        backend,
        program,
    };
    let code = if argv.len() <= 1 {
        list_all(&mut ctx, 0).map(|_| 0)
    } else {
        process_options(&mut ctx, &argv[1..])
    };
    let code = code.unwrap_or_else(|Exit(c)| c);
    Outcome {
        stdout: ctx.out,
        stderr: ctx.err,
        code,
    }
}

fn set_option(ctx: &mut Ctx, options: &mut u64, optc: usize) -> Result<(), Exit> {
    if *options & (1 << optc) != 0 {
        return Err(ctx.fail(
            2,
            format!("multiple '{}' options specified", OPTNAMES[optc]),
        ));
    }
    *options |= 1 << optc;
    Ok(())
}

const SERVICE_ADDR: u8 = 1;
const SERVICE_PORT: u8 = 2;

/// parse_service: SERVICE_ADDR | SERVICE_PORT bits, 0 on failure.
fn parse_service(buf: &str, svc: &mut Svc) -> u8 {
    if buf.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    let (host, port) = if let Some(inner) = buf.strip_prefix('[') {
        let Some((h, rest)) = inner.split_once(']') else {
            return 0;
        };
        let Some(p) = rest.strip_prefix(':') else {
            return 0;
        };
        (h.to_string(), Some(p.to_string()))
    } else {
        (buf.to_string(), None)
    };
    let mut portp = port;
    if let Some(a6) = resolve::inet_pton6(&host) {
        svc.addr = Some(IpAddr::V6(a6));
        svc.netmask = 128;
    } else {
        let mut h = host.as_str();
        if portp.is_none() {
            if let Some((a, p)) = host.rsplit_once(':') {
                h = a;
                portp = Some(p.to_string());
            }
        }
        match resolve::inet_aton(h).or_else(|| resolve::host_to_addr(h)) {
            Some(a) => svc.addr = Some(IpAddr::V4(a)),
            None => return 0,
        }
    }
    let mut result = SERVICE_ADDR;
    if let Some(p) = portp {
        result |= SERVICE_PORT;
        match string_to_number(&p, 0, 65535) {
            Some(n) => svc.port = n as u16,
            None => match resolve::service_to_port(&p, svc.protocol) {
                Some(n) => svc.port = n,
                None => return 0,
            },
        }
    }
    result
}

fn parse_timeout(ctx: &mut Ctx, buf: Option<&str>, min: i64, max: i64) -> Result<u32, Exit> {
    let Some(buf) = buf else { return Ok(300) };
    string_to_number(buf, min, max)
        .map(|v| v as u32)
        .ok_or_else(|| ctx.fail(2, format!("invalid timeout value `{buf}' specified")))
}

fn parse_sched_flags(ctx: &mut Ctx, sched: &str, arg: &str) -> Result<u32, Exit> {
    let sched = if sched.is_empty() { DEF_SCHED } else { sched };
    let mut flags = 0;
    for flag in arg.split(',').filter(|f| !f.is_empty()) {
        let (bit, needs) = match flag {
            "flag-1" => (svc_flags::SCHED1, None),
            "flag-2" => (svc_flags::SCHED2, None),
            "flag-3" => (svc_flags::SCHED3, None),
            "sh-fallback" => (svc_flags::SCHED1, Some("sh")),
            "sh-port" => (svc_flags::SCHED2, Some("sh")),
            "mh-fallback" => (svc_flags::SCHED1, Some("mh")),
            "mh-port" => (svc_flags::SCHED2, Some("mh")),
            _ => return Err(ctx.fail(2, format!("invalid scheduler flag `{flag}'"))),
        };
        flags |= bit;
        if needs.is_some_and(|n| n != sched) {
            return Err(ctx.fail(2, format!("incompatible scheduler flag `{flag}'")));
        }
    }
    Ok(flags)
}

fn usage(ctx: &mut Ctx) {
    ctx.out.push_str(VERSION);
    ctx.out.push('\n');
    ctx.out.push_str(&USAGE.replace("{prog}", &ctx.program));
}

fn parse_options(
    ctx: &mut Ctx,
    args: &[String],
    ce: &mut Entry,
    options: &mut u64,
    format: &mut u32,
) -> Result<(), Exit> {
    let mut p = Parser::new(args);
    let mut sched_flags_arg: Option<String> = None;
    let first = match p.next() {
        Some(Ok((tag, arg))) => (tag, arg),
        _ => return Err(ctx.tryhelp()),
    };
    ce.cmd = match first.0 {
        Tag::Add => Cmd::Add,
        Tag::Edit => Cmd::Edit,
        Tag::Delete => Cmd::Del,
        Tag::AddServer => Cmd::AddDest,
        Tag::EditServer => Cmd::EditDest,
        Tag::DeleteServer => Cmd::DelDest,
        Tag::Clear => Cmd::Flush,
        Tag::ListUpper | Tag::ListLower => Cmd::List,
        Tag::Zero => Cmd::Zero,
        Tag::Set => Cmd::Timeout,
        Tag::Restore => Cmd::Restore,
        Tag::Save => Cmd::Save,
        Tag::StartDaemon | Tag::StopDaemon => {
            let a = first.1.unwrap_or_default();
            if a != "master" && a != "backup" {
                let m = if first.0 == Tag::StartDaemon {
                    "illegal start-daemon parameter specified"
                } else {
                    "illegal start_daemon specified"
                };
                return Err(ctx.fail(2, m));
            }
            if first.0 == Tag::StartDaemon {
                Cmd::StartDaemon
            } else {
                Cmd::StopDaemon
            }
        }
        Tag::Help => {
            usage(ctx);
            return Err(Exit(0));
        }
        Tag::Version => {
            ctx.out.push_str(VERSION);
            ctx.out.push('\n');
            return Err(Exit(0));
        }
        _ => return Err(ctx.tryhelp()),
    };

    while let Some(r) = p.next() {
        let (tag, arg) = match r {
            Ok(x) => x,
            Err(e) => {
                ctx.err.push_str(&e.message());
                ctx.err.push('\n');
                return Err(Exit(255));
            }
        };
        let a = arg.clone().unwrap_or_default();
        match tag {
            Tag::Tcp | Tag::Udp | Tag::Sctp => {
                set_option(ctx, options, SERVICE)?;
                ce.svc.protocol = match tag {
                    Tag::Tcp => 6,
                    Tag::Udp => 17,
                    _ => 132,
                };
                if parse_service(&a, &mut ce.svc) & SERVICE_ADDR == 0 {
                    return Err(ctx.fail(2, "illegal virtual server address[:port] specified"));
                }
            }
            Tag::Fwmark => {
                set_option(ctx, options, SERVICE)?;
                ce.svc.protocol = 6;
                match string_to_number(&a, 1, i64::from(u32::MAX)) {
                    Some(m) if !a.starts_with(['-', '+', ' ']) => ce.svc.fwmark = m as u32,
                    _ => return Err(ctx.fail(2, format!("invalid fwmark value `{a}' specified"))),
                }
            }
            Tag::Scheduler => {
                set_option(ctx, options, SCHEDULER)?;
                ce.svc.sched_name = a.chars().take(15).collect();
            }
            Tag::Persistent => {
                set_option(ctx, options, PERSISTENT)?;
                ce.svc.flags |= svc_flags::PERSISTENT;
                ce.svc.timeout = parse_timeout(ctx, arg.as_deref(), 1, MAX_TIMEOUT)?;
            }
            Tag::Netmask => {
                set_option(ctx, options, NETMASK)?;
                if !ce.svc.addr.is_some_and(|x| x.is_ipv6()) && !ce.svc.v6_fwmark {
                    match resolve::inet_aton(&a).or_else(|| resolve::host_to_addr(&a)) {
                        Some(m) => ce.svc.netmask = u32::from(m),
                        None => {
                            return Err(
                                ctx.fail(2, "illegal virtual server persistent mask specified")
                            )
                        }
                    }
                } else {
                    let m: i64 = a.trim().parse().unwrap_or(0);
                    if !(1..=128).contains(&m) {
                        return Err(ctx.fail(2, "illegal ipv6 netmask specified"));
                    }
                    ce.svc.netmask = m as u32;
                }
            }
            Tag::RealServer => {
                set_option(ctx, options, SERVER)?;
                let mut t = ce.svc.clone();
                let parse = parse_service(&a, &mut t);
                ce.dest.addr = t.addr;
                ce.dest.port = t.port;
                if parse & SERVICE_ADDR == 0 {
                    return Err(ctx.fail(2, "illegal real server address[:port] specified"));
                }
                if parse == SERVICE_ADDR {
                    ce.dest.port = ce.svc.port;
                }
            }
            Tag::Ipip | Tag::Gatewaying | Tag::Masq => {
                set_option(ctx, options, FORWARD)?;
                ce.dest.fwd = match tag {
                    Tag::Ipip => FwdMethod::Tunnel,
                    Tag::Gatewaying => FwdMethod::DirectRoute,
                    _ => FwdMethod::Masq,
                };
            }
            Tag::Weight => {
                set_option(ctx, options, WEIGHT)?;
                ce.dest.weight = string_to_number(&a, 0, i64::from(i32::MAX))
                    .ok_or_else(|| ctx.fail(2, "illegal weight specified"))?;
            }
            Tag::UThreshold => {
                set_option(ctx, options, UTHRESHOLD)?;
                ce.dest.u_threshold = string_to_number(&a, 0, i64::from(i32::MAX))
                    .ok_or_else(|| ctx.fail(2, "illegal u_threshold specified"))?;
            }
            Tag::LThreshold => {
                set_option(ctx, options, LTHRESHOLD)?;
                ce.dest.l_threshold = string_to_number(&a, 0, i64::from(i32::MAX))
                    .ok_or_else(|| ctx.fail(2, "illegal l_threshold specified"))?;
            }
            Tag::Connection => set_option(ctx, options, CONNECTION)?,
            Tag::Numeric => {
                set_option(ctx, options, NUMERIC)?;
                *format |= FMT_NUMERIC;
            }
            Tag::McastInterface => set_option(ctx, options, MCAST)?,
            Tag::SyncId => {
                set_option(ctx, options, SYNCID)?;
                string_to_number(&a, 0, 255)
                    .ok_or_else(|| ctx.fail(2, "illegal syncid specified"))?;
            }
            Tag::Timeout => set_option(ctx, options, TIMEOUT)?,
            Tag::Daemon => set_option(ctx, options, DAEMON)?,
            Tag::Stats => {
                set_option(ctx, options, STATS)?;
                *format |= FMT_STATS;
            }
            Tag::Rate => {
                set_option(ctx, options, RATE)?;
                *format |= FMT_RATE;
            }
            Tag::Thresholds => {
                set_option(ctx, options, THRESHOLDS)?;
                *format |= FMT_THRESHOLDS;
            }
            Tag::PersistentConn => {
                set_option(ctx, options, PERSISTENTCONN)?;
                *format |= FMT_PERSISTENTCONN;
            }
            Tag::NoSort => {
                set_option(ctx, options, NOSORT)?;
                *format |= FMT_NOSORT;
            }
            Tag::Sort => {}
            Tag::Exact => {
                set_option(ctx, options, EXACT)?;
                *format |= FMT_EXACT;
            }
            Tag::Ipv6 => {
                if ce.svc.fwmark != 0 {
                    ce.svc.v6_fwmark = true;
                    ce.svc.netmask = 128;
                } else {
                    return Err(ctx.fail(2, "-6 used before -f\n"));
                }
            }
            Tag::Ops => {
                set_option(ctx, options, ONEPACKET)?;
                ce.svc.flags |= svc_flags::ONEPACKET;
            }
            Tag::Pe => {
                set_option(ctx, options, PE)?;
                ce.svc.pe_name = a;
            }
            Tag::SchedFlags => {
                set_option(ctx, options, SCHED_FLAGS)?;
                sched_flags_arg = Some(a.chars().take(127).collect());
            }
            Tag::McastGroup => {
                set_option(ctx, options, MCAST_GROUP)?;
                let ok = if a.contains(':') {
                    resolve::inet_pton6(&a).is_some_and(|x| x.is_multicast())
                } else {
                    a.parse::<Ipv4Addr>().is_ok_and(|x| x.is_multicast())
                };
                if !ok {
                    let fam = if a.contains(':') { "IPv6" } else { "IPv4" };
                    return Err(ctx.fail(2, format!("invalid {fam} mcast-group `{a}'")));
                }
            }
            Tag::McastPort => {
                set_option(ctx, options, MCAST_PORT)?;
                string_to_number(&a, 1, 65535)
                    .ok_or_else(|| ctx.fail(2, "illegal mcast-port specified"))?;
            }
            Tag::McastTtl => {
                set_option(ctx, options, MCAST_TTL)?;
                string_to_number(&a, 1, 255)
                    .ok_or_else(|| ctx.fail(2, "illegal mcast-ttl specified"))?;
            }
            Tag::SyncMaxlen => {
                set_option(ctx, options, SYNC_MAXLEN)?;
                string_to_number(&a, 1, 65535 - 20 - 8)
                    .ok_or_else(|| ctx.fail(2, "illegal sync-maxlen specified"))?;
            }
            Tag::TunInfo => {
                set_option(ctx, options, TUN_INFO)?;
                *format |= FMT_TUN_INFO;
            }
            Tag::TunType => {
                set_option(ctx, options, TUN_TYPE)?;
                ce.dest.tun_type = TUNNAMES
                    .iter()
                    .position(|&n| n == a)
                    .ok_or_else(|| ctx.fail(2, "illegal tunnel type specified"))?
                    as u8;
            }
            Tag::TunPort => {
                set_option(ctx, options, TUN_PORT)?;
                ce.dest.tun_port = string_to_number(&a, 1, 65535)
                    .ok_or_else(|| ctx.fail(2, "illegal tunnel port specified"))?
                    as u16;
            }
            Tag::TunNocsum => {
                set_option(ctx, options, TUN_NOCSUM)?;
                ce.dest.tun_flags = 0;
            }
            Tag::TunCsum => {
                set_option(ctx, options, TUN_CSUM)?;
                ce.dest.tun_flags = 1;
            }
            Tag::TunRemcsum => {
                set_option(ctx, options, TUN_REMCSUM)?;
                ce.dest.tun_flags = 2;
            }
            _ => {
                let w = p.bad_word();
                return Err(ctx.fail(2, format!("invalid option `{w}'")));
            }
        }
    }

    let mut positional = std::mem::take(&mut p.leftovers).into_iter();
    if ce.cmd == Cmd::Timeout {
        match (positional.next(), positional.next(), positional.next()) {
            (Some(a), Some(b), Some(c)) => {
                ce.timeout = TimeoutTriple {
                    tcp: parse_timeout(ctx, Some(&a), 0, MAX_TIMEOUT)?,
                    tcp_fin: parse_timeout(ctx, Some(&b), 0, MAX_TIMEOUT)?,
                    udp: parse_timeout(ctx, Some(&c), 0, MAX_TIMEOUT)?,
                };
            }
            _ => return Err(ctx.fail(2, "--set option requires 3 timeout values")),
        }
    }
    if let Some(extra) = positional.next() {
        return Err(ctx.fail(2, format!("unexpected argument {extra}")));
    }
    if let Some(arg) = sched_flags_arg {
        ce.svc.flags &= !(svc_flags::SCHED1 | svc_flags::SCHED2 | svc_flags::SCHED3);
        ce.svc.flags |= parse_sched_flags(ctx, &ce.svc.sched_name, &arg)?;
    }
    Ok(())
}

fn generic_opt_check(ctx: &mut Ctx, cmd: Cmd, options: u64) -> Result<(), Exit> {
    let i = cmd as usize - 1;
    let row = COMMANDS_V_OPTIONS[i];
    let mut last = None;
    for j in 0..OPTNAMES.len() {
        let set = options & (1 << j) != 0;
        match (set, row[j]) {
            (false, b'+') => {
                return Err(ctx.fail(
                    2,
                    format!(
                        "You need to supply the '{}' option for the '{}' command",
                        OPTNAMES[j], CMDNAMES[i]
                    ),
                ))
            }
            (true, b'x') => {
                return Err(ctx.fail(
                    2,
                    format!(
                        "Illegal '{}' option with the '{}' command",
                        OPTNAMES[j], CMDNAMES[i]
                    ),
                ))
            }
            (true, b'1') => match last {
                None => last = Some(j),
                Some(l) => {
                    return Err(ctx.fail(
                        2,
                        format!(
                            "The option '{}' conflicts with the '{}' option in the '{}' command",
                            OPTNAMES[j], OPTNAMES[l], CMDNAMES[i]
                        ),
                    ))
                }
            },
            _ => {}
        }
    }
    Ok(())
}

fn tunnel_opt_check(ctx: &mut Ctx, tun_type: u8, options: u64) -> Result<(), Exit> {
    let row = TUNNEL_TYPES_V_OPTIONS[tun_type as usize];
    let mut last = None;
    for (j, &k) in TUNOPTS.iter().enumerate() {
        let set = options & (1 << k) != 0;
        let tn = TUNNAMES[tun_type as usize];
        match (set, row[j]) {
            (false, b'+') => {
                return Err(ctx.fail(
                    2,
                    format!(
                        "You need to supply the '{}' option for the '{tn}' tunnel type",
                        OPTNAMES[k]
                    ),
                ))
            }
            (true, b'x') => {
                return Err(ctx.fail(
                    2,
                    format!(
                        "Illegal '{}' option with the '{tn}' tunnel type",
                        OPTNAMES[k]
                    ),
                ))
            }
            (true, b'1') => match last {
                None => last = Some(k),
                Some(l) => {
                    return Err(ctx.fail(
                        2,
                        format!(
                        "The option '{}' conflicts with the '{}' option in the '{tn}' tunnel type",
                        OPTNAMES[k], OPTNAMES[l]
                    ),
                    ))
                }
            },
            _ => {}
        }
    }
    Ok(())
}

fn process_options(ctx: &mut Ctx, args: &[String]) -> Result<i32, Exit> {
    let mut ce = Entry {
        cmd: Cmd::None,
        svc: Svc {
            protocol: 0,
            addr: None,
            port: 0,
            fwmark: 0,
            v6_fwmark: false,
            sched_name: String::new(),
            flags: 0,
            timeout: 0,
            netmask: 0xffff_ffff,
            pe_name: String::new(),
        },
        dest: Dest {
            addr: None,
            port: 0,
            fwd: FwdMethod::DirectRoute,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: 0,
            tun_port: 0,
            tun_flags: 0,
        },
        timeout: TimeoutTriple {
            tcp: 0,
            tcp_fin: 0,
            udp: 0,
        },
    };
    let mut options = 0u64;
    let mut format = 0u32;
    parse_options(ctx, args, &mut ce, &mut options, &mut format)?;
    generic_opt_check(ctx, ce.cmd, options)?;

    if matches!(ce.cmd, Cmd::Add | Cmd::Edit) {
        if ce.svc.fwmark == 0 && ce.svc.port == 0 && ce.svc.flags & svc_flags::PERSISTENT == 0 {
            return Err(ctx.fail(2, "Zero port specified for non-persistent service"));
        }
        if ce.svc.flags & svc_flags::ONEPACKET != 0 && ce.svc.fwmark == 0 && ce.svc.protocol != 17 {
            return Err(ctx.fail(2, "One-Packet Scheduling is only for UDP virtual services"));
        }
        if ce.svc.sched_name.is_empty() {
            ce.svc.sched_name = DEF_SCHED.into();
        }
    }
    if matches!(ce.cmd, Cmd::AddDest | Cmd::EditDest) {
        let fwd = ce.dest.fwd;
        if ce.svc.fwmark == 0 && matches!(fwd, FwdMethod::Tunnel | FwdMethod::DirectRoute) {
            ce.dest.port = ce.svc.port;
        }
        let v6 = |a: Option<IpAddr>| a.is_some_and(|x| x.is_ipv6());
        let svc_v6 = if ce.svc.fwmark != 0 {
            ce.svc.v6_fwmark
        } else {
            v6(ce.svc.addr)
        };
        if v6(ce.dest.addr) != svc_v6 && fwd != FwdMethod::Tunnel {
            return Err(ctx.fail(
                2,
                "Different address family is allowed only for tunneling servers",
            ));
        }
        let tun = (1 << TUN_TYPE)
            | (1 << TUN_PORT)
            | (1 << TUN_NOCSUM)
            | (1 << TUN_CSUM)
            | (1 << TUN_REMCSUM);
        if options & tun != 0 && fwd != FwdMethod::Tunnel {
            return Err(ctx.fail(2, "Tunnel options conflict with forward method"));
        }
        tunnel_opt_check(ctx, ce.dest.tun_type, options)?;
    }

    let key = service_key(&ce.svc);
    let req = match ce.cmd {
        Cmd::List => {
            let opt = |b: usize| options & (1 << b) != 0;
            if ((opt(CONNECTION) || opt(TIMEOUT) || opt(DAEMON))
                && (opt(STATS) || opt(RATE) || opt(THRESHOLDS)))
                || ((opt(TIMEOUT) || opt(DAEMON)) && opt(PERSISTENTCONN))
            {
                return Err(ctx.fail(2, "options conflicts in the list command"));
            }
            if opt(CONNECTION) {
                list_conn(ctx, format)?;
            } else if opt(SERVICE) {
                list_service(ctx, &key, format)?;
            } else if opt(TIMEOUT) {
                list_timeout(ctx)?;
            } else if opt(DAEMON) {
                // No sync daemon runs in rlvs: ipvsadm prints nothing then.
            } else {
                list_all(ctx, format)?;
            }
            return Ok(0);
        }
        Cmd::Save => {
            list_all(ctx, format | FMT_RULE)?;
            return Ok(0);
        }
        Cmd::Restore => {
            return Err(ctx.fail(255, "ipvsadm: -R (restore) is not supported by rlvs yet; replay the saved commands one by one"));
        }
        Cmd::StartDaemon | Cmd::StopDaemon => {
            return Err(ctx.fail(
                255,
                "ipvsadm: the connection sync daemon is not supported by rlvs",
            ));
        }
        Cmd::Flush => Request::Flush,
        Cmd::Add => Request::AddService {
            key,
            config: service_config(&ce.svc),
        },
        Cmd::Edit => Request::EditService {
            key,
            config: service_config(&ce.svc),
        },
        Cmd::Del => Request::DelService { key },
        Cmd::Zero => Request::Zero {
            service: (options & (1 << SERVICE) != 0).then_some(key),
        },
        Cmd::AddDest => Request::AddDest {
            service: key,
            dest: dest_config(&ce.dest),
        },
        Cmd::EditDest => Request::EditDest {
            service: key,
            dest: dest_config(&ce.dest),
        },
        Cmd::DelDest => Request::DelDest {
            service: key,
            addr: ce.dest.addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            port: ce.dest.port,
        },
        Cmd::Timeout => Request::SetTimeouts(ce.timeout),
        Cmd::None => return Err(ctx.tryhelp()),
    };
    if ce.svc.fwmark != 0 {
        return Err(ctx.fail(
            255,
            "ipvsadm: fwmark services (-f) need the kernel IPVS backend; rlvs's userspace engine matches on address and port",
        ));
    }
    let op = ce.cmd;
    match ctx.call(req)? {
        Ok(_) => Ok(0),
        Err(errno) => {
            let m = strerror(op, errno);
            Err(ctx.fail(255, m))
        }
    }
}

fn service_key(s: &Svc) -> ServiceKey {
    let protocol = match s.protocol {
        17 => Protocol::Udp,
        132 => Protocol::Sctp,
        _ => Protocol::Tcp,
    };
    ServiceKey {
        protocol,
        addr: s.addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        port: s.port,
        fwmark: s.fwmark,
    }
}

fn service_config(s: &Svc) -> ServiceConfig {
    ServiceConfig {
        scheduler: s.sched_name.clone(),
        flags: s.flags,
        timeout: s.timeout,
        netmask: s.netmask,
        pe_name: s.pe_name.clone(),
    }
}

fn dest_config(d: &Dest) -> DestConfig {
    DestConfig {
        addr: d.addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        port: d.port,
        fwd: d.fwd,
        weight: d.weight as i32,
        u_threshold: d.u_threshold as u32,
        l_threshold: d.l_threshold as u32,
        tun_type: d.tun_type,
        tun_port: d.tun_port,
        tun_flags: d.tun_flags,
    }
}

/// libipvs's ipvs_strerror for ipvsadm 1.31: per-operation messages, then
/// generic ones, then the C library's.
fn strerror(op: Cmd, errno: i32) -> String {
    use Cmd::*;
    let specific = match (op, errno) {
        (Add, 17) => Some("Service already exists"),
        (Add | Edit, 2) => Some("Scheduler or persistence engine not found"),
        (Edit | Del | Zero, 3) => Some("No such service"),
        (AddDest | EditDest | DelDest, 3) => Some("Service not defined"),
        (AddDest, 17) => Some("Destination already exists"),
        (EditDest | DelDest, 2) => Some("No such destination"),
        (_, 3) => Some("No such service"),
        (_, 1) => Some("Permission denied (you must be root)"),
        (_, 22) => {
            Some("Invalid operation.  Possibly wrong module version, address not unicast, ...")
        }
        (_, 92) => Some("Protocol not available"),
        (_, 12) => Some("Memory allocation problem"),
        (_, 95) => Some("Operation not supported with IPv6"),
        (_, 97) => Some("Operation not supported with specified address family"),
        (_, 90) => Some("Module is wrong version"),
        _ => Option::None,
    };
    specific.map(str::to_string).unwrap_or_else(|| {
        std::io::Error::from_raw_os_error(errno)
            .to_string()
            .split(" (os error")
            .next()
            .unwrap_or("")
            .to_string()
    })
}

fn info(ctx: &mut Ctx) -> Result<rlvs_ctl::Info, Exit> {
    match ctx.call(Request::Info)? {
        Ok(Response::Info(i)) => Ok(i),
        _ => Err(ctx.fail(1, "ipvsadm: unexpected answer from the rlvs daemon")),
    }
}

fn list_all(ctx: &mut Ctx, format: u32) -> Result<(), Exit> {
    let i = info(ctx)?;
    let mut out = String::new();
    if format & FMT_RULE == 0 {
        out.push_str(&format!(
            "IP Virtual Server version {}.{}.{} (size={})\n",
            i.version.0, i.version.1, i.version.2, i.conn_tab_size
        ));
    }
    let mut services = match ctx.call(Request::ListServices)? {
        Ok(Response::Services(s)) => s,
        Ok(_) => return Err(ctx.fail(1, "ipvsadm: unexpected answer from the rlvs daemon")),
        Err(e) => return Err(ctx.fail(1, strerror(Cmd::List, e))),
    };
    if format & FMT_NOSORT == 0 {
        format::glibc_msort(&mut services, &format::cmp_services);
    }
    format::title(&mut out, format);
    for s in &services {
        format::service_entry(&mut out, s, format);
    }
    ctx.out.push_str(&out);
    Ok(())
}

fn list_service(ctx: &mut Ctx, key: &ServiceKey, format: u32) -> Result<(), Exit> {
    if key.fwmark != 0 {
        return Err(ctx.fail(1, "No such service"));
    }
    let s = match ctx.call(Request::GetService { key: *key })? {
        Ok(Response::Service(s)) => s,
        Ok(_) => return Err(ctx.fail(1, "ipvsadm: unexpected answer from the rlvs daemon")),
        Err(e) => return Err(ctx.fail(1, strerror(Cmd::List, e))),
    };
    let mut out = String::new();
    format::title(&mut out, format);
    format::service_entry(&mut out, &s, format);
    ctx.out.push_str(&out);
    Ok(())
}

fn list_conn(ctx: &mut Ctx, format: u32) -> Result<(), Exit> {
    let conns = match ctx.call(Request::ListConns)? {
        Ok(Response::Conns(c)) => c,
        _ => return Err(ctx.fail(1, "ipvsadm: unexpected answer from the rlvs daemon")),
    };
    let mut out = String::new();
    format::conn_header(&mut out, format);
    for c in &conns {
        format::conn_entry(&mut out, c, format);
    }
    ctx.out.push_str(&out);
    Ok(())
}

fn list_timeout(ctx: &mut Ctx) -> Result<(), Exit> {
    match ctx.call(Request::GetTimeouts)? {
        Ok(Response::Timeouts(t)) => {
            ctx.out.push_str(&format!(
                "Timeout (tcp tcpfin udp): {} {} {}\n",
                t.tcp, t.tcp_fin, t.udp
            ));
            Ok(())
        }
        _ => Err(Exit(1)),
    }
}
