//! The client against the running kernel, in a network namespace of the
//! test's own (IPVS tables are per namespace): with ip_vs, a service and
//! a real server go in, are dumped back and come out; without it, the one
//! clear refusal. The lab guest (scripts/lab-test.sh) has ip_vs.

use rlvs_ipvs::attr::cmd;
use rlvs_ipvs::client::{Client, Error};
use rlvs_ipvs::msg::{fwd, AF_INET};
use rlvs_ipvs::{Daemon, Dest, IpvsMessage, Service, ServiceId};

fn in_private_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: unshare affects only this thread, which owns no sockets yet.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            panic!("unshare(CLONE_NEWNET): {} (the test needs root)", std::io::Error::last_os_error());
        }
        f()
    })
    .join()
    .expect("the namespace thread panicked")
}

#[test]
fn the_kernel_table_round_trips_or_the_refusal_is_one_clear_line() {
    in_private_netns(|| match Client::connect() {
        Err(Error::NotAvailable) => {
            let line = Error::NotAvailable.to_string();
            assert!(!line.contains('\n') && line.starts_with("kernel IPVS is not available"), "{line}");
            assert!(
                !std::path::Path::new("/proc/net/ip_vs").exists(),
                "/proc/net/ip_vs exists, yet the IPVS family was not found"
            );
        }
        Err(e) => panic!("connecting to kernel IPVS: {e}"),
        Ok(mut c) => {
            let (version, size) = c.get(IpvsMessage::info()).unwrap().info_of().unwrap();
            assert_eq!(version >> 16, 1, "IPVS 1.x");
            assert!(size > 0);
            let svc = Service {
                id: ServiceId::Addr { protocol: 6, addr: "10.0.0.100".parse().unwrap(), port: 80 },
                sched: "wrr".into(),
                pe_name: None,
                flags: 0,
                timeout: 0,
                netmask: 0xffff_ffff,
                stats: None,
            };
            c.request(IpvsMessage::flush()).unwrap();
            c.request(IpvsMessage::service(cmd::NEW_SERVICE, &svc)).unwrap();
            let dup = c.request(IpvsMessage::service(cmd::NEW_SERVICE, &svc)).unwrap_err();
            assert_eq!(dup.errno(), Some(libc::EEXIST));
            let d = Dest {
                addr: Some("192.168.100.2".parse().unwrap()),
                port: 80,
                fwd_method: fwd::DROUTE,
                weight: 3,
                ..Default::default()
            };
            // With lo down no address is unicast to the kernel: it refuses
            // a direct-routed server with EINVAL, as ipvsadm shows ("address
            // not unicast"); with lo up it takes it.
            let refused = c.request(IpvsMessage::dest(cmd::NEW_DEST, &svc.id, &d)).unwrap_err();
            assert_eq!(refused.errno(), Some(libc::EINVAL));
            let up = std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status().unwrap();
            assert!(up.success());
            c.request(IpvsMessage::dest(cmd::NEW_DEST, &svc.id, &d)).unwrap();
            let listed = c.dump(IpvsMessage::services()).unwrap();
            assert_eq!(listed.len(), 1);
            let back = listed[0].service_of().unwrap();
            assert_eq!((back.id, back.sched.as_str()), (svc.id, "wrr"));
            let dests = c.dump(IpvsMessage::dests_of(&svc.id)).unwrap();
            let got = dests[0].dest_of(AF_INET).unwrap();
            assert_eq!((got.addr, got.port, got.fwd_method, got.weight), (d.addr, 80, fwd::DROUTE, 3));
            c.request(IpvsMessage::service(cmd::DEL_SERVICE, &svc)).unwrap();
            assert!(c.dump(IpvsMessage::services()).unwrap().is_empty());
        }
    });
}

