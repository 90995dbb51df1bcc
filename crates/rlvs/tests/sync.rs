//! Connection sync between two rlvs directors, set up as an operator does
//! with ipvsadm (--start-daemon master on one, backup on the other), and
//! as keepalived does (lvs_sync_daemon following the VRRP instance): the
//! backup lists the master's connections, and after the master is killed
//! and its link taken down, the backup takes the VIP and carries twenty
//! 5 MB downloads, paced to stay on the wire to their last byte, to the
//! end, byte-exact, without a reset; 200 keep-alive sessions each answer
//! their next request. DR, on whichever engine the run uses.

mod common;

use common::*;
use rlvs_netlab::{web, Lab};
use std::time::Duration;

const VIP: &str = "10.0.0.100";
const SIZE: usize = 5 * 1024 * 1024;
const RATE: usize = 512 * 1024;
const DOWNLOADS: usize = 20;
const BACKUP_MAC: &str = "02:00:00:00:51:02";

struct Pair {
    lab: Lab,
    client: String,
    master: String,
    backup: String,
}

fn build() -> Pair {
    let mut lab = Lab::new().unwrap();
    let master = lab.host("sm", "eth0", "02:00:00:00:51:01", "192.168.100.251/24").unwrap();
    let backup = lab.host("sb", "eth0", BACKUP_MAC, "192.168.100.252/24").unwrap();
    let client = lab.host("sc", "eth0", "02:00:00:00:51:10", "192.168.100.10/24").unwrap();
    let rlvs = rlvs();
    for i in 1..=3u8 {
        let rs = lab
            .host(&format!("s{i}"), "eth0", &format!("02:00:00:00:51:2{i}"), &format!("192.168.100.{i}/24"))
            .unwrap();
        lab.ok(&rs, &[&rlvs, "realserver", "start", "--vip", VIP]).unwrap();
        web::paced(&mut lab, &rs, &format!("web{i}"), SIZE, RATE, 80).unwrap();
    }
    for (ns, name) in [(&master, "master"), (&backup, "backup")] {
        start_daemon(&mut lab, ns, name, &["--metrics", "127.0.0.1:9650"]);
        let mut cmds = vec![format!("-A -t {VIP}:80 -s rr")];
        cmds.extend((1..=3).map(|i| format!("-a -t {VIP}:80 -r 192.168.100.{i}:80 -g")));
        adm_ok(&lab, ns, cmds);
    }
    adm_ok(&lab, &master, ["--start-daemon master --mcast-interface eth0 --syncid 9"]);
    adm_ok(&lab, &backup, ["--start-daemon backup --mcast-interface eth0 --syncid 9"]);
    lab.ok(&master, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "eth0"]).unwrap();
    lab.ok(&client, &["ip", "route", "add", VIP, "dev", "eth0"]).unwrap();
    let ok = Lab::wait_for(Duration::from_secs(10), || {
        lab.run(&client, &["curl", "-s", "--max-time", "2", &format!("http://{VIP}/")])
            .ok()
            .filter(|o| o.status.success())
    });
    assert!(ok.is_some(), "the VIP does not answer:\n{}", lab.log("master"));
    Pair { lab, client, master, backup }
}

/// Starts the paced downloads from `client` in the background, each
/// bounded by `max_time` seconds.
fn start_downloads(lab: &mut Lab, client: &str, max_time: u32) {
    let d = lab.dir().to_string_lossy().into_owned();
    let script = format!(
        "for i in $(seq 1 {DOWNLOADS}); do (curl -sS --max-time {max_time} -o {d}/dl$i http://{VIP}/big 2>{d}/err$i; \
         echo $? > {d}/rc$i) & done; wait; echo done"
    );
    lab.spawn(client, "downloads", &["sh", "-c", &script]).unwrap();
}

