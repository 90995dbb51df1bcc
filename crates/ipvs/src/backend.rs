//! The control protocol's requests carried out on kernel IPVS: the same
//! `Request` → `Response` boundary the daemon's own engines answer, so the
//! ipvsadm face lists and edits the kernel's table with its own formatter.

use crate::attr::cmd;
use crate::client::{Client, Error};
use crate::msg::{self, fwd, Dest, IpvsMessage, Service, ServiceId};
use rlvs_ctl::{CtlError, Info, Request, Response};
use rlvs_lvs::director::{DestInfo, ServiceInfo, TimeoutTriple};
use rlvs_lvs::stats::{Counters, Rates};
use rlvs_lvs::{DestConfig, FwdMethod, IpvsError, Protocol, ServiceConfig, ServiceKey};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Carries out one request on the kernel's table.
pub fn handle(c: &mut Client, req: Request) -> Response {
    match run(c, req) {
        Ok(r) => r,
        Err(e) => Response::Error(ctl_error(&e)),
    }
}

fn run(c: &mut Client, req: Request) -> Result<Response, Error> {
    let ok = |r: Result<(), Error>| r.map(|()| Response::Ok);
    match req {
        Request::Info => {
            let (version, size) = c.get(IpvsMessage::info())?.info_of().map_err(decode)?;
            let num_services = c.dump(IpvsMessage::services())?.len() as u32;
            Ok(Response::Info(Info {
                version: ((version >> 16) as u8, (version >> 8) as u8, version as u8),
                conn_tab_size: size,
                num_services,
                engine: "kernel".into(),
            }))
        }
        Request::AddService { key, config } => {
            ok(c.request(IpvsMessage::service(cmd::NEW_SERVICE, &service(&key, &config))))
        }
        Request::EditService { key, config } => {
            ok(c.request(IpvsMessage::service(cmd::SET_SERVICE, &service(&key, &config))))
        }
        Request::DelService { key } => {
            ok(c.request(IpvsMessage::service(cmd::DEL_SERVICE, &service(&key, &ServiceConfig::default()))))
        }
        Request::Flush => ok(c.request(IpvsMessage::flush())),
        Request::AddDest { service: s, dest: d } => dest_request(c, cmd::NEW_DEST, &s, &d),
        Request::EditDest { service: s, dest: d } => dest_request(c, cmd::SET_DEST, &s, &d),
        Request::DelDest { service: s, addr, port } => {
            let d = Dest { addr: Some(addr), port, ..Default::default() };
            ok(c.request(IpvsMessage::dest(cmd::DEL_DEST, &service_id(&s), &d)))
        }
        Request::Zero { service: s } => ok(c.request(IpvsMessage::zero(s.as_ref().map(service_id).as_ref()))),
        Request::SetTimeouts(t) => {
            ok(c.request(IpvsMessage::set_config(&msg::Timeouts { tcp: t.tcp, tcp_fin: t.tcp_fin, udp: t.udp })))
        }
        Request::GetTimeouts => {
            let t = c.get(IpvsMessage::get_config())?.timeouts_of().map_err(decode)?;
            Ok(Response::Timeouts(TimeoutTriple { tcp: t.tcp, tcp_fin: t.tcp_fin, udp: t.udp }))
        }
        Request::ListServices => {
            let mut out = Vec::new();
            for m in c.dump(IpvsMessage::services())? {
                out.push(with_dests(c, m.service_of().map_err(decode)?)?);
            }
            Ok(Response::Services(out))
        }
        Request::GetService { key } => {
            let probe = service(&key, &ServiceConfig::default());
            let m = c.get(IpvsMessage::service(cmd::GET_SERVICE, &probe))?;
            Ok(Response::Service(with_dests(c, m.service_of().map_err(decode)?)?))
        }
        // No netlink dump exists for connections; ipvsadm reads the same file.
        Request::ListConns => Ok(Response::Conns(crate::conns::read().map_err(Error::Io)?)),
        Request::StartDaemon(d) => ok(c.request(IpvsMessage::new_daemon(&msg::Daemon {
            state: d.state,
            mcast_ifn: d.mcast_ifn,
            sync_id: u32::from(d.syncid),
            sync_maxlen: (d.maxlen != 0).then_some(d.maxlen),
            mcast_group: d.group,
            mcast_port: (d.port != 0).then_some(d.port),
            mcast_ttl: (d.ttl != 0).then_some(d.ttl),
        }))),
        Request::StopDaemon { state } => ok(c.request(IpvsMessage::del_daemon(state))),
        Request::ListDaemons => {
            let mut out = Vec::new();
            for m in c.dump(IpvsMessage::get_daemon())? {
                for d in m.daemons_of().map_err(decode)? {
                    out.push(rlvs_ctl::SyncDaemon {
                        state: d.state,
                        mcast_ifn: d.mcast_ifn,
                        syncid: d.sync_id as u8,
                        maxlen: d.sync_maxlen.unwrap_or(0),
                        group: d.mcast_group,
                        port: d.mcast_port.unwrap_or(0),
                        ttl: d.mcast_ttl.unwrap_or(0),
                        ready: true,
                    });
                }
            }
            Ok(Response::Daemons(out))
        }
        // The kernel keeps its packet counters to itself; its table's size
        // is in the same file ipvsadm -Lc reads.
        Request::EngineStats => Ok(Response::EngineStats(rlvs_ctl::EngineCounters {
            connections: crate::conns::read().map_err(Error::Io)?.len() as u64,
            ..Default::default()
        })),
        // The kernel has the switch for every service at once only.
        Request::SetSloppy { services } => {
            let path = "/proc/sys/net/ipv4/vs/sloppy_tcp";
            let on = if services.is_empty() { "0\n" } else { "1\n" };
            match std::fs::write(path, on) {
                Ok(()) => Ok(Response::Ok),
                Err(e) => Ok(Response::Refused(format!("{path}: {e}"))),
            }
        }
        // The kernel's own defences are its sysctls; it has no bound.
        Request::SetDefence(change) => {
            if matches!(change.limit, Some(Some(_))) {
                return Ok(Response::Refused(
                    "kernel IPVS has no connection bound (its defences act on free memory)".into(),
                ));
            }
            let numbers = [
                ("drop_entry", change.drop_entry.map(u64::from)),
                ("drop_packet", change.drop_packet.map(u64::from)),
                ("secure_tcp", change.secure_tcp.map(u64::from)),
                ("amemthresh", change.amemthresh),
                ("am_droprate", change.am_droprate.map(u64::from)),
            ];
            for (name, value) in numbers {
                let Some(v) = value else { continue };
                let path = format!("/proc/sys/net/ipv4/vs/{name}");
                if let Err(e) = std::fs::write(&path, format!("{v}\n")) {
                    return Ok(Response::Refused(format!("{path}: {e}")));
                }
            }
            Ok(Response::Ok)
        }
        // FULLNAT local addresses and VRRP are rlvs's own; the kernel has none.
        Request::AddLaddr { .. }
        | Request::DelLaddr { .. }
        | Request::VrrpStatus
        | Request::Reload
        | Request::Operator { .. }
        | Request::Maintenance { .. }
        | Request::Announce(_)
        | Request::Pick { .. }
        | Request::Checkers => Ok(Response::Error(CtlError::Ipvs(IpvsError::NotSupported))),
    }
}

