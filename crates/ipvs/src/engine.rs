//! Kernel IPVS behind the backend boundary (`rlvs_ctl::Engine`): one thread
//! owns the netlink socket and carries out the daemon's requests in order.
//!
//! The kernel announces nothing (the IPVS family has no multicast group),
//! yet the checkers reconcile against the table's events. So this engine
//! keeps a mirror of what it has reported for each service it touched and,
//! after every request that can change a service, reads that service back
//! and reports the difference. A service found already in the kernel (an
//! earlier daemon's, or one made with ipvsadm) is thereby reported as it
//! is, and a real server deleted behind rlvs's back is seen as removed at
//! the next touch of its service, not edited into an error.

use crate::backend;
use crate::client::{Client, Error};
use rlvs_ctl::{ControlMsg, Request, Response, Subscriber};
use rlvs_lvs::director::{Event, ServiceInfo};
use rlvs_lvs::ServiceKey;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;

enum Msg {
    Control(ControlMsg),
    Subscribe(Subscriber),
    Stop,
}

/// The daemon's handle on the kernel engine's thread.
pub struct KernelEngine {
    tx: Mutex<Sender<Msg>>,
}

impl KernelEngine {
    fn post(&self, m: Msg) {
        let _ = self.tx.lock().unwrap_or_else(|e| e.into_inner()).send(m);
    }
}

impl rlvs_ctl::Engine for KernelEngine {
    fn send(&self, msg: ControlMsg) {
        self.post(Msg::Control(msg))
    }
    fn subscribe(&self, f: Subscriber) {
        self.post(Msg::Subscribe(f))
    }
    fn stop(&self) {
        self.post(Msg::Stop)
    }
    fn name(&self) -> &'static str {
        "kernel"
    }
}

/// Starts the thread on a connected client. Stopping leaves the kernel's
/// table as it is, as ipvsadm does; whoever made services removes them
/// (the checkers do, as keepalived does).
pub fn start(client: Client) -> Result<(KernelEngine, std::thread::JoinHandle<()>), Error> {
    let (tx, rx) = channel();
    let t = std::thread::Builder::new().name("rlvs-kernel".into()).spawn(move || run(client, rx)).map_err(Error::Io)?;
    Ok((KernelEngine { tx: Mutex::new(tx) }, t))
}

fn run(mut client: Client, rx: Receiver<Msg>) {
    let mut subscribers: Vec<Subscriber> = Vec::new();
    let mut mirror = Mirror::default();
    while let Ok(m) = rx.recv() {
        match m {
            Msg::Stop => break,
            Msg::Subscribe(f) => subscribers.push(f),
            Msg::Control(ControlMsg { req, reply }) => {
                let scope = Scope::of(&req);
                let resp = backend::handle(&mut client, req);
                if !subscribers.is_empty() {
                    for e in mirror.refresh(&mut client, scope) {
                        for s in &mut subscribers {
                            s(&e);
                        }
                    }
                }
                reply(resp);
            }
        }
    }
}

/// Which services a request can change.
enum Scope {
    Nothing,
    One(ServiceKey),
    All,
}

impl Scope {
    fn of(req: &Request) -> Scope {
        match req {
            Request::AddService { key, .. } | Request::EditService { key, .. } | Request::DelService { key } => {
                Scope::One(normalize(*key))
            }
            Request::AddDest { service, .. } | Request::EditDest { service, .. } | Request::DelDest { service, .. } => {
                Scope::One(normalize(*service))
            }
            Request::Flush => Scope::All,
            _ => Scope::Nothing,
        }
    }
}