/// Waits for the downloads; the ones that failed or arrived different,
/// with curl's word on each.
fn failed_downloads(lab: &Lab) -> Vec<String> {
    let done = Lab::wait_for(Duration::from_secs(150), || lab.log("downloads").contains("done").then_some(()));
    assert!(done.is_some(), "downloads did not finish");
    let want = web::paced_body(SIZE);
    (1..=DOWNLOADS)
        .filter_map(|i| {
            let rc = std::fs::read_to_string(lab.dir().join(format!("rc{i}"))).unwrap_or_default();
            let got = std::fs::read(lab.dir().join(format!("dl{i}"))).unwrap_or_default();
            let err = std::fs::read_to_string(lab.dir().join(format!("err{i}"))).unwrap_or_default();
            (rc.trim() != "0" || got != want)
                .then(|| format!("download {i}: exit {}, {} bytes, {}", rc.trim(), got.len(), err.trim()))
        })
        .collect()
}

/// Opens the keep-alive sessions and waits until each has answered once;
/// returns the files `sessions_answer` needs.
fn open_sessions(lab: &mut Lab, client: &str) -> (String, String) {
    let d = lab.dir().to_string_lossy().into_owned();
    let py = format!("{d}/keepalive.py");
    std::fs::write(&py, KEEPALIVE).unwrap();
    let (go, out) = (format!("{d}/go"), format!("{d}/sessions"));
    lab.spawn(client, "sessions", &["python3", &py, &SESSIONS.to_string(), VIP, &go, &out]).unwrap();
    let ready = Lab::wait_for(Duration::from_secs(30), || std::fs::read_to_string(format!("{out}.ready")).ok());
    assert_eq!(ready.as_deref(), Some("200"), "keep-alive sessions before the failover:\n{}", lab.log("sessions"));
    (go, out)
}

/// Every keep-alive session answers its next request on the same socket.
fn sessions_answer(lab: &Lab, go: &str, out: &str) {
    std::fs::write(go, "").unwrap();
    let sessions = Lab::wait_for(Duration::from_secs(60), || std::fs::read_to_string(out).ok());
    assert_eq!(
        sessions.as_deref().and_then(|s| s.split_once(" [")).map(|(n, _)| n),
        Some("200 200"),
        "every keep-alive session answers its next request on the same socket: {sessions:?}\n{}",
        lab.log("sessions")
    );
}

fn established(lab: &Lab, ns: &str) -> usize {
    adm(lab, ns, "-Lnc").0.lines().filter(|l| l.contains("ESTABLISHED") && l.contains(&format!("{VIP}:80"))).count()
}

#[test]
fn ipvsadm_lists_the_sync_daemons_as_ipvsadm_does() {
    let p = build();
    let (out, err, code) = adm(&p.lab, &p.master, "-L --daemon");
    assert_eq!((err.as_str(), code), ("", 0));
    assert_eq!(out, "master sync daemon (mcast=eth0, syncid=9, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n");
    let (_, err, code) = adm(&p.lab, &p.master, "--start-daemon master --mcast-interface eth0");
    assert_eq!((err.as_str(), code), ("Daemon has already run\n", 255));
    let (_, err, code) = adm(&p.lab, &p.master, "--start-daemon backup --mcast-interface nosuch0");
    assert_eq!((err.as_str(), code), ("No such device\n", 255));
    let (_, err, code) = adm(&p.lab, &p.master, "--stop-daemon backup");
    assert_eq!((err.as_str(), code), ("No daemon is running\n", 255));
    assert_eq!(
        adm(&p.lab, &p.backup, "-L --daemon").0.lines().next().unwrap_or(""),
        "backup sync daemon (mcast=eth0, syncid=9, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)"
    );
}

