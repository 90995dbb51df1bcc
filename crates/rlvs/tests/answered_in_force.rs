//! An ipvsadm command is answered only once its change is in the data
//! plane. The engine is told to take 400 ms to bring its traffic filter up
//! to date (RLVS_TEST_FILTER_DELAY_MS), which holds open the window an
//! early answer would leave: a client connecting right after `ipvsadm -a`
//! returned would then meet a filter without the VIP (the director's own
//! kernel answers the SYN with a reset) or without the real server's
//! replies (the kernel forwards them unrewritten). Every connection made
//! right after a command must succeed at its first SYN, on either engine:
//! the client's kernel counts a SYN sent again, or a reset it sent to a
//! stray SYN-ACK, and both counts must stay at zero (curl alone would
//! succeed late, on the SYN retransmitted a second later).

mod common;

use common::*;
use rlvs_netlab::{web, Lab};

const VIP: &str = "10.0.0.100";

/// The client's SYN retransmissions and resets sent, so far.
fn client_trouble(lab: &Lab, ns: &str) -> (u64, u64) {
    let out = lab.ok(ns, &["nstat", "-asz", "TcpExtTCPSynRetrans", "TcpOutRsts"]).unwrap();
    let get = |name: &str| -> u64 {
        out.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)).unwrap().parse().unwrap()
    };
    (get("TcpExtTCPSynRetrans"), get("TcpOutRsts"))
}

#[test]
fn a_service_is_forwarded_as_soon_as_ipvsadm_returns() {
    let mut lab = Lab::new().unwrap();
    lab.segment("priv").unwrap();
    let client = lab.host("c1", "eth0", "02:00:00:00:11:01", "10.1.1.10/24").unwrap();
    let director = lab.host("c2", "eth0", "02:00:00:00:11:02", "10.1.1.243/24").unwrap();
    lab.plug(&director, "eth1", "priv", "02:00:00:00:11:12", "192.168.100.254/24").unwrap();
    let rs = lab.bare_host("c3").unwrap();
    lab.plug(&rs, "eth0", "priv", "02:00:00:00:11:22", "192.168.100.2/24").unwrap();
    lab.ok(&rs, &["ip", "route", "add", "default", "via", "192.168.100.254"]).unwrap();
    web::start_on(&mut lab, &rs, "web", "rs1", &[], 8080).unwrap();
    lab.ok(&director, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]).unwrap();
    lab.ok(&director, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"]).unwrap();
    lab.ok(&client, &["ip", "route", "add", VIP, "dev", "eth0"]).unwrap();
    // The real server's next hop, so the first SYN is not held for ARP
    // (that would be a different delay, and one rlvs handles).
    lab.ok(&director, &["ping", "-c", "1", "-W", "2", "192.168.100.2"]).unwrap();
    start_daemon_with_env(&mut lab, &director, "daemon", &["RLVS_TEST_FILTER_DELAY_MS=400"], &[]);
    for port in [80, 81, 82] {
        adm_ok(
            &lab,
            &director,
            [format!("-A -t {VIP}:{port} -s rr"), format!("-a -t {VIP}:{port} -r 192.168.100.2:8080 -m")],
        );
        let out = lab.run(&client, &["curl", "-s", "--max-time", "3", &format!("http://{VIP}:{port}/")]).unwrap();
        let body = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            body.trim(),
            "rs1",
            "port {port}: curl exit {:?} right after ipvsadm -a returned\n{}",
            out.status.code(),
            lab.log("daemon")
        );
        assert_eq!(client_trouble(&lab, &client), (0, 0), "port {port}: (SYNs sent again, resets sent)");
    }
    // Taking a service away is in force on return too: the director's
    // kernel answers for the VIP again (a reset, not silence).
    adm_ok(&lab, &director, [format!("-D -t {VIP}:80")]);
    let out = lab.run(&client, &["curl", "-s", "--max-time", "3", &format!("http://{VIP}:80/")]).unwrap();
    assert_eq!(out.status.code(), Some(7), "connection refused by the director's kernel");
    assert_eq!(client_trouble(&lab, &client), (0, 0), "refused at the first SYN");
    assert!(engine_of(&lab, "daemon") == "afxdp" || std::env::var("RLVS_ENGINE").as_deref() != Ok("afxdp"));
}
