//! Checkers against real servers that misbehave: one that accepts and
//! never answers, one that answers garbage, a MISC_CHECK script that never
//! exits. Each is bounded by its timeout, logged, and its server taken out;
//! and while they hang, VRRP fails over on time (the checkers run on a
//! thread of their own).

mod common;

use rlvs_netlab::Lab;
use std::time::{Duration, Instant};

const HANG: &str = r#"
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(64)
held = []
while True:
    c, _ = s.accept(); held.append(c)   # accept, read nothing, answer nothing
"#;

const GARBAGE: &str = r#"
import os, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(64)
while True:
    c, _ = s.accept()
    try:
        c.recv(4096); c.sendall(os.urandom(3000)); c.close()
    except OSError:
        pass
"#;

#[test]
fn hung_and_garbage_servers_are_bounded_and_vrrp_fails_over_on_time() {
    let mut lab = Lab::new().unwrap();
    let c2 = lab.host("c2", "bond0", "02:00:00:00:07:43", "10.1.1.243/24").unwrap();
    let c5 = lab.host("c5", "eth0", "02:00:00:00:07:46", "10.1.1.246/24").unwrap();
    let rs = lab.host("rs", "eth0", "02:00:00:00:07:44", "10.1.1.244/24").unwrap();
    let d = lab.dir().to_string_lossy().into_owned();
    std::fs::write(format!("{d}/hang.py"), HANG).unwrap();
    std::fs::write(format!("{d}/garbage.py"), GARBAGE).unwrap();
    lab.spawn(&rs, "hang", &["python3", &format!("{d}/hang.py"), "81"]).unwrap();
    lab.spawn(&rs, "garbage", &["python3", &format!("{d}/garbage.py"), "82"]).unwrap();
    let forever = format!("{d}/forever.sh");
    std::fs::write(&forever, "#!/bin/sh\nexec sleep 1000\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&forever, std::fs::Permissions::from_mode(0o755)).unwrap();
    lab.wait_listening(&rs, "tcp", 81, "hang").unwrap();
    lab.wait_listening(&rs, "tcp", 82, "garbage").unwrap();
    let vs = |port: u16, check: &str| {
        format!(
            "virtual_server 10.0.0.100 {port} {{\n delay_loop 1\n lb_algo rr\n lb_kind DR\n protocol TCP\n \
             real_server 10.1.1.244 {port} {{\n  weight 1\n  {check}\n }}\n}}\n"
        )
    };
    let http = "HTTP_GET {\n   url {\n    path /\n   }\n   connect_timeout 2\n   retry 0\n  }";
    let misc = format!("MISC_CHECK {{\n   misc_path {forever}\n   misc_timeout 2\n   retry 0\n  }}");
    let conf = |state: &str, prio: u8, ifname: &str| {
        format!(
            "vrrp_instance VI_1 {{\n state {state}\n interface {ifname}\n virtual_router_id 5\n priority {prio}\n advert_int 1\n \
             virtual_ipaddress {{\n  10.0.0.100/24 dev {ifname}\n }}\n}}\n{}{}{}",
            vs(81, http),
            vs(82, http),
            vs(83, &misc)
        )
    };
    std::fs::write(format!("{d}/c2.conf"), conf("MASTER", 100, "bond0")).unwrap();
    std::fs::write(format!("{d}/c5.conf"), conf("BACKUP", 80, "eth0")).unwrap();
    let face = lab.dir().join("keepalived");
    std::os::unix::fs::symlink(common::rlvs(), &face).unwrap();
    let face = face.to_string_lossy().into_owned();
    for (ns, tag) in [(&c2, "c2"), (&c5, "c5")] {
        let (ns, f) = (ns.clone(), format!("{d}/{tag}.conf"));
        let pids = [format!("{d}/{tag}.pid"), format!("{d}/{tag}v.pid"), format!("{d}/{tag}c.pid")];
        lab.spawn(&ns, tag, &[&face, "-n", "-l", "-f", &f, "-p", &pids[0], "-r", &pids[1], "-c", &pids[2]]).unwrap();
    }
    let has_vip = |ns: &str, ifname: &str| {
        lab.ok(ns, &["ip", "-4", "-o", "addr", "show", "dev", ifname])
            .map(|o| o.contains(" 10.0.0.100/"))
            .unwrap_or(false)
    };
    assert!(
        Lab::wait_for(Duration::from_secs(10), || has_vip(&c2, "bond0").then_some(())).is_some(),
        "{}",
        lab.log("c2")
    );
    // The hung probes are outstanding right now (connect succeeded, no
    // answer for 2 s; the script sleeps): fail over under them.
    std::thread::sleep(Duration::from_millis(1500));
    let t0 = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(lab.spawn_pid("c2").unwrap() as i32, libc::SIGTERM) };
    assert!(
        Lab::wait_for(Duration::from_secs(10), || has_vip(&c5, "eth0").then_some(())).is_some(),
        "{}",
        lab.log("c5")
    );
    println!("failover with hung checkers on both directors: {:.3} s", t0.elapsed().as_secs_f64());
    // Each misbehaving server is declared down within its timeout and logged.
    let log = Lab::wait_for(Duration::from_secs(15), || {
        let l = lab.log("c5");
        (l.contains("Removing service [10.1.1.244]:tcp:81")
            && l.contains("Removing service [10.1.1.244]:tcp:82")
            && l.contains("Removing service [10.1.1.244]:tcp:83"))
        .then_some(l)
    })
    .unwrap_or_else(|| panic!("{}", lab.log("c5")));
    assert!(log.contains("Last check of service [10.1.1.244]:tcp:81 failed: Timeout reading data"), "{log}");
    assert!(log.contains("Last check of service [10.1.1.244]:tcp:82 failed: HTTP response header not found"), "{log}");
    assert!(log.contains("Last check of service [10.1.1.244]:tcp:83 failed: timed out"), "{log}");
    // None of them is in the table; the daemon answers.
    let adm = common::ipvsadm(&lab);
    let table = lab.ok(&c5, &[&adm, "-Ln"]).unwrap();
    assert!(!table.contains("-> 10.1.1.244"), "{table}");
    assert!(lab.run(&c5, &[&common::rlvs(), "status"]).unwrap().status.success());
    // The script the checker started was killed, not left behind.
    let left = lab.run(&c5, &["pgrep", "-f", "sleep 1000"]).unwrap();
    let n = String::from_utf8_lossy(&left.stdout).lines().count();
    assert!(n <= 1, "at most the one running now: {n}");
}