fn dest_request(c: &mut Client, command: u8, s: &ServiceKey, d: &DestConfig) -> Result<Response, Error> {
    let Some(method) = fwd_of(d.fwd) else {
        return Ok(Response::Error(CtlError::Ipvs(IpvsError::NotSupported)));
    };
    let dest = Dest {
        addr: Some(d.addr),
        port: d.port,
        fwd_method: method,
        weight: d.weight,
        u_thresh: d.u_threshold,
        l_thresh: d.l_threshold,
        tun_type: d.tun_type,
        tun_port: d.tun_port,
        tun_flags: d.tun_flags,
        ..Default::default()
    };
    c.request(IpvsMessage::dest(command, &service_id(s), &dest)).map(|()| Response::Ok)
}

fn service_id(k: &ServiceKey) -> ServiceId {
    if k.fwmark != 0 {
        let af = if k.addr.is_ipv6() { msg::AF_INET6 } else { msg::AF_INET };
        ServiceId::Fwmark { af, mark: k.fwmark }
    } else {
        ServiceId::Addr { protocol: u16::from(k.protocol.number()), addr: k.addr, port: k.port }
    }
}

fn service(k: &ServiceKey, c: &ServiceConfig) -> Service {
    Service {
        id: service_id(k),
        sched: c.scheduler.clone(),
        pe_name: (!c.pe_name.is_empty()).then(|| c.pe_name.clone()),
        flags: c.flags,
        timeout: c.timeout,
        netmask: c.netmask,
        stats: None,
    }
}