/// The key a service has when read back from the kernel: a fwmark service
/// keeps only its mark and family.
pub fn normalize(k: ServiceKey) -> ServiceKey {
    if k.fwmark == 0 {
        return k;
    }
    let addr = if k.addr.is_ipv6() { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
    ServiceKey { protocol: rlvs_lvs::Protocol::Tcp, addr, port: 0, fwmark: k.fwmark }
}

/// What subscribers have been told each service holds.
#[derive(Default)]
struct Mirror {
    known: HashMap<ServiceKey, ServiceInfo>,
}

impl Mirror {
    fn refresh(&mut self, c: &mut Client, scope: Scope) -> Vec<Event> {
        let mut events = Vec::new();
        match scope {
            Scope::Nothing => {}
            Scope::One(key) => {
                let now = match backend::handle(c, Request::GetService { key }) {
                    Response::Service(s) => Some(s),
                    _ => None,
                };
                let before = self.known.remove(&key);
                diff(key, before.as_ref(), now.as_ref(), &mut events);
                if let Some(s) = now {
                    self.known.insert(key, s);
                }
            }
            Scope::All => {
                let now = match backend::handle(c, Request::ListServices) {
                    Response::Services(l) => l,
                    // Unreadable: report nothing rather than a false removal.
                    _ => return events,
                };
                let mut before = std::mem::take(&mut self.known);
                for s in now {
                    let key = normalize(s.key);
                    diff(key, before.remove(&key).as_ref(), Some(&s), &mut events);
                    self.known.insert(key, s);
                }
                for (key, gone) in before {
                    diff(key, Some(&gone), None, &mut events);
                }
            }
        }
        events
    }
}

/// The events that turn `before` into `now` for one service, in the order
/// rlvs's own director reports them: a service before its real servers
/// when it comes, after them when it goes.
pub fn diff(key: ServiceKey, before: Option<&ServiceInfo>, now: Option<&ServiceInfo>, out: &mut Vec<Event>) {
    let no_dests = Vec::new();
    let old = before.map_or(&no_dests, |s| &s.dests);
    let new = now.map_or(&no_dests, |s| &s.dests);
    match (before, now) {
        (None, Some(_)) => out.push(Event::ServiceAdded(key)),
        (Some(b), Some(n)) if b.config != n.config => out.push(Event::ServiceChanged(key)),
        _ => {}
    }
    let same = |a: &rlvs_lvs::DestConfig, b: &rlvs_lvs::DestConfig| a.addr == b.addr && a.port == b.port;
    for o in old {
        if !new.iter().any(|n| same(&n.config, &o.config)) {
            out.push(Event::DestRemoved { service: key, dest: o.config });
        }
    }
    for n in new {
        match old.iter().find(|o| same(&o.config, &n.config)) {
            None => out.push(Event::DestAdded { service: key, dest: n.config }),
            Some(o) if o.config != n.config => {
                out.push(Event::DestChanged { service: key, old: o.config, new: n.config })
            }
            Some(_) => {}
        }
    }
    if before.is_some() && now.is_none() {
        out.push(Event::ServiceRemoved(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlvs_lvs::director::DestInfo;
    use rlvs_lvs::{DestConfig, FwdMethod, Protocol, ServiceConfig};

    fn svc(dests: &[(&str, i32)]) -> ServiceInfo {
        ServiceInfo {
            key: key(),
            config: ServiceConfig { scheduler: "rr".into(), ..Default::default() },
            laddrs: Vec::new(),
            stats: Default::default(),
            rates: Default::default(),
            dests: dests
                .iter()
                .map(|(a, w)| DestInfo {
                    config: DestConfig {
                        addr: a.parse().unwrap(),
                        port: 80,
                        fwd: FwdMethod::DirectRoute,
                        weight: *w,
                        u_threshold: 0,
                        l_threshold: 0,
                        tun_type: 0,
                        tun_port: 0,
                        tun_flags: 0,
                    },
                    activeconns: 0,
                    inactconns: 0,
                    persistconns: 0,
                    stats: Default::default(),
                    rates: Default::default(),
                })
                .collect(),
        }
    }

    fn key() -> ServiceKey {
        ServiceKey::new(Protocol::Tcp, "10.0.0.100".parse().unwrap(), 80)
    }

    fn names(e: &[Event]) -> Vec<String> {
        e.iter()
            .map(|e| match e {
                Event::ServiceAdded(_) => "svc+".to_string(),
                Event::ServiceChanged(_) => "svc~".to_string(),
                Event::ServiceRemoved(_) => "svc-".to_string(),
                Event::DestAdded { dest, .. } => format!("+{}/{}", dest.addr, dest.weight),
                Event::DestChanged { old, new, .. } => format!("~{}/{}>{}", new.addr, old.weight, new.weight),
                Event::DestRemoved { dest, .. } => format!("-{}", dest.addr),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_service_first_seen_is_reported_with_what_it_holds() {
        let mut e = Vec::new();
        diff(key(), None, Some(&svc(&[("10.1.1.244", 1)])), &mut e);
        assert_eq!(names(&e), ["svc+", "+10.1.1.244/1"]);
    }

    #[test]
    fn weights_removals_and_additions_are_told_apart() {
        let mut e = Vec::new();
        let before = svc(&[("10.1.1.244", 1), ("10.1.1.245", 1)]);
        let now = svc(&[("10.1.1.245", 0), ("10.1.1.246", 1)]);
        diff(key(), Some(&before), Some(&now), &mut e);
        assert_eq!(names(&e), ["-10.1.1.244", "~10.1.1.245/1>0", "+10.1.1.246/1"]);
    }

    #[test]
    fn a_service_that_goes_takes_its_real_servers_first() {
        let mut e = Vec::new();
        diff(key(), Some(&svc(&[("10.1.1.244", 1)])), None, &mut e);
        assert_eq!(names(&e), ["-10.1.1.244", "svc-"]);
        let mut none = Vec::new();
        diff(key(), Some(&svc(&[])), Some(&svc(&[])), &mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn fwmark_keys_keep_only_mark_and_family() {
        let k = ServiceKey { protocol: Protocol::Udp, addr: "2001:db8::1".parse().unwrap(), port: 9, fwmark: 7 };
        let n = normalize(k);
        assert_eq!((n.protocol, n.addr.to_string(), n.port, n.fwmark), (Protocol::Tcp, "::".to_string(), 0, 7));
        assert_eq!(normalize(key()), key());
    }
}
