//! Reloads under load: the keepalived face on a VRRP master (a backup
//! peer listening), DR with wrr and HTTP_GET checks, gets SIGHUP 100 times
//! in 60 s, alternating between two valid files that differ in weights and
//! in a third real server. Meanwhile 20 downloads, kept on the wire by
//! their servers' pace, and a stream of short requests run. Every download
//! arrives whole, every short request is answered, the VIP never moves to
//! the backup, and the daemon's descriptors, threads and fast-path map
//! entries are the same after as before.
//!
//! A real server the next file drops is deleted from the table as
//! keepalived deletes it; its connections wait (packets dropped, as the
//! kernel's with expire_nodest_conn 0) until the file after revives it
//! from the trash, and TCP's retransmissions carry them over the gap.

mod common;

use common::*;
use rlvs_netlab::{web, Lab};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const VIP: &str = "10.1.1.100";
const SIZE: usize = 5 * 1024 * 1024;
/// 5 MiB at 80 KiB/s: 64 s on the wire.
const RATE: usize = 80 * 1024;
const DOWNLOADS: usize = 20;

fn vrrp(state: &str, priority: u32) -> String {
    format!(
        "vrrp_instance VI_1 {{\n state {state}\n interface eth0\n virtual_router_id 51\n priority {priority}\n advert_int 1\n virtual_ipaddress {{\n  {VIP}\n }}\n}}\n"
    )
}

fn conf(servers: &[(&str, u32)]) -> String {
    let rs: String = servers
        .iter()
        .map(|(addr, w)| {
            format!(" real_server {addr} 80 {{\n  weight {w}\n  HTTP_GET {{\n   url {{\n    path /\n   }}\n   connect_timeout 2\n  }}\n }}\n")
        })
        .collect();
    format!(
        "{}virtual_server {VIP} 80 {{\n delay_loop 1\n lb_algo wrr\n lb_kind DR\n protocol TCP\n{rs}}}\n",
        vrrp("MASTER", 100)
    )
}

/// The daemon's descriptors and threads: the least of 20 looks over 2 s,
/// since a health check holds a socket for a moment every second.
fn pid_counts(pid: u32) -> (usize, usize) {
    let n = |d: &str| std::fs::read_dir(format!("/proc/{pid}/{d}")).map(|r| r.count()).unwrap_or(0);
    let mut least = (usize::MAX, usize::MAX);
    for _ in 0..20 {
        least = (least.0.min(n("fd")), least.1.min(n("task")));
        std::thread::sleep(Duration::from_millis(100));
    }
    least
}

/// Entries in the fast path's maps (AF_XDP), or the connection count
/// (AF_PACKET, where there are no maps).
fn table_entries(lab: &Lab, ns: &str) -> (u64, u64) {
    let out = lab.ok(ns, &[&rlvs(), "ctl", "defence", "--json"]).unwrap();
    let e: serde_json::Value = serde_json::from_str(&out).unwrap();
    let maps: u64 =
        e["fast_path"]["map_entries"].as_array().map(|m| m.iter().filter_map(|p| p[1].as_u64()).sum()).unwrap_or(0);
    (maps, e["connections"].as_u64().unwrap_or(0))
}