fn fwd_of(m: FwdMethod) -> Option<u32> {
    match m {
        FwdMethod::Masq => Some(fwd::MASQ),
        FwdMethod::Local => Some(fwd::LOCALNODE),
        FwdMethod::Tunnel => Some(fwd::TUNNEL),
        FwdMethod::DirectRoute => Some(fwd::DROUTE),
        FwdMethod::FullNat => None,
    }
}

fn method_of(m: u32) -> FwdMethod {
    match m {
        fwd::LOCALNODE => FwdMethod::Local,
        fwd::TUNNEL => FwdMethod::Tunnel,
        fwd::DROUTE => FwdMethod::DirectRoute,
        _ => FwdMethod::Masq,
    }
}

fn protocol_of(p: u16) -> Protocol {
    match p {
        17 => Protocol::Udp,
        132 => Protocol::Sctp,
        _ => Protocol::Tcp,
    }
}

fn split(s: Option<msg::Stats>) -> (Counters, Rates) {
    let s = s.unwrap_or_default();
    (
        Counters { conns: s.conns, inpkts: s.inpkts, outpkts: s.outpkts, inbytes: s.inbytes, outbytes: s.outbytes },
        Rates { cps: s.cps, inpps: s.inpps, outpps: s.outpps, inbps: s.inbps, outbps: s.outbps },
    )
}

/// A dumped service with its destinations, in the kernel's list order.
fn with_dests(c: &mut Client, s: Service) -> Result<ServiceInfo, Error> {
    let key = match s.id {
        ServiceId::Addr { protocol, addr, port } => ServiceKey::new(protocol_of(protocol), addr, port),
        ServiceId::Fwmark { af, mark } => {
            let addr =
                if af == msg::AF_INET6 { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
            ServiceKey { protocol: Protocol::Tcp, addr, port: 0, fwmark: mark }
        }
    };
    let mut dests = Vec::new();
    for m in c.dump(IpvsMessage::dests_of(&s.id))? {
        let d = m.dest_of(s.id.af()).map_err(decode)?;
        let (stats, rates) = split(d.stats);
        let addr = d.addr.ok_or_else(|| Error::Decode("destination without address".into()))?;
        dests.push(DestInfo {
            config: DestConfig {
                addr,
                port: d.port,
                fwd: method_of(d.fwd_method),
                weight: d.weight,
                u_threshold: d.u_thresh,
                l_threshold: d.l_thresh,
                tun_type: d.tun_type,
                tun_port: d.tun_port,
                tun_flags: d.tun_flags,
            },
            activeconns: d.active_conns,
            inactconns: d.inact_conns,
            persistconns: d.persist_conns,
            stats,
            rates,
        });
    }
    let (stats, rates) = split(s.stats);
    let config = ServiceConfig {
        scheduler: s.sched,
        flags: s.flags,
        timeout: s.timeout,
        netmask: s.netmask,
        pe_name: s.pe_name.unwrap_or_default(),
    };
    Ok(ServiceInfo { key, config, laddrs: Vec::new(), stats, rates, dests })
}

fn decode(e: netlink_packet_core::DecodeError) -> Error {
    Error::Decode(e.to_string())
}

/// The kernel's errno as the control protocol carries it, so that the
/// ipvsadm face prints ipvsadm's message for it.
fn ctl_error(e: &Error) -> CtlError {
    match e.errno() {
        Some(1) | Some(13) => CtlError::PermissionDenied,
        Some(17) => CtlError::Ipvs(IpvsError::Exists),
        Some(3) => CtlError::Ipvs(IpvsError::NoService),
        Some(2) => CtlError::Ipvs(IpvsError::NotFound),
        Some(34) => CtlError::Ipvs(IpvsError::Range),
        Some(95) => CtlError::Ipvs(IpvsError::NotSupported),
        Some(12) => CtlError::Ipvs(IpvsError::NoMemory),
        Some(19) => CtlError::Ipvs(IpvsError::NoDevice),
        _ => CtlError::Ipvs(IpvsError::Invalid),
    }
}