#[test]
fn dr_downloads_survive_the_masters_death_through_the_synced_backup() {
    let mut p = build();
    start_downloads(&mut p.lab, &p.client, 90);
    let (lab, master, backup) = (&p.lab, p.master.clone(), p.backup.clone());
    let on_master = Lab::wait_for(Duration::from_secs(20), || (established(lab, &master) == DOWNLOADS).then_some(()));
    assert!(on_master.is_some(), "{}", adm(lab, &master, "-Lnc").0);
    let synced = Lab::wait_for(Duration::from_secs(10), || (established(lab, &backup) == DOWNLOADS).then_some(()));
    assert!(
        synced.is_some(),
        "the backup holds {} of {DOWNLOADS}:\n{}\n{}",
        established(lab, &backup),
        adm(lab, &backup, "-Lnc").0,
        lab.log("backup")
    );
    // The metrics tell the same: messages out of the master, in at the
    // backup with the connections; the master's table and, under AF_XDP,
    // its fast path's map hold the downloads.
    let value = |m: &str, series: &str| -> f64 {
        m.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).unwrap_or(-1.0)
    };
    let scrape = |ns: &str| lab.ok(ns, &["curl", "-sS", "--max-time", "3", "http://127.0.0.1:9650/metrics"]).unwrap();
    let (m, b) = (scrape(&master), scrape(&backup));
    assert!(value(&m, "rlvs_sync_messages_sent_total") > 0.0, "{m}");
    assert!(value(&b, "rlvs_sync_messages_received_total") > 0.0, "{b}");
    assert!(value(&b, "rlvs_sync_connections_received_total") >= DOWNLOADS as f64, "{b}");
    assert_eq!(value(&b, "rlvs_sync_messages_rejected_total{reason=\"malformed\"}"), 0.0, "{b}");
    assert!(value(&m, "rlvs_engine_connections") >= DOWNLOADS as f64, "{m}");
    if m.contains("rlvs_fastpath_map_entries{") {
        assert!(value(&m, "rlvs_fastpath_map_entries{map=\"conns4\"}") >= DOWNLOADS as f64, "{m}");
        assert!(value(&m, "rlvs_engine_packets_total{path=\"fast\",action=\"forwarded\"}") > 0.0, "{m}");
    } else {
        assert!(value(&m, "rlvs_engine_packets_total{path=\"slow\",action=\"forwarded\"}") > 0.0, "{m}");
    }
    std::thread::sleep(Duration::from_secs(1));
    let resets_before = resets(&p.lab, &p.client);
    // The master dies and its link goes: nothing of it forwards any more,
    // not even a fast path it left attached.
    p.lab.stop("master", libc::SIGKILL).unwrap();
    p.lab.ok(&p.master, &["ip", "link", "set", "eth0", "down"]).unwrap();
    // The backup takes the VIP; the client learns its new address (as a
    // gratuitous ARP from VRRP would teach it).
    p.lab.ok(&p.backup, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "eth0"]).unwrap();
    p.lab
        .ok(&p.client, &["ip", "neigh", "replace", VIP, "lladdr", BACKUP_MAC, "dev", "eth0", "nud", "reachable"])
        .unwrap();
    assert!(!p.lab.log("downloads").contains("done"), "downloads ended before the failover: it proves nothing");
    let failed = failed_downloads(&p.lab);
    assert!(
        failed.is_empty(),
        "{} of {DOWNLOADS} downloads failed:\n{}\n{}",
        failed.len(),
        failed.join("\n"),
        p.lab.log("backup")
    );
    assert_eq!(resets(&p.lab, &p.client), resets_before, "the client was reset");
    let out = p.lab.run(&p.client, &["curl", "-sS", "--max-time", "5", &format!("http://{VIP}/")]).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{}", String::from_utf8_lossy(&out.stderr));
}

/// keepalived.conf for one of the pair: the seed's instance and virtual
/// server shape, on eth0, three real servers, and lvs_sync_daemon
/// following VI_1.
fn keepalived_conf(state: &str, priority: u8) -> String {
    let rs: String = (1..=3)
        .map(|i| {
            format!(
                "    real_server 192.168.100.{i} 80 {{\n        weight 1\n        TCP_CHECK {{\n            connect_timeout 3\n        }}\n    }}\n"
            )
        })
        .collect();
    format!(
        "global_defs {{\n    router_id {state}\n    lvs_sync_daemon eth0 VI_1 id 9\n}}\n\n\
         vrrp_instance VI_1 {{\n    state {state}\n    interface eth0\n    virtual_router_id 51\n    priority {priority}\n    advert_int 1\n\
         \x20   authentication {{\n        auth_type PASS\n        auth_pass 123456\n    }}\n\
         \x20   virtual_ipaddress {{\n        {VIP}/24 dev eth0\n    }}\n}}\n\n\
         virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n{rs}}}\n"
    )
}

