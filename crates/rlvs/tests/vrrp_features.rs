//! VRRP beyond the seed: IPv6 with VRRPv3 against keepalived, tracked
//! scripts and interfaces, notify scripts and their arguments, sync
//! groups, SIGHUP reloads, and the keepalived face's `-t`.

mod common;

use rlvs_netlab::Lab;
use std::time::Duration;

struct Lab2 {
    lab: Lab,
    c2: String,
    c5: String,
}

fn lab2() -> Lab2 {
    let mut lab = Lab::new().unwrap();
    let c2 = lab.host("c2", "bond0", "02:00:00:00:04:43", "10.1.1.243/24").unwrap();
    let c5 = lab.host("c5", "eth0", "02:00:00:00:04:46", "10.1.1.246/24").unwrap();
    Lab2 { lab, c2, c5 }
}

impl Lab2 {
    fn dir(&self) -> String {
        self.lab.dir().to_string_lossy().into_owned()
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.lab.dir().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }

    fn start(&mut self, bin: &str, ns: &str, tag: &str, conf: &str) -> u32 {
        let d = self.dir();
        let (p, r, c) = (format!("{d}/{tag}.pid"), format!("{d}/{tag}v.pid"), format!("{d}/{tag}c.pid"));
        let ns = ns.to_string();
        self.lab.spawn(&ns, tag, &[bin, "-P", "-n", "-l", "-D", "-f", conf, "-p", &p, "-r", &r, "-c", &c]).unwrap()
    }

    fn rlvs_face(&self) -> String {
        let link = self.lab.dir().join("keepalived");
        if !link.exists() {
            std::os::unix::fs::symlink(common::rlvs(), &link).unwrap();
        }
        link.to_string_lossy().into_owned()
    }

    fn has(&self, ns: &str, ifname: &str, addr: &str) -> bool {
        self.lab
            .ok(ns, &["ip", "-o", "addr", "show", "dev", ifname])
            .map(|o| o.contains(&format!(" {addr}/")))
            .unwrap_or(false)
    }

    fn wait(&self, ns: &str, ifname: &str, addr: &str, present: bool, secs: u64) -> bool {
        Lab::wait_for(Duration::from_secs(secs), || (self.has(ns, ifname, addr) == present).then_some(())).is_some()
    }

    fn state(&self, ns: &str, i: usize) -> String {
        let out = self.lab.ok(ns, &[&common::rlvs(), "status"]).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        v[i]["state"].as_str().unwrap_or("").to_string()
    }

    fn logs(&self, tags: &[&str]) -> String {
        tags.iter().map(|t| format!("--- {t}\n{}", self.lab.log(t))).collect()
    }
}

fn instance(name: &str, vrid: u8, ifname: &str, state: &str, prio: u8, vip: &str, extra: &str) -> String {
    format!(
        "vrrp_instance {name} {{\n state {state}\n interface {ifname}\n virtual_router_id {vrid}\n priority {prio}\n advert_int 1\n\
         {extra} virtual_ipaddress {{\n  {vip} dev {ifname}\n }}\n}}\n"
    )
}

#[test]
fn ipv6_vrrpv3_interoperates_with_keepalived() {
    let mut l = lab2();
    let (c2, c5) = (l.c2.clone(), l.c5.clone());
    for (ns, ifname, a) in [(&c2, "bond0", "fd00:1::243/64"), (&c5, "eth0", "fd00:1::246/64")] {
        l.lab.ok(ns, &["ip", "addr", "add", a, "dev", ifname, "nodad"]).unwrap();
    }
    let vip = "fd00:1::100";
    let f2 = l.write("c2.conf", &instance("VI_6", 7, "bond0", "MASTER", 100, &format!("{vip}/64"), ""));
    let f5 = l.write("c5.conf", &instance("VI_6", 7, "eth0", "BACKUP", 80, &format!("{vip}/64"), ""));
    let face = l.rlvs_face();
    l.start(&face, &c2, "c2", &f2);
    l.start("/usr/sbin/keepalived", &c5, "c5", &f5);
    assert!(l.wait(&c2, "bond0", vip, true, 15), "{}", l.logs(&["c2", "c5"]));
    std::thread::sleep(Duration::from_secs(3));
    assert!(!l.has(&c5, "eth0", vip), "keepalived adopted rlvs's VRRPv3 IPv6 adverts: {}", l.logs(&["c2", "c5"]));
    // rlvs hands over with priority 0; keepalived takes the address.
    l.lab.stop("c2", libc::SIGTERM).unwrap();
    assert!(l.wait(&c5, "eth0", vip, true, 10), "{}", l.logs(&["c2", "c5"]));
    assert!(!l.has(&c2, "bond0", vip));
    // And back: rlvs preempts keepalived.
    l.start(&face, &c2, "c2b", &f2);
    assert!(l.wait(&c5, "eth0", vip, false, 15), "{}", l.logs(&["c2b", "c5"]));
    assert!(l.has(&c2, "bond0", vip));
    assert!(l.lab.log("c5").contains("with higher priority 100"), "{}", l.lab.log("c5"));
}

