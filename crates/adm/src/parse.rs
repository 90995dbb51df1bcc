//! parse_options of ipvsadm.c: popt's options turned into a command entry,
//! with ipvsadm's checks and messages, in its order.

use crate::cmd::{Ctx, Exit, DEF_SCHED, MAX_TIMEOUT, USAGE, VERSION};
use crate::format::*;
use crate::options::*;
use crate::popt::{Parser, Tag};
use crate::resolve::{self, string_to_number};
use rlvs_lvs::director::TimeoutTriple;
use rlvs_lvs::types::svc_flags;
use rlvs_lvs::FwdMethod;
use std::net::{IpAddr, Ipv4Addr};

#[derive(Clone)]
pub(crate) struct Svc {
    pub(crate) protocol: u8,
    pub(crate) addr: Option<IpAddr>,
    pub(crate) port: u16,
    pub(crate) fwmark: u32,
    pub(crate) v6_fwmark: bool,
    pub(crate) sched_name: String,
    pub(crate) flags: u32,
    pub(crate) timeout: u32,
    pub(crate) netmask: u32,
    pub(crate) pe_name: String,
}

#[derive(Clone)]
pub(crate) struct Dest {
    pub(crate) addr: Option<IpAddr>,
    pub(crate) port: u16,
    pub(crate) fwd: FwdMethod,
    pub(crate) weight: i64,
    pub(crate) u_threshold: i64,
    pub(crate) l_threshold: i64,
    pub(crate) tun_type: u8,
    pub(crate) tun_port: u16,
    pub(crate) tun_flags: u16,
}

pub(crate) struct Entry {
    /// rlvs: the FULLNAT local address of --add-laddr/--del-laddr.
    pub(crate) laddr: Option<IpAddr>,
    pub(crate) cmd: Cmd,
    pub(crate) svc: Svc,
    pub(crate) dest: Dest,
    pub(crate) timeout: TimeoutTriple,
    pub(crate) daemon: rlvs_ctl::SyncDaemon,
}

fn set_option(ctx: &mut Ctx, options: &mut u64, optc: usize) -> Result<(), Exit> {
    if *options & (1 << optc) != 0 {
        return Err(ctx.fail(2, format!("multiple '{}' options specified", OPTNAMES[optc])));
    }
    *options |= 1 << optc;
    Ok(())
}

pub(crate) const SERVICE_ADDR: u8 = 1;
pub(crate) const SERVICE_PORT: u8 = 2;

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

/// `-p` without a value: libipvs's IPVS_SVC_PERSISTENT_TIMEOUT, 6 minutes
/// (ipvsadm(8) says 300 s; the tool, and so rlvs, uses 360).
const DEFAULT_PERSISTENT_TIMEOUT: u32 = 6 * 60;

pub(crate) fn parse_timeout(ctx: &mut Ctx, buf: Option<&str>, min: i64, max: i64) -> Result<u32, Exit> {
    let Some(buf) = buf else { return Ok(DEFAULT_PERSISTENT_TIMEOUT) };
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

pub(crate) fn parse_options(
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
        Tag::AddLaddr => Cmd::AddLaddr,
        Tag::DelLaddr => Cmd::DelLaddr,
        Tag::GetLaddr => Cmd::GetLaddr,
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
            ce.daemon.state = if a == "master" { rlvs_ctl::SYNC_MASTER } else { rlvs_ctl::SYNC_BACKUP };
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
                        None => return Err(ctx.fail(2, "illegal virtual server persistent mask specified")),
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
            Tag::Ipip | Tag::Gatewaying | Tag::Masq | Tag::FullNat => {
                set_option(ctx, options, FORWARD)?;
                ce.dest.fwd = match tag {
                    Tag::Ipip => FwdMethod::Tunnel,
                    Tag::Gatewaying => FwdMethod::DirectRoute,
                    Tag::FullNat => FwdMethod::FullNat,
                    _ => FwdMethod::Masq,
                };
            }
            Tag::Laddr => {
                set_option(ctx, options, LADDR)?;
                ce.laddr =
                    match resolve::inet_aton(&a).map(IpAddr::V4).or_else(|| resolve::inet_pton6(&a).map(IpAddr::V6)) {
                        Some(x) => Some(x),
                        None => return Err(ctx.fail(2, "illegal local address specified")),
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
            Tag::McastInterface => {
                set_option(ctx, options, MCAST)?;
                // strncpy into IP_VS_IFNAME_MAXLEN (16) bytes, less the NUL.
                ce.daemon.mcast_ifn = a.chars().take(15).collect();
            }
            Tag::SyncId => {
                set_option(ctx, options, SYNCID)?;
                ce.daemon.syncid =
                    string_to_number(&a, 0, 255).ok_or_else(|| ctx.fail(2, "illegal syncid specified"))? as u8;
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
                ce.daemon.group = if a.contains(':') {
                    resolve::inet_pton6(&a).map(IpAddr::V6)
                } else {
                    a.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
                };
            }
            Tag::McastPort => {
                set_option(ctx, options, MCAST_PORT)?;
                ce.daemon.port =
                    string_to_number(&a, 1, 65535).ok_or_else(|| ctx.fail(2, "illegal mcast-port specified"))? as u16;
            }
            Tag::McastTtl => {
                set_option(ctx, options, MCAST_TTL)?;
                ce.daemon.ttl =
                    string_to_number(&a, 1, 255).ok_or_else(|| ctx.fail(2, "illegal mcast-ttl specified"))? as u8;
            }
            Tag::SyncMaxlen => {
                set_option(ctx, options, SYNC_MAXLEN)?;
                ce.daemon.maxlen = string_to_number(&a, 1, 65535 - 20 - 8)
                    .ok_or_else(|| ctx.fail(2, "illegal sync-maxlen specified"))?
                    as u16;
            }
            Tag::TunInfo => {
                set_option(ctx, options, TUN_INFO)?;
                *format |= FMT_TUN_INFO;
            }
            Tag::TunType => {
                set_option(ctx, options, TUN_TYPE)?;
                ce.dest.tun_type =
                    TUNNAMES.iter().position(|&n| n == a).ok_or_else(|| ctx.fail(2, "illegal tunnel type specified"))?
                        as u8;
            }
            Tag::TunPort => {
                set_option(ctx, options, TUN_PORT)?;
                ce.dest.tun_port =
                    string_to_number(&a, 1, 65535).ok_or_else(|| ctx.fail(2, "illegal tunnel port specified"))? as u16;
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