/// Opens `n` keep-alive HTTP sessions to the VIP, one request each, then
/// waits for the file `go` and asks each session once more, on the same
/// socket (a reconnect counts as a failure). Writes "first second errors".
/// Each file appears whole (written aside, then renamed): the test polls
/// for it and must never read it half-written.
const KEEPALIVE: &str = r#"
import http.client, os, sys, time
n, vip, go, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
def publish(path, text):
    with open(path + ".part", "w") as f:
        f.write(text)
    os.rename(path + ".part", path)
conns, first = [], 0
for i in range(n):
    c = http.client.HTTPConnection(vip, 80, timeout=30)
    c.request("GET", "/")
    if c.getresponse().read() == b"ok\n":
        first += 1
    conns.append((c, c.sock.getsockname()))
publish(out + ".ready", str(first))
while not os.path.exists(go):
    time.sleep(0.05)
second, errors = 0, []
for c, name in conns:
    try:
        if c.sock is None or c.sock.getsockname() != name:
            raise RuntimeError("session was closed")
        c.request("GET", "/")
        if c.getresponse().read() == b"ok\n" and c.sock.getsockname() == name:
            second += 1
    except Exception as e:
        errors.append(repr(e))
publish(out, "%d %d %s" % (first, second, errors[:3]))
"#;
const SESSIONS: usize = 200;

#[test]
fn keepalived_pair_with_lvs_sync_daemon_keeps_downloads_across_a_master_kill() {
    let mut lab = Lab::new().unwrap();
    let master = lab.host("km", "eth0", "02:00:00:00:52:01", "192.168.100.251/24").unwrap();
    let backup = lab.host("kb", "eth0", "02:00:00:00:52:02", "192.168.100.252/24").unwrap();
    let client = lab.host("kc", "eth0", "02:00:00:00:52:10", "192.168.100.10/24").unwrap();
    let rlvs = rlvs();
    for i in 1..=3u8 {
        let rs = lab
            .host(&format!("k{i}"), "eth0", &format!("02:00:00:00:52:2{i}"), &format!("192.168.100.{i}/24"))
            .unwrap();
        lab.ok(&rs, &[&rlvs, "realserver", "start", "--vip", VIP]).unwrap();
        web::paced(&mut lab, &rs, &format!("web{i}"), SIZE, RATE, 80).unwrap();
    }
    lab.ok(&client, &["ip", "route", "add", VIP, "dev", "eth0"]).unwrap();
    let keepalived = rlvs_netlab::seed_ha::Tools::rlvs(&lab, &rlvs).unwrap().keepalived;
    rlvs_netlab::seed_ha::start_director(&mut lab, &keepalived, &master, "km", &keepalived_conf("MASTER", 100))
        .unwrap();
    rlvs_netlab::seed_ha::start_director(&mut lab, &keepalived, &backup, "kb", &keepalived_conf("BACKUP", 80)).unwrap();
    let roles = Lab::wait_for(Duration::from_secs(20), || {
        let m = adm(&lab, &master, "-L --daemon").0;
        let b = adm(&lab, &backup, "-L --daemon").0;
        let up = lab.run(&client, &["curl", "-s", "--max-time", "1", &format!("http://{VIP}/")]).ok()?;
        (m.starts_with("master sync daemon (mcast=eth0, syncid=9")
            && b.starts_with("backup sync daemon (mcast=eth0, syncid=9")
            && up.status.success())
        .then_some(())
    });
    assert!(roles.is_some(), "{}\n{}", lab.log("km"), lab.log("kb"));
    start_downloads(&mut lab, &client, 90);
    let (go, out) = open_sessions(&mut lab, &client);
    let all = DOWNLOADS + SESSIONS;
    let synced = Lab::wait_for(Duration::from_secs(20), || {
        (established(&lab, &master) == all && established(&lab, &backup) == all).then_some(())
    });
    assert!(
        synced.is_some(),
        "master {} backup {}:\n{}",
        established(&lab, &master),
        established(&lab, &backup),
        lab.log("kb")
    );
    let resets_before = resets(&lab, &client);
    lab.stop("km", libc::SIGKILL).unwrap();
    lab.ok(&master, &["ip", "link", "set", "eth0", "down"]).unwrap();
    assert!(!lab.log("downloads").contains("done"), "downloads ended before the failover: it proves nothing");
    let took = Lab::wait_for(Duration::from_secs(15), || {
        adm(&lab, &backup, "-L --daemon").0.starts_with("master sync daemon").then_some(())
    });
    assert!(took.is_some(), "the backup never took the master's sync role:\n{}", lab.log("kb"));
    sessions_answer(&lab, &go, &out);
    let failed = failed_downloads(&lab);
    assert!(
        failed.is_empty(),
        "{} of {DOWNLOADS} downloads failed:\n{}\n{}",
        failed.len(),
        failed.join("\n"),
        lab.log("kb")
    );
    assert_eq!(resets(&lab, &client), resets_before, "the client was reset");
    let log = plain_log(&lab, "kb");
    assert!(log.contains("(VI_1) Entering MASTER STATE"), "{log}");
    assert!(log.contains("(VI_1) lvs_sync_daemon on eth0: master, syncid 9"), "{log}");
}

