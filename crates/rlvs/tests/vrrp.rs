//! VRRP in namespaces: two directors as the seed's c2 (bond0, priority
//! 100) and c5 (eth0, priority 80) on one switch with a client, run by
//! rlvs (through its keepalived face) and by Debian's real keepalived.
//! Takeover times are printed; nothing here asserts on them.

mod common;

use rlvs_netlab::Lab;
use std::time::{Duration, Instant};

const VIP: &str = "10.0.0.100";
const C2_MAC: &str = "02:00:00:00:02:43";
const C5_MAC: &str = "02:00:00:00:02:46";

fn golden(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../../tests/golden/keepalived/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

struct Pair {
    lab: Lab,
    c2: String,
    c5: String,
    c1: String,
}

fn pair() -> Pair {
    let mut lab = Lab::new().unwrap();
    let c2 = lab.host("c2", "bond0", C2_MAC, "10.1.1.243/24").unwrap();
    let c5 = lab.host("c5", "eth0", C5_MAC, "10.1.1.246/24").unwrap();
    let c1 = lab.host("c1", "eth0", "02:00:00:00:02:10", "10.1.1.10/24").unwrap();
    // The seed's client reaches the VIP on its own link.
    lab.ok(&c1, &["ip", "route", "add", VIP, "dev", "eth0"]).unwrap();
    Pair { lab, c2, c5, c1 }
}

/// Which implementation runs a director.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Impl {
    Rlvs,
    Keepalived,
}

