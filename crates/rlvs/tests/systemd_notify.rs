//! The keepalived face as systemd runs it (`Type=notify`, a watchdog):
//! the notifications it sends over a real NOTIFY_SOCKET, `rlvs ctl reload
//! --wait` answering only once the reload is applied (or saying why it
//! was refused), and the watchdog's pings stopping while the daemon is
//! frozen. The lab's lab/systemd.sh runs the same under real systemd.

mod common;

use common::*;
use rlvs_netlab::Lab;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

const CONF: &str = "vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        10.0.0.100/24 dev eth0
    }
}
virtual_server 10.0.0.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.1.1.2 80 {
        weight WEIGHT
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
";

/// Every datagram the daemon sent within `wait`, each as its lines.
fn collect(sock: &UnixDatagram, wait: Duration) -> Vec<String> {
    let end = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => out.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => break,
        }
    }
    out
}

/// Reads until a datagram contains `want` (at most `wait`); all read so far.
fn until(sock: &UnixDatagram, want: &str, wait: Duration) -> Vec<String> {
    let end = Instant::now() + wait;
    let mut seen = Vec::new();
    while Instant::now() < end {
        let got = collect(sock, Duration::from_millis(200));
        let found = got.iter().any(|d| d.contains(want));
        seen.extend(got);
        if found {
            return seen;
        }
    }
    panic!("no {want:?} within {wait:?}; got {seen:?}");
}

#[test]
fn notify_reload_wait_and_a_watchdog_that_stops_for_a_frozen_daemon() {
    let mut lab = Lab::new().unwrap();
    let d = lab.host("d", "eth0", "02:00:00:00:00:0d", "10.1.1.1/24").unwrap();
    // The real server, so its check passes and it stays in the table.
    let r = lab.host("r", "eth0", "02:00:00:00:00:0e", "10.1.1.2/24").unwrap();
    lab.spawn(&r, "web", &["python3", "-m", "http.server", "80", "--bind", "10.1.1.2"]).unwrap();
    lab.wait_listening(&r, "tcp", 80, "web").unwrap();
    let sock_path = lab.dir().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let conf = lab.dir().join("keepalived.conf");
    std::fs::write(&conf, CONF.replace("WEIGHT", "1")).unwrap();
    let keepalived = lab.dir().join("keepalived");
    std::os::unix::fs::symlink(rlvs(), &keepalived).unwrap();
    let notify = format!("NOTIFY_SOCKET={}", sock_path.display());
    let (k, c, pid) = (keepalived.display().to_string(), conf.display().to_string(), lab.dir().join("k"));
    let p = |s: &str| format!("{}{s}.pid", pid.display());
    lab.spawn(
        &d,
        "k",
        &[
            "env",
            &notify,
            "WATCHDOG_USEC=2000000",
            "RLVS_ENGINE=none",
            &k,
            "--dont-fork",
            "-l",
            "-G",
            "-f",
            &c,
            "-p",
            &p(""),
            "-r",
            &p("-vrrp"),
            "-c",
            &p("-check"),
        ],
    )
    .unwrap();
    let start = until(&sock, "READY=1", Duration::from_secs(20));
    let ready = start.iter().find(|d| d.contains("READY=1")).unwrap();
    assert!(ready.contains("STATUS=VI_1 "), "the status line names the instance: {ready}");
    assert!(ready.contains("1 virtual service; engine none"), "{ready}");
    // The watchdog pings (period 2 s: every 1.5 s at the earliest) while
    // the VRRP loop, the checkers and the engine all turn.
    let pings = collect(&sock, Duration::from_secs(5));
    let n = pings.iter().filter(|d| d.contains("WATCHDOG=1")).count();
    assert!(n >= 2, "pings while healthy: {pings:?}\n{}", lab.log("k"));
    let master = Lab::wait_for(Duration::from_secs(10), || {
        let s = collect(&sock, Duration::from_secs(2));
        s.iter().any(|d| d.contains("WATCHDOG=1") && d.contains("STATUS=VI_1 MASTER")).then_some(())
    });
    assert!(master.is_some(), "the status follows VRRP to MASTER\n{}", lab.log("k"));

    // A reload that waits: answered only when the new weight is in the table.
    std::fs::write(&conf, CONF.replace("WEIGHT", "7")).unwrap();
    let out = lab.run(&d, &[&rlvs(), "ctl", "reload", "--wait"]).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let adm = ipvsadm(&lab);
    let weight = |lab: &Lab| {
        let listing = lab.ok(&d, &[&adm, "-Ln"]).unwrap();
        let line = listing.lines().find(|l| l.contains("-> 10.1.1.2:80")).map(str::to_string);
        line.and_then(|l| l.split_whitespace().nth(3).map(str::to_string)).unwrap_or(listing)
    };
    assert_eq!(weight(&lab), "7", "the new weight is in the table when the reload returns");
    let around = until(&sock, "READY=1", Duration::from_secs(5));
    assert!(around.iter().any(|d| d.contains("RELOADING=1") && d.contains("MONOTONIC_USEC=")), "{around:?}");

    // A file with errors: refused, said why, the running one kept.
    std::fs::write(&conf, format!("{}vrrp_instance BROKEN {{\n}}\n", CONF.replace("WEIGHT", "3"))).unwrap();
    let out = lab.run(&d, &[&rlvs(), "ctl", "reload", "--wait"]).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("reload refused") && err.contains("has errors"), "{err}");
    assert_eq!(weight(&lab), "7", "the running configuration is kept");

    // Frozen: no pings at all; thawed: they resume.
    let pid = lab.spawn_pid("k").unwrap() as i32;
    collect(&sock, Duration::from_millis(100));
    // SAFETY: signals to our own child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let frozen = collect(&sock, Duration::from_secs(4));
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert!(frozen.iter().all(|d| !d.contains("WATCHDOG=1")), "pings from a frozen daemon: {frozen:?}");
    until(&sock, "WATCHDOG=1", Duration::from_secs(6));

    lab.stop("k", libc::SIGTERM).unwrap();
    let end = collect(&sock, Duration::from_millis(500));
    assert!(end.iter().any(|d| d.contains("STOPPING=1")), "{end:?}");
}