/// FULLNAT: the synced entry carries its local address and port and its
/// sequence and timestamp offsets; the local address moves with the VIP.
#[test]
fn fullnat_downloads_survive_the_masters_death_through_the_synced_backup() {
    const LIP: &str = "192.168.100.254";
    let mut lab = Lab::new().unwrap();
    lab.segment("fpriv").unwrap();
    let master = lab.host("fm", "eth0", "02:00:00:00:53:01", "10.1.1.251/24").unwrap();
    let backup = lab.host("fb", "eth0", "02:00:00:00:53:02", "10.1.1.252/24").unwrap();
    lab.plug(&master, "eth1", "fpriv", "02:00:00:00:53:11", "192.168.100.251/24").unwrap();
    lab.plug(&backup, "eth1", "fpriv", "02:00:00:00:53:12", "192.168.100.252/24").unwrap();
    let client = lab.host("fc", "eth0", "02:00:00:00:53:10", "10.1.1.10/24").unwrap();
    for i in 1..=3u8 {
        let rs = lab.bare_host(&format!("f{i}")).unwrap();
        lab.plug(&rs, "eth0", "fpriv", &format!("02:00:00:00:53:2{i}"), &format!("192.168.100.{i}/24")).unwrap();
        web::paced(&mut lab, &rs, &format!("web{i}"), SIZE, RATE, 80).unwrap();
    }
    for (ns, name) in [(&master, "master"), (&backup, "backup")] {
        start_daemon(&mut lab, ns, name, &["--metrics", "127.0.0.1:9650"]);
        let mut cmds = vec![format!("-A -t {VIP}:80 -s rr"), format!("--add-laddr -t {VIP}:80 -z {LIP}")];
        cmds.extend((1..=3).map(|i| format!("-a -t {VIP}:80 -r 192.168.100.{i}:80 --fullnat")));
        adm_ok(&lab, ns, cmds);
    }
    // Sync runs on the inside link, away from clients.
    adm_ok(&lab, &master, ["--start-daemon master --mcast-interface eth1 --syncid 4"]);
    adm_ok(&lab, &backup, ["--start-daemon backup --mcast-interface eth1 --syncid 4"]);
    lab.ok(&master, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "eth0"]).unwrap();
    lab.ok(&master, &["ip", "addr", "add", &format!("{LIP}/32"), "dev", "eth1"]).unwrap();
    lab.ok(&client, &["ip", "route", "add", VIP, "dev", "eth0"]).unwrap();
    let ok = Lab::wait_for(Duration::from_secs(10), || {
        lab.run(&client, &["curl", "-s", "--max-time", "2", &format!("http://{VIP}/")])
            .ok()
            .filter(|o| o.status.success())
    });
    assert!(ok.is_some(), "the VIP does not answer:\n{}", lab.log("master"));
    start_downloads(&mut lab, &client, 90);
    let synced = Lab::wait_for(Duration::from_secs(20), || {
        (established(&lab, &master) == DOWNLOADS && established(&lab, &backup) == DOWNLOADS).then_some(())
    });
    assert!(
        synced.is_some(),
        "master {} backup {}:\n{}\n{}",
        established(&lab, &master),
        established(&lab, &backup),
        adm(&lab, &backup, "-Lnc").0,
        lab.log("backup")
    );
    let resets_before = resets(&lab, &client);
    lab.stop("master", libc::SIGKILL).unwrap();
    for dev in ["eth0", "eth1"] {
        lab.ok(&master, &["ip", "link", "set", dev, "down"]).unwrap();
    }
    // The VIP and the local address move; their neighbours learn it (as
    // gratuitous ARP would teach them).
    lab.ok(&backup, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "eth0"]).unwrap();
    lab.ok(&backup, &["ip", "addr", "add", &format!("{LIP}/32"), "dev", "eth1"]).unwrap();
    lab.ok(&client, &["ip", "neigh", "replace", VIP, "lladdr", "02:00:00:00:53:02", "dev", "eth0", "nud", "reachable"])
        .unwrap();
    for i in 1..=3u8 {
        let rs = lab.ns(&format!("f{i}"));
        lab.ok(&rs, &["ip", "neigh", "replace", LIP, "lladdr", "02:00:00:00:53:12", "dev", "eth0", "nud", "reachable"])
            .unwrap();
    }
    assert!(!lab.log("downloads").contains("done"), "downloads ended before the failover: it proves nothing");
    let failed = failed_downloads(&lab);
    assert!(
        failed.is_empty(),
        "{} of {DOWNLOADS} downloads failed:\n{}\n{}",
        failed.len(),
        failed.join("\n"),
        lab.log("backup")
    );
    assert_eq!(resets(&lab, &client), resets_before, "the client was reset");
}

