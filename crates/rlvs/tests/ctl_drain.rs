//! `rlvs ctl drain|enable|weight` on a keepalived director (DR, rr, two
//! real servers with HTTP_GET checks): a drained server takes no new
//! connections while the download already on it, kept on the wire by
//! its server's pace, completes intact; the drain holds across a reload;
//! enable brings the server back; weight sets one until enable.

mod common;

use common::*;
use rlvs_netlab::{web, Lab};
use std::time::Duration;

const VIP: &str = "10.0.0.100";
const SIZE: usize = 3 * 1024 * 1024;
const RATE: usize = 512 * 1024;

fn conf() -> String {
    let rs = |addr: &str| {
        format!(
            " real_server {addr} 80 {{\n  weight 1\n  HTTP_GET {{\n   url {{\n    path /\n   }}\n   connect_timeout 2\n  }}\n }}\n"
        )
    };
    format!(
        "virtual_server {VIP} 80 {{\n delay_loop 1\n lb_algo rr\n lb_kind DR\n protocol TCP\n{}{}}}\n",
        rs("10.1.1.1"),
        rs("10.1.1.2")
    )
}

/// Connection entries per real server in `ipvsadm -Lnc`.
fn entries(lab: &Lab, ns: &str, rs: &str) -> usize {
    adm(lab, ns, "-Lnc").0.lines().filter(|l| l.contains(&format!(" {rs}:80"))).count()
}

fn weight(lab: &Lab, ns: &str, rs: &str) -> String {
    let listing = adm(lab, ns, "-Ln").0;
    let line = listing.lines().find(|l| l.contains(&format!("-> {rs}:80"))).map(str::to_string);
    line.and_then(|l| l.split_whitespace().nth(3).map(str::to_string)).unwrap_or(listing)
}

fn ctl(lab: &Lab, ns: &str, args: &[&str]) -> (bool, String) {
    let rlvs = rlvs();
    let mut argv = vec![rlvs.as_str(), "ctl"];
    argv.extend(args);
    let o = lab.run(ns, &argv).unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    (o.status.success(), text)
}