#[test]
fn a_failing_tracked_script_lowers_priority_and_notify_scripts_get_keepalived_arguments() {
    let mut l = lab2();
    let (c2, c5) = (l.c2.clone(), l.c5.clone());
    let d = l.dir();
    let notify = l.write("notify.sh", &format!("#!/bin/sh\necho \"$@\" >> {d}/notify-$(hostname -s 2>/dev/null || echo x).log\necho \"$@\" >> {d}/notify.log\n"));
    let master_only = l.write("master.sh", &format!("#!/bin/sh\necho master >> {d}/master.log\n"));
    for f in [&notify, &master_only] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let ok_file = format!("{d}/c2-healthy");
    std::fs::write(&ok_file, "").unwrap();
    let script = format!(
        "vrrp_script chk {{\n script \"/usr/bin/test -f {ok_file}\"\n interval 1\n weight -30\n fall 1\n rise 1\n}}\n"
    );
    let c2_extra = format!(" track_script {{\n  chk\n }}\n notify {notify}\n");
    let c5_extra = format!(" notify {notify}\n notify_master {master_only}\n");
    let f2 = l.write(
        "c2.conf",
        &format!("{script}{}", instance("VI_1", 5, "bond0", "MASTER", 100, "10.0.0.100/24", &c2_extra)),
    );
    let f5 = l.write("c5.conf", &instance("VI_1", 5, "eth0", "BACKUP", 80, "10.0.0.100/24", &c5_extra));
    let face = l.rlvs_face();
    l.start(&face, &c2, "c2", &f2);
    l.start(&face, &c5, "c5", &f5);
    assert!(l.wait(&c2, "bond0", "10.0.0.100", true, 10), "{}", l.logs(&["c2", "c5"]));
    std::thread::sleep(Duration::from_secs(2));
    assert!(!l.has(&c5, "eth0", "10.0.0.100"));
    // The check fails: c2 drops to 70, below c5's 80, and c5 preempts.
    std::fs::remove_file(&ok_file).unwrap();
    assert!(l.wait(&c5, "eth0", "10.0.0.100", true, 10), "{}", l.logs(&["c2", "c5"]));
    assert!(l.wait(&c2, "bond0", "10.0.0.100", false, 5));
    assert!(l.lab.log("c2").contains("(VI_1) Changing effective priority from 100 to 70"), "{}", l.lab.log("c2"));
    // It recovers: back to 100, c2 preempts again.
    std::fs::write(&ok_file, "").unwrap();
    assert!(l.wait(&c2, "bond0", "10.0.0.100", true, 10), "{}", l.logs(&["c2", "c5"]));
    // Notify scripts: `notify` gets INSTANCE name state priority.
    let log = Lab::wait_for(Duration::from_secs(3), || {
        let s = std::fs::read_to_string(format!("{d}/notify.log")).unwrap_or_default();
        (s.contains("INSTANCE VI_1 MASTER 80") && s.contains("INSTANCE VI_1 BACKUP 80")).then_some(s)
    });
    assert!(log.is_some(), "notify log: {:?}", std::fs::read_to_string(format!("{d}/notify.log")));
    let s = std::fs::read_to_string(format!("{d}/notify.log")).unwrap();
    assert!(s.contains("INSTANCE VI_1 MASTER 100") && s.contains("INSTANCE VI_1 BACKUP 70"), "{s}");
    assert!(std::fs::read_to_string(format!("{d}/master.log")).unwrap_or_default().contains("master"));
}

#[test]
fn sync_group_members_fail_over_together_when_a_tracked_link_drops() {
    let mut l = lab2();
    let (c2, c5) = (l.c2.clone(), l.c5.clone());
    // A second link on each director for the second instance.
    l.lab.segment("seg2").unwrap();
    l.lab.plug(&c2, "bond1", "seg2", "02:00:00:00:05:43", "10.2.2.243/24").unwrap();
    l.lab.plug(&c5, "eth1", "seg2", "02:00:00:00:05:46", "10.2.2.246/24").unwrap();
    let group = "vrrp_sync_group G {\n group {\n  VI_1\n  VI_2\n }\n}\n";
    let c2conf = format!(
        "{}{}{group}",
        instance("VI_1", 5, "bond0", "MASTER", 100, "10.0.0.100/24", ""),
        instance("VI_2", 6, "bond1", "MASTER", 100, "10.0.2.100/24", "")
    );
    let c5conf = format!(
        "{}{}{group}",
        instance("VI_1", 5, "eth0", "BACKUP", 80, "10.0.0.100/24", ""),
        instance("VI_2", 6, "eth1", "BACKUP", 80, "10.0.2.100/24", "")
    );
    let (f2, f5) = (l.write("c2.conf", &c2conf), l.write("c5.conf", &c5conf));
    let face = l.rlvs_face();
    l.start(&face, &c2, "c2", &f2);
    l.start(&face, &c5, "c5", &f5);
    assert!(
        l.wait(&c2, "bond0", "10.0.0.100", true, 10) && l.wait(&c2, "bond1", "10.0.2.100", true, 10),
        "{}",
        l.logs(&["c2", "c5"])
    );
    std::thread::sleep(Duration::from_secs(2));
    // VI_2's link goes down on c2: VI_2 faults and takes VI_1 with it.
    l.lab.ok(&c2, &["ip", "link", "set", "bond1", "down"]).unwrap();
    assert!(l.wait(&c5, "eth0", "10.0.0.100", true, 10), "VI_1 followed VI_2: {}", l.logs(&["c2", "c5"]));
    assert!(l.wait(&c5, "eth1", "10.0.2.100", true, 10));
    assert!(l.wait(&c2, "bond0", "10.0.0.100", false, 5));
    assert_eq!((l.state(&c2, 0), l.state(&c2, 1)), ("FAULT".to_string(), "FAULT".to_string()));
    // The link returns: both come back to c2 together.
    l.lab.ok(&c2, &["ip", "link", "set", "bond1", "up"]).unwrap();
    assert!(l.wait(&c2, "bond0", "10.0.0.100", true, 15), "{}", l.logs(&["c2", "c5"]));
    assert!(l.wait(&c2, "bond1", "10.0.2.100", true, 10));
    assert!(l.wait(&c5, "eth0", "10.0.0.100", false, 5));
}

