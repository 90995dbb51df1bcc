//! Several workers: the director's interfaces have two queues each, so the
//! AF_XDP engine runs two workers, and the switch spreads flows over the
//! queues by hash. NAT and FULLNAT replies come back on whatever queue
//! their hash picks, often not the one the client's packets used; every
//! connection must still complete, and both workers must have carried
//! traffic. (On AF_PACKET there is one worker: the test still checks every
//! connection.)

mod common;

use common::*;
use rlvs_netlab::{web, Lab};

const VIP: &str = "10.0.0.100";

#[test]
fn two_queues_two_workers_and_every_reply_finds_its_connection() {
    let mut lab = Lab::new().unwrap();
    lab.segment("priv").unwrap();
    let client = lab.host("c1", "eth0", "02:00:00:00:0e:01", "10.1.1.10/24").unwrap();
    let director = lab.bare_host("c2").unwrap();
    lab.plug_queues(&director, "eth0", Lab::DEFAULT_SEGMENT, "02:00:00:00:0e:02", "10.1.1.243/24", 2).unwrap();
    lab.plug_queues(&director, "eth1", "priv", "02:00:00:00:0e:12", "192.168.100.254/24", 2).unwrap();
    for (i, name) in [(2u8, "rs1"), (3, "rs2")] {
        let ns = lab.bare_host(&format!("c{}", i + 1)).unwrap();
        lab.plug(&ns, "eth0", "priv", &format!("02:00:00:00:0e:2{i}"), &format!("192.168.100.{i}/24")).unwrap();
        lab.ok(&ns, &["ip", "route", "add", "10.1.1.0/24", "via", "192.168.100.254"]).unwrap();
        web::start_on(&mut lab, &ns, &format!("web-{name}"), name, &[], 8080).unwrap();
    }
    start_nat_director(&mut lab, &director, &client, VIP);
    adm_ok(
        &lab,
        &director,
        [
            format!("-A -t {VIP}:80 -s rr"),
            format!("-a -t {VIP}:80 -r 192.168.100.2:8080 -m"),
            format!("-a -t {VIP}:80 -r 192.168.100.3:8080 -m"),
            format!("-A -t {VIP}:81 -s rr"),
            format!("--add-laddr -t {VIP}:81 -z 192.168.100.254"),
            format!("-a -t {VIP}:81 -r 192.168.100.2:8080 --fullnat"),
            format!("-a -t {VIP}:81 -r 192.168.100.3:8080 --fullnat"),
        ],
    );
    for ip in ["192.168.100.2", "192.168.100.3"] {
        let url = format!("http://{ip}:8080/");
        let up = Lab::wait_for(std::time::Duration::from_secs(10), || {
            lab.run(&director, &["curl", "-s", "--max-time", "1", &url]).ok().filter(|o| o.status.success())
        });
        assert!(up.is_some(), "{url} not up");
    }
    // 40 connections per service from one client, each from a new port,
    // in one process so the test stays quick.
    let script = "import urllib.request,sys\nfor port in (80, 81):\n  got=[urllib.request.urlopen(f'http://10.0.0.100:{port}/',timeout=5).read().decode().strip() for _ in range(40)]\n  print(port, ' '.join(got))\n";
    let out = lab.ok(&client, &["python3", "-c", script]).unwrap_or_else(|e| panic!("{e}\n{}", lab.log("daemon")));
    for line in out.lines() {
        let got: Vec<&str> = line.split_whitespace().skip(1).collect();
        assert_eq!(got.len(), 40, "{line}");
        for w in got.windows(2) {
            assert!(w[0] != w[1] && w[0].starts_with("rs"), "{line}");
        }
    }
    let engine = engine_of(&lab, "daemon");
    lab.stop("daemon", libc::SIGTERM).unwrap();
    let log = plain_log(&lab, "daemon");
    if engine == "afxdp" {
        assert!(log.contains("workers=2"), "{log}");
        let worker1 = log.lines().find(|l| l.contains("worker stopped")).unwrap_or_else(|| panic!("{log}"));
        let forwarded: u64 = worker1
            .split("forwarded: ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let replies: u64 = worker1
            .split("replies: ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(forwarded + replies > 0, "the second worker carried nothing: {worker1}");
    }
}
