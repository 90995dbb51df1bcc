//! process_options and parse_options of ipvsadm.c: the same checks in the
//! same order, so the same mistakes get the same message and exit code.

use crate::format::{self, *};
use crate::options::*;
use crate::parse::*;
use crate::{Backend, BackendError, Outcome};
use rlvs_ctl::{Request, Response};
use rlvs_lvs::director::TimeoutTriple;
use rlvs_lvs::types::svc_flags;
use rlvs_lvs::{DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey};
use std::net::{IpAddr, Ipv4Addr};

pub(crate) const VERSION: &str = "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)";
pub(crate) const USAGE: &str = include_str!("usage.txt");
pub(crate) const MAX_TIMEOUT: i64 = 86400 * 31;
pub(crate) const DEF_SCHED: &str = "wlc";

/// ipvsadm exits at once on many errors; this carries the exit code up.
pub(crate) struct Exit(pub(crate) i32);

pub(crate) struct Ctx<'a> {
    pub(crate) out: String,
    pub(crate) err: String,
    backend: &'a mut dyn Backend,
    pub(crate) program: String,
    stdin: &'a mut dyn std::io::BufRead,
}

impl Ctx<'_> {
    pub(crate) fn fail(&mut self, code: i32, msg: impl AsRef<str>) -> Exit {
        self.err.push_str(msg.as_ref());
        self.err.push('\n');
        Exit(code)
    }

    pub(crate) fn tryhelp(&mut self) -> Exit {
        let p = self.program.clone();
        self.fail(255, format!("Try `{p} -h' or '{p} --help' for more information."))
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
            // ipvsadm's words when ipvs_init fails (netlink family absent,
            // then the socket option refused with ENOPROTOOPT).
            Err(BackendError::KernelUnavailable) => Err(self.fail(
                2,
                "Can't initialize ipvs: Protocol not available\nAre you sure that IP Virtual Server is built in the kernel or as module?",
            )),
            Err(BackendError::Io(e)) => Err(self.fail(2, format!("ipvsadm: talking to the rlvs daemon failed: {e}"))),
        }
    }
}

pub(crate) fn run(argv: &[String], backend: &mut dyn Backend, stdin: &mut dyn std::io::BufRead) -> Outcome {
    let program = argv.first().cloned().unwrap_or_else(|| "ipvsadm".into());
    let mut ctx = Ctx { out: String::new(), err: String::new(), backend, program, stdin };
    let code =
        if argv.len() <= 1 { list_all(&mut ctx, 0).map(|_| 0) } else { process_options(&mut ctx, &argv[1..], false) };
    let code = code.unwrap_or_else(|Exit(c)| c);
    Outcome { stdout: ctx.out, stderr: ctx.err, code }
}

