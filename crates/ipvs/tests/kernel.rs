//! The client against the running kernel, in a network namespace of the
//! test's own (IPVS tables are per namespace): with ip_vs, a service and
//! a real server go in, are dumped back and come out; without it, the one
//! clear refusal. The lab guest (scripts/lab-test.sh) has ip_vs.

use rlvs_ipvs::attr::cmd;
use rlvs_ipvs::client::{Client, Error};
use rlvs_ipvs::msg::{fwd, AF_INET};
use rlvs_ipvs::{Dest, IpvsMessage, Service, ServiceId};

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