impl Pair {
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.lab.dir().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }

    /// Starts a director; `tag` names its log and pid files.
    fn start(&mut self, imp: Impl, ns: &str, tag: &str, conf: &str) -> u32 {
        let d = self.lab.dir().to_string_lossy().into_owned();
        let (p, r, c) = (format!("{d}/{tag}.pid"), format!("{d}/{tag}-vrrp.pid"), format!("{d}/{tag}-check.pid"));
        let bin = match imp {
            Impl::Rlvs => keepalived_link(&self.lab),
            Impl::Keepalived => "/usr/sbin/keepalived".to_string(),
        };
        let ns = ns.to_string();
        self.lab.spawn(&ns, tag, &[&bin, "-P", "-n", "-l", "-D", "-f", conf, "-p", &p, "-r", &r, "-c", &c]).unwrap()
    }

    /// Sends `sig` to every process of `ns` (keepalived runs a parent and
    /// a VRRP child) and returns at once: takeover times start here.
    fn signal_all(&self, ns: &str, sig: i32) {
        let pids = self.lab.ok(ns, &["ip", "netns", "pids", ns]).unwrap_or_default();
        let out = std::process::Command::new("ip").args(["netns", "pids", ns]).output().unwrap();
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace().chain(pids.split_whitespace()) {
            if let Ok(p) = pid.parse::<i32>() {
                // SAFETY: plain kill(2) on the lab's own processes.
                unsafe { libc::kill(p, sig) };
            }
        }
    }

    /// SIGTERM or SIGKILL on a director, then the time until `ns`/`ifname`
    /// holds the VIP; the stopped process is reaped afterwards.
    fn takeover(
        &mut self,
        tag: &str,
        from_ns: &str,
        sig: i32,
        link_down: Option<&str>,
        ns: &str,
        ifname: &str,
    ) -> Option<Duration> {
        let t0 = Instant::now();
        self.signal_all(from_ns, sig);
        if let Some(l) = link_down {
            self.lab.ok(from_ns, &["ip", "link", "set", l, "down"]).unwrap();
        }
        let got = self.wait_vip(ns, ifname, true, Duration::from_secs(10)).map(|_| t0.elapsed());
        let _ = self.lab.stop(tag, libc::SIGKILL);
        got
    }

    fn has_vip(&self, ns: &str, ifname: &str) -> bool {
        self.lab
            .ok(ns, &["ip", "-4", "-o", "addr", "show", "dev", ifname])
            .map(|o| o.contains(&format!("inet {VIP}/")))
            .unwrap_or(false)
    }

    /// Polls every 10 ms until the VIP is (or is not) on `ns`; the time it took.
    fn wait_vip(&self, ns: &str, ifname: &str, present: bool, timeout: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if self.has_vip(ns, ifname) == present {
                return Some(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    fn client_arp(&self) -> String {
        self.lab.ok(&self.c1, &["ip", "neigh", "show", VIP]).unwrap_or_default()
    }

    fn ping(&self) -> bool {
        self.lab.run(&self.c1, &["ping", "-c", "1", "-W", "1", VIP]).map(|o| o.status.success()).unwrap_or(false)
    }

    fn status(&self, ns: &str) -> serde_json::Value {
        let out = self.lab.ok(ns, &[&common::rlvs(), "status"]).unwrap_or_else(|_| "[]".into());
        serde_json::from_str(&out).unwrap_or(serde_json::Value::Null)
    }

    fn logs(&self, tags: &[&str]) -> String {
        tags.iter().map(|t| format!("--- {t}\n{}", self.lab.log(t))).collect()
    }
}

/// A `keepalived` link to the rlvs binary (the keepalived face).
fn keepalived_link(lab: &Lab) -> String {
    let link = lab.dir().join("keepalived");
    if !link.exists() {
        std::os::unix::fs::symlink(common::rlvs(), &link).unwrap();
    }
    link.to_string_lossy().into_owned()
}

/// A keepalived.conf for one side: VI_1, VRID 5, VIP 10.0.0.100/24 on
/// `ifname`, PASS 123456 (v2 only), plus `extra` instance lines.
fn conf(router_id: &str, ifname: &str, state: &str, prio: u8, version: u8, extra: &str) -> String {
    let auth = if version == 2 {
        "    authentication {\n        auth_type PASS\n        auth_pass 123456\n    }\n"
    } else {
        ""
    };
    format!(
        "global_defs {{\n   router_id {router_id}\n   vrrp_mcast_group4 224.0.100.100\n   vrrp_version {version}\n}}\n\
         vrrp_instance VI_1 {{\n    state {state}\n    interface {ifname}\n    virtual_router_id 5\n    priority {prio}\n    advert_int 1\n\
         {auth}{extra}    virtual_ipaddress {{\n        {VIP}/24 dev {ifname} label {ifname}:0\n    }}\n}}\n"
    )
}

/// rlvs on c2 and c5 with the seed's files, c2 holding the VIP; and c2's
/// file, to start it again.
fn seed_pair_elected() -> (Pair, String) {
    let mut p = pair();
    let (c2, c5) = (p.c2.clone(), p.c5.clone());
    let f2 = p.write("c2.conf", &golden("seed-c2.conf"));
    let f5 = p.write("c5.conf", &golden("seed-c5.conf"));
    p.start(Impl::Rlvs, &c2, "c2", &f2);
    p.start(Impl::Rlvs, &c5, "c5", &f5);
    assert!(p.wait_vip(&c2, "bond0", true, Duration::from_secs(10)).is_some(), "{}", p.logs(&["c2", "c5"]));
    (p, f2)
}

#[test]
fn seed_pair_elects_fails_over_and_preempts_back() {
    let (mut p, f2) = seed_pair_elected();
    let (c2, c5) = (p.c2.clone(), p.c5.clone());
    // Initial election: c2 (priority 100) holds the VIP, c5 stays backup.
    std::thread::sleep(Duration::from_secs(2));
    assert!(!p.has_vip(&c5, "eth0"), "{}", p.logs(&["c2", "c5"]));
    assert_eq!(p.status(&c5)[0]["state"], "BACKUP");
    assert_eq!(p.status(&c2)[0]["state"], "MASTER");
    assert!(p.lab.log("c2").contains("(VI_1) Entering MASTER STATE"), "keepalived's log line: {}", p.lab.log("c2"));
    assert!(p.ping(), "client reaches the VIP on c2");
    assert!(p.client_arp().contains(C2_MAC), "{}", p.client_arp());

    // SIGTERM on the master: priority 0, the backup takes over after its skew.
    let took = p.takeover("c2", &c2, libc::SIGTERM, None, &c5, "eth0").expect("c5 takes the VIP");
    println!("rlvs backup took over {:.3} s after SIGTERM on the rlvs master (priority 0 advert)", took.as_secs_f64());
    assert!(p.wait_vip(&c2, "bond0", false, Duration::from_secs(5)).is_some());
    // The client's ARP entry now points at c5 (gratuitous ARP), and it still reaches the VIP.
    let arp = Lab::wait_for(Duration::from_secs(3), || Some(p.client_arp()).filter(|a| a.contains(C5_MAC)));
    assert!(arp.is_some(), "client ARP: {}", p.client_arp());
    assert!(p.ping());

    // The master returns and preempts.
    p.start(Impl::Rlvs, &c2, "c2b", &f2);
    assert!(p.wait_vip(&c2, "bond0", true, Duration::from_secs(10)).is_some(), "{}", p.logs(&["c2b", "c5"]));
    assert!(p.wait_vip(&c5, "eth0", false, Duration::from_secs(5)).is_some(), "{}", p.logs(&["c2b", "c5"]));
    assert!(p
        .lab
        .log("c5")
        .contains("(VI_1) Master received advert from 10.1.1.243 with higher priority 100, ours 80"));

    // A crash with the link down: nothing tells c5, its master-down timer does.
    std::thread::sleep(Duration::from_secs(2));
    let took = p
        .takeover("c2b", &c2, libc::SIGKILL, Some("bond0"), &c5, "eth0")
        .expect("c5 takes over after master_down_interval");
    println!("rlvs backup took over {:.3} s after SIGKILL + link down on the rlvs master (master_down_interval 3.688 s from the last advert)", took.as_secs_f64());
    let arp = Lab::wait_for(Duration::from_secs(3), || Some(p.client_arp()).filter(|a| a.contains(C5_MAC)));
    assert!(arp.is_some() || p.ping(), "client reaches c5");
}

#[test]
fn unicast_pair_fails_over_and_back() {
    let mut p = pair();
    let (c2, c5) = (p.c2.clone(), p.c5.clone());
    let uc = |src: &str, peer: &str| format!("    unicast_src_ip {src}\n    unicast_peer {{\n        {peer}\n    }}\n");
    let f2 = p.write("c2.conf", &conf("node1", "bond0", "MASTER", 100, 2, &uc("10.1.1.243", "10.1.1.246")));
    let f5 = p.write("c5.conf", &conf("node2", "eth0", "BACKUP", 80, 2, &uc("10.1.1.246", "10.1.1.243")));
    p.start(Impl::Rlvs, &c2, "c2", &f2);
    p.start(Impl::Rlvs, &c5, "c5", &f5);
    assert!(p.wait_vip(&c2, "bond0", true, Duration::from_secs(10)).is_some(), "{}", p.logs(&["c2", "c5"]));
    std::thread::sleep(Duration::from_secs(2));
    assert!(!p.has_vip(&c5, "eth0"), "{}", p.logs(&["c2", "c5"]));
    assert!(p.status(&c5)[0]["stats"]["advert_rcvd"].as_u64().unwrap_or(0) >= 1, "adverts arrive by unicast");
    let took = p.takeover("c2", &c2, libc::SIGTERM, None, &c5, "eth0").expect("c5 takes over");
    println!("unicast: rlvs backup took over {:.3} s after SIGTERM on the master", took.as_secs_f64());
    p.start(Impl::Rlvs, &c2, "c2b", &f2);
    assert!(p.wait_vip(&c5, "eth0", false, Duration::from_secs(10)).is_some(), "{}", p.logs(&["c2b", "c5"]));
    assert!(p.has_vip(&c2, "bond0"));
}

#[test]
fn mismatched_authentication_is_never_adopted() {
    let mut p = pair();
    let (c2, c5) = (p.c2.clone(), p.c5.clone());
    let f2 = p.write("c2.conf", &golden("seed-c2.conf"));
    let f5 = p.write("c5.conf", &golden("seed-c5.conf").replace("auth_pass 123456", "auth_pass 654321"));
    p.start(Impl::Rlvs, &c2, "c2", &f2);
    p.start(Impl::Rlvs, &c5, "c5", &f5);
    // c5 refuses every advert of c2 and becomes master itself.
    assert!(p.wait_vip(&c2, "bond0", true, Duration::from_secs(10)).is_some());
    assert!(p.wait_vip(&c5, "eth0", true, Duration::from_secs(10)).is_some(), "{}", p.logs(&["c2", "c5"]));
    let st = p.status(&c5);
    assert!(st[0]["stats"]["auth_failure"].as_u64().unwrap() > 0, "{st}");
    assert_eq!(st[0]["state"], "MASTER");
    assert!(p.lab.log("c5").contains("(VI_1) received an invalid passwd!"));
}

#[test]
fn garbage_on_the_wire_changes_nothing() {
    let mut p = pair();
    let (c2, c5, c1) = (p.c2.clone(), p.c5.clone(), p.c1.clone());
    let f2 = p.write("c2.conf", &golden("seed-c2.conf"));
    let f5 = p.write("c5.conf", &golden("seed-c5.conf"));
    p.start(Impl::Rlvs, &c2, "c2", &f2);
    p.start(Impl::Rlvs, &c5, "c5", &f5);
    assert!(p.wait_vip(&c2, "bond0", true, Duration::from_secs(10)).is_some());
    std::thread::sleep(Duration::from_secs(2));
    let before = p.status(&c5)[0]["stats"].clone();
    // 2,000 protocol-112 datagrams from the client: random bytes, truncated
    // adverts, and well-formed VRID 5 adverts claiming priority 254 with a
    // wrong password, to the group and to c5 directly, TTL 255.
    let script = r#"
import random, socket, struct
random.seed(7)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
def csum(b):
    if len(b) % 2: b += b'\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
def advert(prio, pw):
    body = struct.pack('!BBBBBBH4s8s', 0x21, 5, prio, 1, 1, 1, 0, socket.inet_aton('10.0.0.100'), pw)
    c = csum(body)
    return body[:6] + struct.pack('!H', c) + body[8:]
for i in range(2000):
    kind = i % 4
    if kind == 0: pkt = bytes(random.getrandbits(8) for _ in range(random.randrange(0, 64)))
    elif kind == 1: pkt = advert(254, b'654321\0\0')
    elif kind == 2: pkt = advert(254, b'123456\0\0')[:random.randrange(0, 20)]
    else:
        pkt = bytearray(advert(254, b'123456\0\0')); pkt[random.randrange(0, 20)] ^= 1 << random.randrange(8); pkt = bytes(pkt)
    for dst in ('224.0.100.100', '10.1.1.246'):
        try: s.sendto(pkt, (dst, 0))
        except OSError: pass
"#;
    p.lab.ok(&c1, &["python3", "-c", script]).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let after = p.status(&c5);
    assert_eq!(after[0]["state"], "BACKUP", "{}", p.logs(&["c5"]));
    assert_eq!(p.status(&c2)[0]["state"], "MASTER");
    assert!(!p.has_vip(&c5, "eth0"));
    let rejected = |s: &serde_json::Value| -> u64 {
        [
            "packet_len_err",
            "auth_failure",
            "checksum_err",
            "addr_list_err",
            "version_err",
            "invalid_type_rcvd",
            "authtype_mismatch",
            "invalid_authtype",
            "interval_mismatch",
            "ip_ttl_err",
        ]
        .iter()
        .map(|k| s[k].as_u64().unwrap_or(0))
        .sum()
    };
    assert!(rejected(&after[0]["stats"]) > rejected(&before) + 1000, "before {before} after {}", after[0]["stats"]);
    // Both daemons are alive and answering.
    assert!(p.lab.run(&c5, &[&common::rlvs(), "status"]).unwrap().status.success());
}

/// One interoperation run: `master_impl` on c2 (priority 100) and
/// `backup_impl` on c5 (priority 80) with VRRP `version`; the backup takes
/// over on SIGTERM, the master preempts back when restarted, and the
/// backup takes over again after a crash. Returns (SIGTERM, crash) takeover times.
fn interop(master_impl: Impl, backup_impl: Impl, version: u8) -> (Duration, Duration) {
    let mut p = pair();
    let (c2, c5) = (p.c2.clone(), p.c5.clone());
    let f2 = p.write("c2.conf", &conf("node1", "bond0", "MASTER", 100, version, ""));
    let f5 = p.write("c5.conf", &conf("node2", "eth0", "BACKUP", 80, version, ""));
    p.start(backup_impl, &c5, "c5", &f5);
    p.start(master_impl, &c2, "c2", &f2);
    let what = format!("{master_impl:?} master, {backup_impl:?} backup, VRRPv{version}");
    assert!(p.wait_vip(&c2, "bond0", true, Duration::from_secs(15)).is_some(), "{what}: {}", p.logs(&["c2", "c5"]));
    assert!(p.wait_vip(&c5, "eth0", false, Duration::from_secs(10)).is_some(), "{what}: {}", p.logs(&["c2", "c5"]));
    std::thread::sleep(Duration::from_secs(2));
    assert!(!p.has_vip(&c5, "eth0"), "{what}: the backup adopted the master: {}", p.logs(&["c2", "c5"]));
    let term = p
        .takeover("c2", &c2, libc::SIGTERM, None, &c5, "eth0")
        .unwrap_or_else(|| panic!("{what}: no takeover: {}", p.logs(&["c2", "c5"])));
    p.start(master_impl, &c2, "c2b", &f2);
    assert!(p.wait_vip(&c2, "bond0", true, Duration::from_secs(15)).is_some(), "{what}: {}", p.logs(&["c2b", "c5"]));
    assert!(
        p.wait_vip(&c5, "eth0", false, Duration::from_secs(10)).is_some(),
        "{what}: no preemption back: {}",
        p.logs(&["c2b", "c5"])
    );
    std::thread::sleep(Duration::from_millis(2300));
    // A crash: every process of the master killed, its link down.
    let crash = p
        .takeover("c2b", &c2, libc::SIGKILL, Some("bond0"), &c5, "eth0")
        .unwrap_or_else(|| panic!("{what}: no takeover after crash"));
    println!("{what}: takeover {:.3} s after SIGTERM, {:.3} s after SIGKILL", term.as_secs_f64(), crash.as_secs_f64());
    (term, crash)
}

#[test]
fn interop_rlvs_master_keepalived_backup_v2() {
    interop(Impl::Rlvs, Impl::Keepalived, 2);
}

#[test]
fn interop_keepalived_master_rlvs_backup_v2() {
    interop(Impl::Keepalived, Impl::Rlvs, 2);
}

#[test]
fn interop_rlvs_master_keepalived_backup_v3() {
    interop(Impl::Rlvs, Impl::Keepalived, 3);
}

#[test]
fn interop_keepalived_master_rlvs_backup_v3() {
    interop(Impl::Keepalived, Impl::Rlvs, 3);
}

/// `rlvs ctl maintenance VI_1 on` on the master: FAULT, the peer takes the
/// VIP at once (priority 0); `off`: the master preempts back.
#[test]
fn maintenance_moves_the_vip_to_the_peer_and_back() {
    let (p, _) = seed_pair_elected();
    let (c2, c5) = (p.c2.clone(), p.c5.clone());
    let ctl = |p: &Pair, args: &[&str]| {
        let rlvs = common::rlvs();
        let mut argv = vec![rlvs.as_str(), "ctl", "maintenance"];
        argv.extend(args);
        let o = p.lab.run(&c2, &argv).unwrap();
        (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    };
    let (ok, out) = ctl(&p, &["VI_1", "on"]);
    assert!(ok && out.contains("(VI_1) taken down for maintenance"), "{out}");
    let moved = p.wait_vip(&c5, "eth0", true, Duration::from_secs(5));
    assert!(moved.is_some(), "{}", p.logs(&["c2", "c5"]));
    println!("VIP on the peer {:.3} s after `rlvs ctl maintenance VI_1 on`", moved.unwrap().as_secs_f64());
    assert!(p.wait_vip(&c2, "bond0", false, Duration::from_secs(2)).is_some());
    assert_eq!(p.status(&c2)[0]["state"], "FAULT");
    assert!(p.ping(), "the client reaches the VIP on the peer");
    assert!(p.lab.log("c2").contains("(VI_1) taken down for maintenance (FAULT); the peer takes over (ctl)"));
    let (ok, out) = ctl(&p, &["VI_9", "on"]);
    assert!(!ok && out.contains("no vrrp_instance VI_9"), "{out}");
    let (ok, _) = ctl(&p, &["VI_1", "off"]);
    assert!(ok);
    assert!(p.wait_vip(&c2, "bond0", true, Duration::from_secs(10)).is_some(), "{}", p.logs(&["c2", "c5"]));
    assert!(p.wait_vip(&c5, "eth0", false, Duration::from_secs(5)).is_some());
    assert!(p.ping());
}
