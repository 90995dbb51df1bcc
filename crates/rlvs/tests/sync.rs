//! Connection sync between two rlvs directors, set up as an operator does
//! with ipvsadm (--start-daemon master on one, backup on the other): the
//! backup lists the master's connections, and after the master is killed
//! and its link taken down, the backup takes the VIP and carries twenty
//! 5 MB downloads, paced to stay on the wire to their last byte, to the
//! end, byte-exact, without a reset. DR, on whichever engine the run uses.

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
        start_daemon(&mut lab, ns, name, &[]);
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

fn established(lab: &Lab, ns: &str) -> usize {
    adm(lab, ns, "-Lnc").0.lines().filter(|l| l.contains("ESTABLISHED") && l.contains(&format!("{VIP}:80"))).count()
}

fn resets(lab: &Lab, ns: &str) -> u64 {
    let out = lab.ok(ns, &["nstat", "-asz", "TcpInRsts"]).unwrap();
    out.lines()
        .filter(|l| l.starts_with("TcpInRsts"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
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
    let d = p.lab.dir().to_string_lossy().into_owned();
    let script = format!(
        "for i in $(seq 1 {DOWNLOADS}); do (curl -sS --max-time 90 -o {d}/dl$i http://{VIP}/big 2>{d}/err$i; \
         echo $? > {d}/rc$i) & done; wait; echo done"
    );
    p.lab.spawn(&p.client, "downloads", &["sh", "-c", &script]).unwrap();
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
    let done = Lab::wait_for(Duration::from_secs(120), || p.lab.log("downloads").contains("done").then_some(()));
    assert!(done.is_some(), "downloads did not finish");
    let want = web::paced_body(SIZE);
    let mut bad = Vec::new();
    for i in 1..=DOWNLOADS {
        let rc = std::fs::read_to_string(p.lab.dir().join(format!("rc{i}"))).unwrap_or_default();
        let got = std::fs::read(p.lab.dir().join(format!("dl{i}"))).unwrap_or_default();
        if rc.trim() != "0" || got != want {
            let err = std::fs::read_to_string(p.lab.dir().join(format!("err{i}"))).unwrap_or_default();
            bad.push(format!("download {i}: exit {}, {} bytes, {}", rc.trim(), got.len(), err.trim()));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {DOWNLOADS} failed after the failover:\n{}\n{}",
        bad.len(),
        bad.join("\n"),
        p.lab.log("backup")
    );
    assert_eq!(resets(&p.lab, &p.client), resets_before, "the client was reset");
    let out = p.lab.run(&p.client, &["curl", "-sS", "--max-time", "5", &format!("http://{VIP}/")]).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{}", String::from_utf8_lossy(&out.stderr));
}