fn process_options(ctx: &mut Ctx, args: &[String], reading_stdin: bool) -> Result<i32, Exit> {
    let mut ce = Entry {
        laddr: None,
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
        timeout: TimeoutTriple { tcp: 0, tcp_fin: 0, udp: 0 },
        daemon: rlvs_ctl::SyncDaemon::default(),
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
        let svc_v6 = if ce.svc.fwmark != 0 { ce.svc.v6_fwmark } else { v6(ce.svc.addr) };
        if v6(ce.dest.addr) != svc_v6 && fwd != FwdMethod::Tunnel {
            return Err(ctx.fail(2, "Different address family is allowed only for tunneling servers"));
        }
        let tun = (1 << TUN_TYPE) | (1 << TUN_PORT) | (1 << TUN_NOCSUM) | (1 << TUN_CSUM) | (1 << TUN_REMCSUM);
        if options & tun != 0 && fwd != FwdMethod::Tunnel {
            return Err(ctx.fail(2, "Tunnel options conflict with forward method"));
        }
        tunnel_opt_check(ctx, ce.dest.tun_type, options)?;
    }

    let key = service_key(&ce.svc);
    let req = match ce.cmd {
        Cmd::List => {
            let opt = |b: usize| options & (1 << b) != 0;
            if ((opt(CONNECTION) || opt(TIMEOUT) || opt(DAEMON)) && (opt(STATS) || opt(RATE) || opt(THRESHOLDS)))
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
                list_daemon(ctx)?;
            } else {
                list_all(ctx, format)?;
            }
            return Ok(0);
        }
        Cmd::Save => {
            list_all(ctx, format | FMT_RULE)?;
            return Ok(0);
        }
        Cmd::Restore => return restore(ctx, reading_stdin),
        Cmd::StartDaemon => {
            let mut d = ce.daemon.clone();
            if d.mcast_ifn.is_empty() {
                d.mcast_ifn = "eth0".into();
            }
            Request::StartDaemon(d)
        }
        Cmd::StopDaemon => Request::StopDaemon { state: ce.daemon.state },
        Cmd::Flush => Request::Flush,
        Cmd::Add => Request::AddService { key, config: service_config(&ce.svc) },
        Cmd::Edit => Request::EditService { key, config: service_config(&ce.svc) },
        Cmd::Del => Request::DelService { key },
        Cmd::Zero => Request::Zero { service: (options & (1 << SERVICE) != 0).then_some(key) },
        Cmd::AddDest => Request::AddDest { service: key, dest: dest_config(&ce.dest) },
        Cmd::EditDest => Request::EditDest { service: key, dest: dest_config(&ce.dest) },
        Cmd::DelDest => Request::DelDest {
            service: key,
            addr: ce.dest.addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            port: ce.dest.port,
        },
        Cmd::Timeout => Request::SetTimeouts(ce.timeout),
        Cmd::AddLaddr => Request::AddLaddr { service: key, laddr: ce.laddr.unwrap() },
        Cmd::DelLaddr => Request::DelLaddr { service: key, laddr: ce.laddr.unwrap() },
        Cmd::GetLaddr => {
            list_laddrs(ctx, (options & (1 << SERVICE) != 0).then_some(key), format)?;
            return Ok(0);
        }
        Cmd::None => return Err(ctx.tryhelp()),
    };
    if ce.svc.fwmark != 0 && !ctx.backend.is_kernel() {
        return Err(ctx.fail(
            255,
            "ipvsadm: fwmark services (-f) need the kernel IPVS backend; rlvs's userspace engine matches on address and port",
        ));
    }
    if ce.svc.protocol == 132 && matches!(ce.cmd, Cmd::Add | Cmd::Edit) && !ctx.backend.is_kernel() {
        return Err(ctx.fail(
            255,
            "ipvsadm: SCTP services (--sctp-service) need the kernel IPVS backend; rlvs's userspace engine carries TCP and UDP",
        ));
    }
    let op = ce.cmd;
    match ctx.call(req)? {
        Ok(_) => Ok(0),
        Err(errno) => {
            // A refused operation is reported, not fatal: -R goes on with
            // the next line, as ipvsadm does.
            let m = strerror(op, errno);
            ctx.err.push_str(&m);
            ctx.err.push('\n');
            Ok(255)
        }
    }
}

/// restore_table: every non-empty line of standard input is one ipvsadm
/// command line; the last one's result is the exit status.
fn restore(ctx: &mut Ctx, reading_stdin: bool) -> Result<i32, Exit> {
    if reading_stdin {
        return Err(ctx.tryhelp());
    }
    let mut result = 0;
    let mut line = String::new();
    loop {
        line.clear();
        match ctx.stdin.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let words: Vec<String> = line.split_whitespace().map(String::from).collect();
        if !words.is_empty() {
            result = process_options(ctx, &words, true)?;
        }
    }
    Ok(result)
}