#[test]
fn sighup_applies_changes_and_keeps_running_state_on_a_bad_file() {
    let mut l = lab2();
    let (c2, c5) = (l.c2.clone(), l.c5.clone());
    let other = instance("VI_9", 9, "bond0", "MASTER", 100, "10.0.9.100/24", "");
    let f2 =
        l.write("c2.conf", &format!("{}{other}", instance("VI_1", 5, "bond0", "MASTER", 100, "10.0.0.100/24", "")));
    let f5 = l.write("c5.conf", &instance("VI_1", 5, "eth0", "BACKUP", 80, "10.0.0.100/24", ""));
    let face = l.rlvs_face();
    let pid = l.start(&face, &c2, "c2", &f2);
    l.start(&face, &c5, "c5", &f5);
    assert!(l.wait(&c2, "bond0", "10.0.0.100", true, 10) && l.wait(&c2, "bond0", "10.0.9.100", true, 10));
    std::thread::sleep(Duration::from_secs(2));
    // A file that does not parse: nothing changes, the log says why.
    std::fs::write(&f2, "vrrp_instance VI_1 {\n virtual_router_id 300\n}\n").unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_secs(2));
    assert!(l.lab.log("c2").contains("Reload failed, keeping the running configuration"), "{}", l.lab.log("c2"));
    assert!(l.has(&c2, "bond0", "10.0.0.100") && l.has(&c2, "bond0", "10.0.9.100"));
    // VI_1's priority drops to 50: c5 (80) preempts; VI_9, unchanged,
    // stays master with its address throughout.
    let text = format!("{}{other}", instance("VI_1", 5, "bond0", "BACKUP", 50, "10.0.0.100/24", ""));
    std::fs::write(&f2, text).unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(pid as i32, libc::SIGHUP) };
    assert!(l.wait(&c5, "eth0", "10.0.0.100", true, 10), "{}", l.logs(&["c2", "c5"]));
    assert!(l.wait(&c2, "bond0", "10.0.0.100", false, 5));
    assert!(l.has(&c2, "bond0", "10.0.9.100"), "the unchanged instance kept its VIP");
    assert_eq!(l.state(&c2, 1), "MASTER");
    assert!(l.lab.log("c2").contains("Reload finished"));
}

#[test]
fn config_test_exits_with_keepalived_codes() {
    let l = lab2();
    let face = l.rlvs_face();
    let seed = format!("{}/../../tests/golden/keepalived/seed-c2.conf", env!("CARGO_MANIFEST_DIR"));
    // The seed's file: keepalived -t said five things and exited 5.
    let out = l.lab.run(&l.c2, &[&face, "-t", "-f", &seed]).unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("seed-c2.conf:44:13: warning: Unknown keyword 'nb_get_retry'"), "{err}");
    assert!(err.contains("seed-c2.conf:61:1: warning: Extra '}' found"), "{err}");
    // A clean file: 0. On c5 the seed's c2 file names bond0, which is not there.
    let clean = l.write("clean.conf", &instance("VI_1", 5, "bond0", "MASTER", 100, "10.0.0.100/24", ""));
    assert_eq!(l.lab.run(&l.c2, &[&face, "-t", "-f", &clean]).unwrap().status.code(), Some(0));
    let out = l.lab.run(&l.c5, &[&face, "-t", "-f", &clean]).unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("WARNING - interface bond0 for vrrp_instance VI_1 doesn't exist")
    );
    // rlvs daemon --strict refuses a file with any warning.
    let out = l.lab.run(&l.c2, &[&common::rlvs(), "daemon", "--engine", "none", "--strict", "-f", &seed]).unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has warnings (--strict)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No file: 4 (keepalived's CONFIG exit code).
    assert_eq!(l.lab.run(&l.c2, &[&face, "-t", "-f", "/nonexistent/k.conf"]).unwrap().status.code(), Some(4));
}