/// The sync daemon commands the next issue builds on: a master thread
/// starts with its interface and syncid, is listed, and stops. Without
/// ip_vs there is nothing to start.
#[test]
fn sync_daemons_start_list_and_stop() {
    in_private_netns(|| {
        let Ok(mut c) = Client::connect() else { return };
        let up = std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status().unwrap();
        assert!(up.success());
        let d =
            Daemon { state: rlvs_ipvs::attr::STATE_MASTER, mcast_ifn: "lo".into(), sync_id: 7, ..Default::default() };
        c.request(IpvsMessage::new_daemon(&d)).unwrap();
        let again = c.request(IpvsMessage::new_daemon(&d)).unwrap_err();
        assert_eq!(again.errno(), Some(libc::EEXIST));
        let listed: Vec<Daemon> =
            c.dump(IpvsMessage::get_daemon()).unwrap().iter().flat_map(|m| m.daemons_of().unwrap()).collect();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!((listed[0].state, listed[0].mcast_ifn.as_str(), listed[0].sync_id), (d.state, "lo", 7));
        c.request(IpvsMessage::del_daemon(rlvs_ipvs::attr::STATE_MASTER)).unwrap();
        assert!(c.dump(IpvsMessage::get_daemon()).unwrap().iter().all(|m| m.daemons_of().unwrap().is_empty()));
    });
}

/// The kernel engine behind the backend boundary reports what the table
/// did, including a real server deleted behind its back (as with the real
/// ipvsadm), seen at the next touch of its service.
#[test]
fn the_kernel_engine_reports_the_table_as_it_is() {
    use rlvs_ctl::{ControlMsg, Engine, Request, Response};
    use rlvs_lvs::director::Event;
    use rlvs_lvs::{DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey};
    use std::sync::mpsc::channel;
    in_private_netns(|| {
        let Ok(c) = Client::connect() else { return };
        let up = std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status().unwrap();
        assert!(up.success());
        let (engine, thread) = rlvs_ipvs::engine::start(c).unwrap();
        let (etx, erx) = channel();
        engine.subscribe(Box::new(move |e: &Event| {
            let _ = etx.send(format!("{e:?}"));
        }));
        let call = |req: Request| {
            let (tx, rx) = channel();
            engine.send(ControlMsg { req, reply: Box::new(move |r| tx.send(r).unwrap()) });
            rx.recv().unwrap()
        };
        let key = ServiceKey::new(Protocol::Tcp, "10.0.0.100".parse().unwrap(), 80);
        let config = ServiceConfig { scheduler: "rr".into(), netmask: 0xffff_ffff, ..Default::default() };
        let dest = |a: &str, w| DestConfig::new(a.parse().unwrap(), 80, FwdMethod::DirectRoute, w);
        assert!(matches!(call(Request::Flush), Response::Ok));
        assert!(matches!(call(Request::AddService { key, config }), Response::Ok));
        assert!(matches!(call(Request::AddDest { service: key, dest: dest("192.168.100.2", 1) }), Response::Ok));
        assert!(matches!(call(Request::AddDest { service: key, dest: dest("192.168.100.3", 1) }), Response::Ok));
        let seen: Vec<String> = erx.try_iter().collect();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(seen[0].starts_with("ServiceAdded") && seen[1].starts_with("DestAdded"), "{seen:?}");
        // Deleted behind the engine's back, then the other one edited.
        let mut raw = Client::connect().unwrap();
        let id = ServiceId::Addr { protocol: 6, addr: "10.0.0.100".parse().unwrap(), port: 80 };
        let gone = Dest { addr: Some("192.168.100.2".parse().unwrap()), port: 80, ..Default::default() };
        raw.request(IpvsMessage::dest(cmd::DEL_DEST, &id, &gone)).unwrap();
        assert!(matches!(call(Request::EditDest { service: key, dest: dest("192.168.100.3", 5) }), Response::Ok));
        let seen: Vec<String> = erx.try_iter().collect();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen[0].starts_with("DestRemoved") && seen[0].contains("192.168.100.2"), "{seen:?}");
        assert!(seen[1].starts_with("DestChanged") && seen[1].contains("weight: 5"), "{seen:?}");
        assert!(matches!(call(Request::DelService { key }), Response::Ok));
        let seen: Vec<String> = erx.try_iter().collect();
        assert!(seen.len() == 2 && seen[1].starts_with("ServiceRemoved"), "{seen:?}");
        engine.stop();
        thread.join().unwrap();
    });
}