#[test]
fn a_hundred_reloads_under_load_lose_nothing_and_leak_nothing() {
    let mut lab = Lab::new().unwrap();
    let dir = lab.host("dir", "eth0", "02:00:00:00:17:fe", "10.1.1.254/24").unwrap();
    let bak = lab.host("bak", "eth0", "02:00:00:00:17:fd", "10.1.1.253/24").unwrap();
    let cl = lab.host("cl", "eth0", "02:00:00:00:17:0a", "10.1.1.10/24").unwrap();
    let servers = ["10.1.1.1", "10.1.1.2", "10.1.1.3"];
    for (i, addr) in servers.iter().enumerate() {
        let rs =
            lab.host(&format!("rs{i}"), "eth0", &format!("02:00:00:00:17:0{}", i + 1), &format!("{addr}/24")).unwrap();
        lab.ok(&rs, &[&rlvs(), "realserver", "start", "--vip", VIP]).unwrap();
        web::paced(&mut lab, &rs, &format!("web{i}"), SIZE, RATE, 80).unwrap();
    }
    let d = lab.dir().to_string_lossy().into_owned();
    let a = conf(&[("10.1.1.1", 1), ("10.1.1.2", 1)]);
    let b = conf(&[("10.1.1.1", 2), ("10.1.1.2", 1), ("10.1.1.3", 1)]);
    let file = format!("{d}/keepalived.conf");
    // Starting on B, the hundredth reload ends on B: every real server a
    // download may be on is in the final table.
    std::fs::write(&file, &b).unwrap();
    std::fs::write(format!("{d}/backup.conf"), vrrp("BACKUP", 50)).unwrap();
    let face = lab.dir().join("keepalived");
    std::os::unix::fs::symlink(rlvs(), &face).unwrap();
    let face = face.to_string_lossy().into_owned();
    for (ns, tag, f) in [(&dir, "k", file.clone()), (&bak, "kb", format!("{d}/backup.conf"))] {
        let pids = [format!("{d}/{tag}.pid"), format!("{d}/{tag}v.pid"), format!("{d}/{tag}c.pid")];
        let argv = [&face, "-n", "-l", "-f", &f, "-p", &pids[0], "-r", &pids[1], "-c", &pids[2]];
        lab.spawn(ns, tag, &argv).unwrap();
    }
    let ready = Lab::wait_for(Duration::from_secs(30), || {
        let l = adm(&lab, &dir, "-Ln").0;
        let vip = lab.ok(&dir, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).ok()?;
        (l.matches("Route").count() == 3 && vip.contains(&format!(" {VIP}/"))).then_some(())
    });
    assert!(ready.is_some(), "{}\n{}", adm(&lab, &dir, "-Ln").0, lab.log("k"));
    let daemon = lab.spawn_pid("k").unwrap();

    // The VIP must stay on the master: the backup taking it is a flap.
    let stop = Arc::new(AtomicBool::new(false));
    let flaps = Arc::new(Mutex::new(Vec::<String>::new()));
    let watch = {
        let (stop, flaps) = (stop.clone(), flaps.clone());
        let (dir_ns, bak_ns) = (dir.clone(), bak.clone());
        let probe = Lab::new().unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let on = |ns: &str| {
                    probe
                        .ok(ns, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
                        .unwrap_or_default()
                        .contains(&format!(" {VIP}/"))
                };
                if !on(&dir_ns) || on(&bak_ns) {
                    flaps.lock().unwrap().push(format!(
                        "at {:?}: master {} backup {}",
                        Instant::now(),
                        on(&dir_ns),
                        on(&bak_ns)
                    ));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    let script = format!(
        "for i in $(seq {DOWNLOADS}); do (curl -sS --max-time 150 -o {d}/dl$i http://{VIP}/big 2>{d}/err$i; echo $? > {d}/rc$i) & sleep 0.1; done; wait; echo done"
    );
    lab.spawn(&cl, "downloads", &["sh", "-c", &script]).unwrap();
    let on_wire = Lab::wait_for(Duration::from_secs(20), || {
        let l = adm(&lab, &dir, "-Lnc").0;
        (l.lines().filter(|l| l.contains("ESTABLISHED")).count() == DOWNLOADS).then_some(())
    });
    assert!(on_wire.is_some(), "{}", adm(&lab, &dir, "-Lnc").0);
    std::thread::sleep(Duration::from_secs(2));
    let (fds0, threads0) = pid_counts(daemon);
    let (maps0, _) = table_entries(&lab, &dir);

    // Short requests, one every 100 ms, each with 10 s to be answered.
    let shorts = format!(
        "ok=0; n=0; end=$(( $(date +%s) + 62 )); while [ $(date +%s) -lt $end ]; do \
         n=$((n+1)); r=$(curl -s --max-time 10 http://{VIP}/); [ \"$r\" = ok ] && ok=$((ok+1)); sleep 0.1; done; echo \"$ok/$n\""
    );
    lab.spawn(&cl, "shorts", &["sh", "-c", &shorts]).unwrap();
    let started = Instant::now();
    for i in 0..100u32 {
        std::fs::write(&file, if i % 2 == 0 { &a } else { &b }).unwrap();
        // SAFETY: kill(2) on the daemon this test started.
        assert_eq!(unsafe { libc::kill(daemon as i32, libc::SIGHUP) }, 0);
        let due = Duration::from_millis(600) * (i + 1);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let reloads = started.elapsed();
    assert!(reloads < Duration::from_secs(62), "100 reloads took {reloads:?}");
    let final_table = Lab::wait_for(Duration::from_secs(10), || {
        let l = adm(&lab, &dir, "-Ln").0;
        (l.contains("10.1.1.1:80                  Route   2") && l.matches("Route").count() == 3).then_some(l)
    });
    assert!(final_table.is_some(), "the last file (B) is in force:\n{}", adm(&lab, &dir, "-Ln").0);

    let shorts_done = Lab::wait_for(Duration::from_secs(30), || lab.spawn_pid("shorts").is_none().then_some(()));
    let _ = shorts_done;
    let finished = Lab::wait_for(Duration::from_secs(120), || lab.log("downloads").contains("done").then_some(()));
    assert!(finished.is_some(), "downloads did not finish:\n{}", adm(&lab, &dir, "-Lnc").0);
    let want = web::paced_body(SIZE);
    for i in 1..=DOWNLOADS {
        let rc = std::fs::read_to_string(format!("{d}/rc{i}")).unwrap_or_default();
        let err = std::fs::read_to_string(format!("{d}/err{i}")).unwrap_or_default();
        assert_eq!(rc.trim(), "0", "download {i}: {err}");
        let got = std::fs::read(format!("{d}/dl{i}")).unwrap();
        assert!(got == want, "download {i}: {} bytes, not the {SIZE} served", got.len());
    }
    let shorts = lab.log("shorts");
    let (ok, n) = shorts.trim().split_once('/').expect("the short requests' tally");
    assert_eq!(ok, n, "every short request answered: {shorts}");
    assert!(n.parse::<u32>().unwrap() > 300, "{shorts}");

    stop.store(true, Ordering::Relaxed);
    watch.join().unwrap();
    assert!(flaps.lock().unwrap().is_empty(), "the VIP moved: {:?}", flaps.lock().unwrap());
    let log = lab.log("kb");
    assert!(!log.contains("Entering MASTER STATE"), "the backup took over:\n{log}");

    // Nothing leaked: the same descriptors and threads as under the same
    // downloads before, and no fast-path entry once the downloads are gone
    // (the maps held the downloads' entries before).
    let (fds1, threads1) = pid_counts(daemon);
    assert!(
        fds1 <= fds0 && threads1 <= threads0,
        "descriptors and threads: {fds0}, {threads0} before; {fds1}, {threads1} after"
    );
    let drained = Lab::wait_for(Duration::from_secs(10), || (table_entries(&lab, &dir).0 == 0).then_some(()));
    assert!(drained.is_some(), "fast-path entries left: {:?} (before: {maps0})", table_entries(&lab, &dir));
    let reload_lines = lab.log("k").matches("Reloading").count();
    assert!(reload_lines >= 100, "{reload_lines} reloads logged");
    println!(
        "100 reloads in {reloads:?}; {DOWNLOADS} downloads whole; short requests {}; descriptors {fds0} -> {fds1}, \
         threads {threads0} -> {threads1}, fast-path entries {maps0} under the downloads, 0 after",
        shorts.trim()
    );
}