fn sync_role(lab: &Lab, ns: &str) -> String {
    adm(lab, ns, "-L --daemon").0
}

/// The master comes back while the backup carries its downloads: it asks
/// the backup for the connections made meanwhile (bulk resync), holds its
/// preemption until they are loaded, then takes the VIP back; nothing is
/// reset, every download completes.
#[test]
fn a_returning_master_loads_the_table_before_it_preempts() {
    returning_master(false);
}

#[test]
fn a_returning_fullnat_master_loads_the_table_before_it_preempts() {
    returning_master(true);
}

fn returning_master(fullnat: bool) {
    const SLOW: usize = 256 * 1024;
    let mut lab = Lab::new().unwrap();
    let (sub, inside) = if fullnat { ("10.1.1", "192.168.100") } else { ("192.168.100", "192.168.100") };
    let master = lab.host("rm", "eth0", "02:00:00:00:54:01", &format!("{sub}.251/24")).unwrap();
    let backup = lab.host("rb", "eth0", "02:00:00:00:54:02", &format!("{sub}.252/24")).unwrap();
    let client = lab.host("rc", "eth0", "02:00:00:00:54:10", &format!("{sub}.10/24")).unwrap();
    if fullnat {
        lab.segment("rin").unwrap();
        lab.plug(&master, "eth1", "rin", "02:00:00:00:54:11", &format!("{inside}.251/24")).unwrap();
        lab.plug(&backup, "eth1", "rin", "02:00:00:00:54:12", &format!("{inside}.252/24")).unwrap();
    }
    let rlvs = rlvs();
    for i in 1..=3u8 {
        let (mac, cidr) = (format!("02:00:00:00:54:2{i}"), format!("{inside}.{i}/24"));
        let rs = if fullnat {
            let rs = lab.bare_host(&format!("r{i}")).unwrap();
            lab.plug(&rs, "eth0", "rin", &mac, &cidr).unwrap();
            rs
        } else {
            let rs = lab.host(&format!("r{i}"), "eth0", &mac, &cidr).unwrap();
            lab.ok(&rs, &[&rlvs, "realserver", "start", "--vip", VIP]).unwrap();
            rs
        };
        web::paced(&mut lab, &rs, &format!("web{i}"), SIZE, SLOW, 80).unwrap();
    }
    lab.ok(&client, &["ip", "route", "add", VIP, "dev", "eth0"]).unwrap();
    let keepalived = rlvs_netlab::seed_ha::Tools::rlvs(&lab, &rlvs).unwrap().keepalived;
    let (mconf, bconf) = if fullnat {
        (fullnat_conf("MASTER", 100), fullnat_conf("BACKUP", 80))
    } else {
        (keepalived_conf("MASTER", 100), keepalived_conf("BACKUP", 80))
    };
    rlvs_netlab::seed_ha::start_director(&mut lab, &keepalived, &master, "rm", &mconf).unwrap();
    rlvs_netlab::seed_ha::start_director(&mut lab, &keepalived, &backup, "rb", &bconf).unwrap();
    let up = Lab::wait_for(Duration::from_secs(20), || {
        let ok = lab.run(&client, &["curl", "-s", "--max-time", "1", &format!("http://{VIP}/")]).ok()?;
        (sync_role(&lab, &master).starts_with("master")
            && sync_role(&lab, &backup).starts_with("backup")
            && ok.status.success())
        .then_some(())
    });
    assert!(up.is_some(), "{}\n{}", lab.log("rm"), lab.log("rb"));
    start_downloads(&mut lab, &client, 120);
    let synced = Lab::wait_for(Duration::from_secs(20), || {
        (established(&lab, &master) == DOWNLOADS && established(&lab, &backup) == DOWNLOADS).then_some(())
    });
    assert!(synced.is_some(), "{}", lab.log("rb"));
    let resets_before = resets(&lab, &client);
    let links: &[&str] = if fullnat { &["eth0", "eth1"] } else { &["eth0"] };
    lab.stop("rm", libc::SIGKILL).unwrap();
    for dev in links {
        lab.ok(&master, &["ip", "link", "set", dev, "down"]).unwrap();
    }
    let took = Lab::wait_for(Duration::from_secs(15), || sync_role(&lab, &backup).starts_with("master").then_some(()));
    assert!(took.is_some(), "{}", lab.log("rb"));
    // The master returns.
    for dev in links {
        lab.ok(&master, &["ip", "link", "set", dev, "up"]).unwrap();
    }
    rlvs_netlab::seed_ha::start_director(&mut lab, &keepalived, &master, "rm2", &mconf).unwrap();
    let back = Lab::wait_for(Duration::from_secs(20), || sync_role(&lab, &master).starts_with("master").then_some(()));
    assert!(back.is_some(), "the master never took its role back:\n{}", lab.log("rm2"));
    assert!(!lab.log("downloads").contains("done"), "downloads ended before the master returned: it proves nothing");
    let log = plain_log(&lab, "rm2");
    let loaded = log.find("bulk resync complete").unwrap_or_else(|| panic!("no bulk resync:\n{log}"));
    let preempted = log.find("(VI_1) Entering MASTER STATE").unwrap_or_else(|| panic!("{log}"));
    assert!(loaded < preempted, "preempted before the table was loaded:\n{log}");
    assert!(plain_log(&lab, "rb").contains("bulk resync asked"), "{}", lab.log("rb"));
    let failed = failed_downloads(&lab);
    assert!(
        failed.is_empty(),
        "{} of {DOWNLOADS} downloads failed:\n{}\n{}",
        failed.len(),
        failed.join("\n"),
        lab.log("rm2")
    );
    assert_eq!(resets(&lab, &client), resets_before, "the client was reset");
}