#[test]
fn drain_keeps_established_connections_and_holds_across_a_reload() {
    let mut lab = Lab::new().unwrap();
    let dir = lab.host("dir", "eth0", "02:00:00:00:15:fe", "10.1.1.254/24").unwrap();
    let cl = lab.host("cl", "eth0", "02:00:00:00:15:0a", "10.1.1.10/24").unwrap();
    lab.ok(&cl, &["ip", "route", "add", VIP, "via", "10.1.1.254"]).unwrap();
    lab.ok(&dir, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"]).unwrap();
    for (i, addr) in [(1, "10.1.1.1"), (2, "10.1.1.2")] {
        let rs = lab.host(&format!("rs{i}"), "eth0", &format!("02:00:00:00:15:0{i}"), &format!("{addr}/24")).unwrap();
        lab.ok(&rs, &[&rlvs(), "realserver", "start", "--vip", VIP]).unwrap();
        web::paced(&mut lab, &rs, &format!("web{i}"), SIZE, RATE, 80).unwrap();
    }
    let d = lab.dir().to_string_lossy().into_owned();
    let file = format!("{d}/keepalived.conf");
    std::fs::write(&file, conf()).unwrap();
    let face = lab.dir().join("keepalived");
    std::os::unix::fs::symlink(rlvs(), &face).unwrap();
    let face = face.to_string_lossy().into_owned();
    let pids = [format!("{d}/k.pid"), format!("{d}/kv.pid"), format!("{d}/kc.pid")];
    let argv = ["env", "RLVS_METRICS=127.0.0.1:9650", &face, "-n", "-l", "-G", "-f", &file];
    let pidfiles = ["-p", &pids[0], "-r", &pids[1], "-c", &pids[2]];
    lab.spawn(&dir, "k", &[&argv[..], &pidfiles[..]].concat()).unwrap();
    let both = Lab::wait_for(Duration::from_secs(20), || {
        (weight(&lab, &dir, "10.1.1.1") == "1" && weight(&lab, &dir, "10.1.1.2") == "1").then_some(())
    });
    assert!(both.is_some(), "{}\n{}", adm(&lab, &dir, "-Ln").0, lab.log("k"));

    // Two downloads: rr puts one on each real server.
    let script = format!(
        "for i in 1 2; do (curl -sS --max-time 60 -o {d}/dl$i http://{VIP}/big 2>{d}/err$i; echo $? > {d}/rc$i) & done; wait; echo done"
    );
    lab.spawn(&cl, "downloads", &["sh", "-c", &script]).unwrap();
    let on_both = Lab::wait_for(Duration::from_secs(10), || {
        (entries(&lab, &dir, "10.1.1.1") == 1 && entries(&lab, &dir, "10.1.1.2") == 1).then_some(())
    });
    assert!(on_both.is_some(), "{}", adm(&lab, &dir, "-Lnc").0);

    let (ok, out) = ctl(&lab, &dir, &["drain", "10.1.1.1"]);
    assert!(ok, "{out}");
    assert!(out.contains("10.1.1.1:80 in VS") && out.contains("drained"), "{out}");
    assert_eq!(weight(&lab, &dir, "10.1.1.1"), "0");
    assert!(lab.log("k").contains("(ctl) 10.1.1.1:80 in VS"), "every change is logged");
    let (ok, table) = ctl(&lab, &dir, &["status"]);
    assert!(ok, "{table}");
    let line = |rs: &str| table.lines().find(|l| l.contains(&format!("-> {rs}:80"))).unwrap_or("").to_string();
    assert!(line("10.1.1.1").contains("weight 0") && line("10.1.1.1").contains("check up  drained"), "{table}");
    assert!(line("10.1.1.2").contains("weight 1") && line("10.1.1.2").ends_with("check up"), "{table}");
    assert!(table.contains("TCP  10.0.0.100:80 rr"), "{table}");
    // The same in the metrics, which promtool accepts.
    let rs1 = r#"vs="[10.0.0.100]:tcp:80",rs="[10.1.1.1]:tcp:80""#;
    // Counters show as the estimator folds them, within 2 s of traffic.
    let counted = format!("rlvs_real_server_connections_total{{{rs1}}} 1");
    let metrics = Lab::wait_for(Duration::from_secs(5), || {
        let m = lab.ok(&dir, &["curl", "-sS", "--max-time", "3", "http://127.0.0.1:9650/metrics"]).ok()?;
        m.contains(&counted).then_some(m)
    })
    .unwrap_or_else(|| lab.ok(&dir, &["curl", "-sS", "--max-time", "3", "http://127.0.0.1:9650/metrics"]).unwrap());
    for want in [
        format!("rlvs_real_server_weight{{{rs1}}} 0"),
        format!("rlvs_real_server_operator_hold{{{rs1}}} 1"),
        format!("rlvs_real_server_up{{{rs1}}} 1"),
        format!("rlvs_real_server_active_connections{{{rs1}}} 1"),
        format!("rlvs_real_server_connections_total{{{rs1}}} 1"),
    ] {
        assert!(metrics.contains(&want), "{want} not in:\n{metrics}");
    }
    // docs/METRICS.md lists every metric a scrape has, with its help.
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/METRICS.md")).unwrap();
    for help in metrics.lines().filter_map(|l| l.strip_prefix("# HELP ")) {
        let (name, text) = help.split_once(' ').unwrap();
        let row = doc.lines().find(|l| l.starts_with(&format!("| `{name}")));
        let text = text.trim_end_matches('.');
        assert!(row.is_some_and(|r| r.contains(text)), "docs/METRICS.md lacks {name} ({text})");
    }
    promtool_accepts(&lab, "metrics.txt", &metrics);
    let (ok, json) = ctl(&lab, &dir, &["status", "--json"]);
    assert!(ok, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let rs1 = v["real_servers"].as_array().unwrap().iter().find(|r| r["rs"] == "[10.1.1.1]:tcp:80").cloned();
    assert_eq!(
        rs1.as_ref().map(|r| (r["up"].clone(), r["hold"].clone())),
        Some((true.into(), "Drain".into())),
        "{json}"
    );
    let short = |lab: &Lab, n: usize| {
        for _ in 0..n {
            let o = lab.run(&cl, &["curl", "-sS", "--max-time", "3", &format!("http://{VIP}/")]).unwrap();
            assert_eq!(String::from_utf8_lossy(&o.stdout), "ok\n", "{}", String::from_utf8_lossy(&o.stderr));
        }
    };
    short(&lab, 6);
    assert_eq!(entries(&lab, &dir, "10.1.1.1"), 1, "no new connection to the drained server");
    assert!(entries(&lab, &dir, "10.1.1.2") >= 7, "{}", adm(&lab, &dir, "-Lnc").0);

    // A reload keeps the drain.
    lab.ok(&dir, &["kill", "-HUP", &lab.spawn_pid("k").unwrap().to_string()]).unwrap();
    let reloaded = Lab::wait_for(Duration::from_secs(10), || lab.log("k").contains("Reload finished").then_some(()));
    assert!(reloaded.is_some() || lab.log("k").contains("Reloading"), "{}", lab.log("k"));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(weight(&lab, &dir, "10.1.1.1"), "0", "the drain holds across the reload");

    // The download through the drained server completes, intact.
    let done = Lab::wait_for(Duration::from_secs(60), || lab.log("downloads").contains("done").then_some(()));
    assert!(done.is_some());
    let want = web::paced_body(SIZE);
    for i in 1..=2 {
        let rc = std::fs::read_to_string(format!("{d}/rc{i}")).unwrap_or_default();
        let got = std::fs::read(format!("{d}/dl{i}")).unwrap_or_default();
        let err = std::fs::read_to_string(format!("{d}/err{i}")).unwrap_or_default();
        assert!(rc.trim() == "0" && got == want, "download {i}: exit {rc}, {} bytes, {err}", got.len());
    }

    // Enable: the configured weight again, and new connections reach it.
    let (ok, out) = ctl(&lab, &dir, &["enable", "10.1.1.1:80"]);
    assert!(ok, "{out}");
    assert_eq!(weight(&lab, &dir, "10.1.1.1"), "1");
    let before = entries(&lab, &dir, "10.1.1.1");
    short(&lab, 4);
    assert!(entries(&lab, &dir, "10.1.1.1") >= before + 2, "{}", adm(&lab, &dir, "-Lnc").0);

    // A weight until enable; a name that matches nothing is refused.
    assert!(ctl(&lab, &dir, &["weight", "10.1.1.2", "5"]).0);
    assert_eq!(weight(&lab, &dir, "10.1.1.2"), "5");
    let (ok, out) = ctl(&lab, &dir, &["drain", "10.9.9.9"]);
    assert!(!ok && out.contains("no real server 10.9.9.9"), "{out}");
    let (ok, out) = ctl(&lab, &dir, &["drain", "web1"]);
    assert!(!ok && out.contains("is not a real server"), "{out}");
    assert!(ctl(&lab, &dir, &["enable", "10.1.1.2"]).0);
    assert_eq!(weight(&lab, &dir, "10.1.1.2"), "1");
}