fn service_key(s: &Svc) -> ServiceKey {
    let protocol = match s.protocol {
        17 => Protocol::Udp,
        132 => Protocol::Sctp,
        _ => Protocol::Tcp,
    };
    // A fwmark service has no address; its family is -6's.
    let unspecified = if s.fwmark != 0 && s.v6_fwmark {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    ServiceKey { protocol, addr: s.addr.unwrap_or(unspecified), port: s.port, fwmark: s.fwmark }
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
        (StartDaemon, 17) => Some("Daemon has already run"),
        (StopDaemon, 3) => Some("No daemon is running"),
        (AddDest, 17) => Some("Destination already exists"),
        (AddLaddr, 17) => Some("Local address already exists"),
        (DelLaddr, 2) => Some("No such Local address"),
        (AddLaddr | DelLaddr, 3) => Some("Service not defined"),
        (EditDest | DelDest, 2) => Some("No such destination"),
        (_, 3) => Some("No such service"),
        (_, 1) => Some("Permission denied (you must be root)"),
        (_, 22) => Some("Invalid operation.  Possibly wrong module version, address not unicast, ..."),
        (_, 92) => Some("Protocol not available"),
        (_, 12) => Some("Memory allocation problem"),
        (_, 95) => Some("Operation not supported with IPv6"),
        (_, 97) => Some("Operation not supported with specified address family"),
        (_, 90) => Some("Module is wrong version"),
        _ => Option::None,
    };
    specific.map(str::to_string).unwrap_or_else(|| {
        std::io::Error::from_raw_os_error(errno).to_string().split(" (os error").next().unwrap_or("").to_string()
    })
}

/// list_daemon: a line for each running daemon, master first.
fn list_daemon(ctx: &mut Ctx) -> Result<(), Exit> {
    let list = match ctx.call(Request::ListDaemons)? {
        Ok(Response::Daemons(l)) => l,
        // ipvs_get_daemon failed: ipvsadm exits 1 without a word.
        Err(_) => return Err(Exit(1)),
        Ok(_) => return Err(ctx.fail(1, "ipvsadm: unexpected answer from the rlvs daemon")),
    };
    for role in [rlvs_ctl::SYNC_MASTER, rlvs_ctl::SYNC_BACKUP] {
        for d in list.iter().filter(|d| d.state & role != 0) {
            let kind = if role == rlvs_ctl::SYNC_MASTER { "master" } else { "backup" };
            let mut line = format!("{kind} sync daemon (mcast={}, syncid={}", d.mcast_ifn, d.syncid);
            if d.maxlen != 0 {
                line += &format!(", maxlen={}", d.maxlen);
            }
            if let Some(g) = d.group {
                line += &format!(", group={g}");
            }
            if d.port != 0 {
                line += &format!(", port={}", d.port);
            }
            if d.ttl != 0 {
                line += &format!(", ttl={}", d.ttl);
            }
            ctx.out.push_str(&line);
            ctx.out.push_str(")\n");
        }
    }
    Ok(())
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
    if key.fwmark != 0 && !ctx.backend.is_kernel() {
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
            ctx.out.push_str(&format!("Timeout (tcp tcpfin udp): {} {} {}\n", t.tcp, t.tcp_fin, t.udp));
            Ok(())
        }
        _ => Err(Exit(1)),
    }
}

/// rlvs's `--get-laddr [service]`: each FULLNAT service's local addresses.
fn list_laddrs(ctx: &mut Ctx, key: Option<ServiceKey>, format: u32) -> Result<(), Exit> {
    let services = match key {
        Some(k) => match ctx.call(Request::GetService { key: k })? {
            Ok(Response::Service(s)) => vec![s],
            Ok(_) => return Err(ctx.fail(1, "ipvsadm: unexpected answer from the rlvs daemon")),
            Err(e) => return Err(ctx.fail(1, strerror(Cmd::List, e))),
        },
        None => match ctx.call(Request::ListServices)? {
            Ok(Response::Services(mut s)) => {
                format::glibc_msort(&mut s, &format::cmp_services);
                s
            }
            _ => return Err(ctx.fail(1, "ipvsadm: unexpected answer from the rlvs daemon")),
        },
    };
    let mut out = format!("{:<33} {}\n", "Prot LocalAddress:Port", "LocalAddresses");
    for s in services.iter().filter(|s| key.is_some() || !s.laddrs.is_empty()) {
        let vname = format::addrport(s.key.addr, s.key.port, s.key.protocol, format);
        let laddrs: Vec<String> = s.laddrs.iter().map(|a| a.to_string()).collect();
        out.push_str(&format!("{:<33} {}\n", format!("{:<4} {vname}", s.key.protocol.name()), laddrs.join(" ")));
    }
    ctx.out.push_str(&out);
    Ok(())
}