/// The keepalived pair for FULLNAT: VRRP on the client side holds the VIP
/// and, on the inside link, the local address; sync runs on the inside.
fn fullnat_conf(state: &str, priority: u8) -> String {
    let rs: String = (1..=3)
        .map(|i| {
            format!(
                "    real_server 192.168.100.{i} 80 {{\n        weight 1\n        TCP_CHECK {{\n            connect_timeout 3\n        }}\n    }}\n"
            )
        })
        .collect();
    format!(
        "global_defs {{\n    router_id {state}\n    lvs_sync_daemon eth1 VI_1 id 5\n}}\n\n\
         local_address_group inside {{\n    192.168.100.254\n}}\n\n\
         vrrp_instance VI_1 {{\n    state {state}\n    interface eth0\n    virtual_router_id 52\n    priority {priority}\n    advert_int 1\n\
         \x20   virtual_ipaddress {{\n        {VIP}/24 dev eth0\n        192.168.100.254/24 dev eth1\n    }}\n}}\n\n\
         virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind FNAT\n    laddr_group_name inside\n    protocol TCP\n{rs}}}\n"
    )
}

#[test]
fn keepalived_fullnat_pair_keeps_downloads_and_sessions_across_a_master_kill() {
    let mut lab = Lab::new().unwrap();
    lab.segment("kfin").unwrap();
    let master = lab.host("fkm", "eth0", "02:00:00:00:55:01", "10.1.1.251/24").unwrap();
    let backup = lab.host("fkb", "eth0", "02:00:00:00:55:02", "10.1.1.252/24").unwrap();
    lab.plug(&master, "eth1", "kfin", "02:00:00:00:55:11", "192.168.100.251/24").unwrap();
    lab.plug(&backup, "eth1", "kfin", "02:00:00:00:55:12", "192.168.100.252/24").unwrap();
    let client = lab.host("fkc", "eth0", "02:00:00:00:55:10", "10.1.1.10/24").unwrap();
    for i in 1..=3u8 {
        let rs = lab.bare_host(&format!("fk{i}")).unwrap();
        lab.plug(&rs, "eth0", "kfin", &format!("02:00:00:00:55:2{i}"), &format!("192.168.100.{i}/24")).unwrap();
        web::paced(&mut lab, &rs, &format!("web{i}"), SIZE, RATE, 80).unwrap();
    }
    lab.ok(&client, &["ip", "route", "add", VIP, "dev", "eth0"]).unwrap();
    let keepalived = rlvs_netlab::seed_ha::Tools::rlvs(&lab, &rlvs()).unwrap().keepalived;
    rlvs_netlab::seed_ha::start_director(&mut lab, &keepalived, &master, "fkm", &fullnat_conf("MASTER", 100)).unwrap();
    rlvs_netlab::seed_ha::start_director(&mut lab, &keepalived, &backup, "fkb", &fullnat_conf("BACKUP", 80)).unwrap();
    let up = Lab::wait_for(Duration::from_secs(20), || {
        let ok = lab.run(&client, &["curl", "-s", "--max-time", "1", &format!("http://{VIP}/")]).ok()?;
        (sync_role(&lab, &master).starts_with("master")
            && sync_role(&lab, &backup).starts_with("backup")
            && ok.status.success())
        .then_some(())
    });
    assert!(up.is_some(), "{}\n{}", lab.log("fkm"), lab.log("fkb"));
    start_downloads(&mut lab, &client, 90);
    let (go, out) = open_sessions(&mut lab, &client);
    let all = DOWNLOADS + SESSIONS;
    let synced = Lab::wait_for(Duration::from_secs(20), || {
        (established(&lab, &master) == all && established(&lab, &backup) == all).then_some(())
    });
    assert!(
        synced.is_some(),
        "master {} backup {}:\n{}",
        established(&lab, &master),
        established(&lab, &backup),
        lab.log("fkb")
    );
    let resets_before = resets(&lab, &client);
    lab.stop("fkm", libc::SIGKILL).unwrap();
    for dev in ["eth0", "eth1"] {
        lab.ok(&master, &["ip", "link", "set", dev, "down"]).unwrap();
    }
    assert!(!lab.log("downloads").contains("done"), "downloads ended before the failover: it proves nothing");
    let took = Lab::wait_for(Duration::from_secs(15), || sync_role(&lab, &backup).starts_with("master").then_some(()));
    assert!(took.is_some(), "{}", lab.log("fkb"));
    sessions_answer(&lab, &go, &out);
    let failed = failed_downloads(&lab);
    assert!(
        failed.is_empty(),
        "{} of {DOWNLOADS} downloads failed:\n{}\n{}",
        failed.len(),
        failed.join("\n"),
        lab.log("fkb")
    );
    assert_eq!(resets(&lab, &client), resets_before, "the client was reset");
}
