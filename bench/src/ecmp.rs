//! Scale-out behind ECMP, on rlvs_netlab's topology (a BIRD router, three
//! rlvs directors each with BIRD, four nginx real servers, DR):
//! - each director's share of new flows and the total rate (wrk, one
//!   connection per request) with 1, 2 and 3 directors;
//! - the fraction of flows whose director changes when one leaves, for
//!   BIRD's multipath route (hash-threshold) and for a resilient
//!   next-hop group built by hand, read from the router's own lookups;
//! - withdrawal and re-announcement times against the timers.

use anyhow::{bail, Context, Result};
use rlvs_netlab::ecmp::{self, Ecmp, CLIENT, DIRECTORS, DOWNLOAD_PORT, HOLD_TIME, SERVERS, VIP};
use rlvs_netlab::Lab;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const NGINX_CONF: &str = "worker_processes 1;
pid {dir}/nginx-{tag}.pid;
error_log {dir}/nginx-{tag}.err;
events { worker_connections 4096; }
http { access_log off; server { listen 80; root {dir}/www-{tag}; } }
";
/// Flows whose next hop the router is asked for.
const FLOWS: u16 = 20000;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The real servers' pages from nginx instead of Python (the rate is
/// the directors' and the router's, not the page server's).
fn nginx_pages(lab: &mut Lab, t: &Ecmp) -> Result<()> {
    let d = lab.dir().to_string_lossy().into_owned();
    for (i, ns) in t.servers.iter().enumerate() {
        let tag = format!("rs{}", i + 1);
        lab.stop(&format!("web{}", i + 1), libc::SIGTERM)?;
        std::fs::create_dir_all(format!("{d}/www-{tag}"))?;
        std::fs::write(format!("{d}/www-{tag}/index.html"), format!("{tag}\n"))?;
        let conf = format!("{d}/nginx-{tag}.conf");
        std::fs::write(&conf, NGINX_CONF.replace("{dir}", &d).replace("{tag}", &tag))?;
        lab.spawn(ns, &format!("nginx-{tag}"), &["nginx", "-c", &conf, "-g", "daemon off;"])?;
        lab.wait_listening(ns, "tcp", 80, &format!("nginx-{tag}"))?;
    }
    Ok(())
}

/// Packets each director has forwarded for VIP:80 (ipvsadm --stats
/// --exact, InPkts). Not Conns: a client port reused while the old entry
/// is in FIN_WAIT continues that entry (conn_reuse_mode 1, as the kernel),
/// so a director that has run longer counts fewer new connections.
fn packets(lab: &Lab, ns: &str, adm: &str) -> u64 {
    let out = lab.ok(ns, &[adm, "-Ln", "--stats", "--exact"]).unwrap_or_default();
    out.lines()
        .find(|l| l.starts_with("TCP") && l.contains(&format!("{VIP}:80 ")))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or(0)
}

fn wrk(lab: &Lab, t: &Ecmp, seconds: u32) -> Result<f64> {
    let d = format!("-d{seconds}s");
    let url = format!("http://{VIP}/");
    let out = lab.ok(&t.client, &["wrk", "-t1", "-c32", &d, "-H", "Connection: close", &url])?;
    let line = out.lines().find(|l| l.starts_with("Requests/sec:")).with_context(|| format!("wrk said: {out}"))?;
    Ok(line.split_whitespace().nth(1).context("no number")?.parse()?)
}

/// Runs rlvs on exactly the first `n` directors and waits for the route.
fn directors(lab: &mut Lab, t: &Ecmp, rlvs: &str, n: usize) -> Result<()> {
    for i in 0..3 {
        let name = format!("rlvs-d{}", i + 1);
        let running = lab.spawn_pid(&name).is_some();
        if i < n && !running {
            ecmp::start_director(lab, t, i, rlvs, "2")?;
        } else if i >= n && running {
            lab.stop(&name, libc::SIGTERM)?;
        }
    }
    ecmp::wait_next_hops(lab, t, &DIRECTORS[..n], Duration::from_secs(60))?;
    // The checks have passed once, the tables are complete.
    std::thread::sleep(Duration::from_secs(2));
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    crate::median(&mut v)
}

fn shares(lab: &mut Lab, t: &Ecmp, rlvs: &str, adm: &str, runs: usize, seconds: u32) -> Result<()> {
    println!("\n## Shares of new flows and total rate (wrk -c32, Connection: close, {seconds} s, median of {runs})\n");
    println!("| directors | requests/s | vs 1 director | d1 share of packets | d2 | d3 |");
    println!("|---|---|---|---|---|---|");
    let mut base = 0.0;
    for n in 1..=3 {
        directors(lab, t, rlvs, n)?;
        let mut rates = Vec::new();
        let mut share_runs: Vec<Vec<f64>> = vec![Vec::new(); 3];
        for _ in 0..runs {
            let before: Vec<u64> = t.directors.iter().map(|ns| packets(lab, ns, adm)).collect();
            rates.push(wrk(lab, t, seconds)?);
            eprintln!("{n} directors: {:.0} requests/s", rates[rates.len() - 1]);
            let after: Vec<u64> = t.directors.iter().map(|ns| packets(lab, ns, adm)).collect();
            let delta: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a.saturating_sub(*b)).collect();
            let total: u64 = delta.iter().sum::<u64>().max(1);
            for i in 0..3 {
                share_runs[i].push(delta[i] as f64 / total as f64);
            }
        }
        let rate = median(rates);
        if n == 1 {
            base = rate;
        }
        let s: Vec<String> = (0..3)
            .map(|i| if i < n { format!("{:.1}%", 100.0 * median(share_runs[i].clone())) } else { "-".into() })
            .collect();
        println!("| {n} | {rate:.0} | {:.2} | {} | {} | {} |", rate / base, s[0], s[1], s[2]);
    }
    Ok(())
}

/// Which next hop the router picks for each flow (client port 1024+i to
/// `dst`:80), from the router's own lookups under its hash policy.
fn next_hop_map(lab: &Lab, t: &Ecmp, dst: &str) -> Result<Vec<String>> {
    let mut batch = String::new();
    for i in 0..FLOWS {
        let sport = 1024 + u32::from(i);
        batch += &format!("route get {dst} from {CLIENT} iif eth0 ipproto tcp sport {sport} dport 80\n");
    }
    let path = lab.dir().join("route-get.batch");
    std::fs::write(&path, batch)?;
    let out = lab.ok(&t.router, &["ip", "-batch", &path.to_string_lossy()])?;
    let hops: Vec<String> = out
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.trim().is_empty())
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.windows(2).find(|p| p[0] == "via").map(|p| p[1].to_string()).unwrap_or_else(|| "-".into())
        })
        .collect();
    if hops.len() != usize::from(FLOWS) {
        bail!("ip route get answered {} lines for {FLOWS} flows", hops.len());
    }
    Ok(hops)
}

fn moved(a: &[String], b: &[String]) -> (f64, f64) {
    let n = a.len() as f64;
    let changed = a.iter().zip(b).filter(|(x, y)| x != y).count() as f64;
    let mut per: HashMap<&str, usize> = HashMap::new();
    for h in a {
        *per.entry(h.as_str()).or_default() += 1;
    }
    (changed / n, per.values().map(|&c| c as f64 / n).fold(f64::NAN, f64::min))
}

fn disruption(lab: &mut Lab, t: &Ecmp, rlvs: &str) -> Result<()> {
    println!("\n## Flows that change director when one leaves ({FLOWS} flows, the router's lookups, L4 hash)\n");
    println!("| route | leaving | flows moved | the leaver's own share (the least that must move) |");
    println!("|---|---|---|---|");
    directors(lab, t, rlvs, 3)?;
    let all = next_hop_map(lab, t, VIP)?;
    for (i, leaving) in DIRECTORS.iter().enumerate() {
        let name = format!("rlvs-d{}", i + 1);
        lab.stop(&name, libc::SIGTERM)?;
        let rest: Vec<&str> = DIRECTORS.iter().filter(|d| *d != leaving).copied().collect();
        ecmp::wait_next_hops(lab, t, &rest, Duration::from_secs(10))?;
        let after = next_hop_map(lab, t, VIP)?;
        let own = all.iter().filter(|h| h == leaving).count() as f64 / all.len() as f64;
        println!(
            "| BIRD multipath (hash-threshold) | d{} | {:.1}% | {:.1}% |",
            i + 1,
            100.0 * moved(&all, &after).0,
            100.0 * own
        );
        ecmp::start_director(lab, t, i, rlvs, "2")?;
        ecmp::wait_next_hops(lab, t, &DIRECTORS, Duration::from_secs(30))?;
    }
    // The same next hops as nexthop objects, in a hash-threshold group and
    // a resilient one, for a second address the directors do not serve
    // (only the router's choice is read).
    let r = &t.router;
    for (i, d) in DIRECTORS.iter().enumerate() {
        lab.ok(r, &["ip", "nexthop", "add", "id", &format!("{}", 11 + i), "via", d, "dev", "eth1"])?;
    }
    for (kind, id, extra) in [
        ("hash-threshold group", "100", vec![]),
        ("resilient group, 512 buckets", "200", vec!["type", "resilient", "buckets", "512"]),
    ] {
        let dst = format!("10.70.2.{id}");
        for (leave, group) in [("d1", "12/13"), ("d2", "11/13"), ("d3", "11/12")] {
            // A fresh group each time: a resilient group hands buckets
            // back to a returning next hop only as they go idle.
            let mut add = vec!["ip", "nexthop", "add", "id", id, "group", "11/12/13"];
            add.extend(&extra);
            lab.ok(r, &add)?;
            lab.ok(r, &["ip", "route", "add", &dst, "nhid", id])?;
            let before = next_hop_map(lab, t, &dst)?;
            let mut rep = vec!["ip", "nexthop", "replace", "id", id, "group", group];
            rep.extend(&extra);
            lab.ok(r, &rep)?;
            let after = next_hop_map(lab, t, &dst)?;
            let leaver = DIRECTORS[usize::from(leave.as_bytes()[1] - b'1')];
            let own = before.iter().filter(|h| *h == leaver).count() as f64 / before.len() as f64;
            println!("| {kind} | {leave} | {:.1}% | {:.1}% |", 100.0 * moved(&before, &after).0, 100.0 * own);
            lab.ok(r, &["ip", "route", "del", &dst])?;
            lab.ok(r, &["ip", "nexthop", "del", "id", id])?;
        }
    }
    Ok(())
}

fn timers(lab: &mut Lab, t: &Ecmp, rlvs: &str, runs: usize) -> Result<()> {
    directors(lab, t, rlvs, 3)?;
    let others = |i: usize| DIRECTORS.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, d)| *d).collect::<Vec<_>>();
    let mut kill = Vec::new();
    let mut restart = Vec::new();
    let mut gs = Vec::new();
    let mut withdrawn = Vec::new();
    let mut quorum_down = Vec::new();
    let mut quorum_up = Vec::new();
    let mut bgp_silent = Vec::new();
    for _ in 0..runs {
        // SIGKILL rlvs on d1, then start it again.
        lab.stop("rlvs-d1", libc::SIGKILL)?;
        kill.push(ms(ecmp::wait_next_hops(lab, t, &others(0), Duration::from_secs(10))?));
        let t0 = Instant::now();
        ecmp::start_director(lab, t, 0, rlvs, "2")?;
        ecmp::wait_next_hops(lab, t, &DIRECTORS, Duration::from_secs(30))?;
        restart.push(ms(t0.elapsed()));
        // Drain d2 (drain_time 2 s).
        let t0 = Instant::now();
        let mut c = lab
            .command(&t.directors[1], &[rlvs, "ctl", "announce", "drain"])
            .stdout(std::process::Stdio::null())
            .spawn()?;
        ecmp::wait_next_hops(lab, t, &others(1), Duration::from_secs(10))?;
        gs.push(ms(t0.elapsed()));
        c.wait()?;
        Lab::wait_for(Duration::from_secs(10), || {
            let s = lab.ok(&t.directors[1], &[rlvs, "ctl", "announce", "--json"]).ok()?;
            s.contains("\"withdrawn\"").then_some(())
        })
        .context("d2 did not withdraw")?;
        withdrawn.push(ms(t0.elapsed()));
        lab.ok(&t.directors[1], &[rlvs, "ctl", "announce", "resume"])?;
        ecmp::wait_next_hops(lab, t, &DIRECTORS, Duration::from_secs(10))?;
        // d3 loses the :8080 real servers (its checks rejected), then not.
        let set = SERVERS.join(", ");
        let rule = format!(
            "table inet benchblock {{\n chain out {{\n  type filter hook output priority 0;\n  ip daddr {{ {set} }} tcp dport {DOWNLOAD_PORT} reject with tcp reset\n }}\n}}\n"
        );
        let f = lab.dir().join("block.nft");
        std::fs::write(&f, rule)?;
        lab.ok(&t.directors[2], &["nft", "-f", &f.to_string_lossy()])?;
        quorum_down.push(ms(ecmp::wait_next_hops(lab, t, &others(2), Duration::from_secs(30))?));
        lab.ok(&t.directors[2], &["nft", "delete", "table", "inet", "benchblock"])?;
        quorum_up.push(ms(ecmp::wait_next_hops(lab, t, &DIRECTORS, Duration::from_secs(30))?));
        // A director gone silent (its machine dead, not just rlvs): BGP
        // packets dropped both ways; only the hold timer notices.
        let rule = "table inet benchsilent {\n chain in {\n  type filter hook input priority 0;\n  tcp sport 179 drop\n  tcp dport 179 drop\n }\n chain out {\n  type filter hook output priority 0;\n  tcp sport 179 drop\n  tcp dport 179 drop\n }\n}\n";
        std::fs::write(&f, rule)?;
        lab.ok(&t.directors[2], &["nft", "-f", &f.to_string_lossy()])?;
        bgp_silent.push(ms(ecmp::wait_next_hops(lab, t, &others(2), Duration::from_secs(3 * u64::from(HOLD_TIME)))?));
        lab.ok(&t.directors[2], &["nft", "delete", "table", "inet", "benchsilent"])?;
        ecmp::wait_next_hops(lab, t, &DIRECTORS, Duration::from_secs(30))?;
    }
    println!("\n## Withdrawal and re-announcement (median of {runs}, ms, seen in the router's table)\n");
    println!("| event | median | min | max | the timers that bound it |");
    println!("|---|---|---|---|---|");
    let row = |what: &str, v: Vec<f64>, timer: &str| {
        let (lo, hi) = (v.iter().cloned().fold(f64::INFINITY, f64::min), v.iter().cloned().fold(0.0, f64::max));
        println!("| {what} | {:.0} | {lo:.0} | {hi:.0} | {timer} |", median(v));
    };
    row("SIGKILL rlvs -> withdrawn", kill, "none: the device dies with the process, BIRD withdraws at once");
    row("rlvs restarted -> announced", restart, "rlvs start-up (real servers start alive, as in keepalived)");
    row("drain -> out of ECMP (GRACEFUL_SHUTDOWN)", gs, "none: the request moves the address at once");
    row("drain -> withdrawn", withdrawn, "drain_time 2 s");
    row(
        "real servers of :8080 lost -> withdrawn",
        quorum_down,
        "TCP_CHECK connect_timeout 1 s, retry 1, delay_before_retry 1 s, delay_loop 1 s",
    );
    row("real servers back -> announced", quorum_up, "delay_loop 1 s (one good check)");
    row("director silent (BGP dropped) -> withdrawn", bgp_silent, "hold time 3 s, keepalive 1 s");
    Ok(())
}

pub fn run(rlvs: &str, runs: usize, seconds: u32, parts: &[String]) -> Result<()> {
    let mut lab = Lab::new()?;
    let t = ecmp::build(&mut lab, rlvs, 100_000, 1_000_000)?;
    nginx_pages(&mut lab, &t)?;
    // wrk closes first and piles up TIME_WAIT sockets; past ~30 000 of
    // them the client's connect() spends its time looking for a port
    // (__inet_hash_connect under perf) and the rate falls to a few hundred
    // a second whatever the directors do. Reusing them keeps the
    // generator out of the measurement.
    for kv in ["net.ipv4.tcp_tw_reuse=1", "net.ipv4.ip_local_port_range=1024 65535"] {
        lab.ok(&t.client, &["sysctl", "-qw", kv])?;
    }
    let adm = lab.dir().join("ipvsadm");
    std::os::unix::fs::symlink(rlvs, &adm)?;
    let adm = adm.to_string_lossy().into_owned();
    let engine = std::env::var("RLVS_ENGINE").unwrap_or_else(|_| "auto".into());
    println!("# rlvs-bench ecmp (engine {engine}; router BIRD 2 with L4 multipath hash; DR, mh + mh-port + flag-3)");
    let part = |p: &str| parts.iter().any(|x| x == p);
    if part("hold") {
        // Debugging: the topology with every director, left up.
        directors(&mut lab, &t, rlvs, 3)?;
        println!("lab up: {}", lab.dir().display());
        std::thread::sleep(Duration::from_secs(1200));
    }
    if part("shares") {
        shares(&mut lab, &t, rlvs, &adm, runs, seconds)?;
    }
    if part("disruption") {
        disruption(&mut lab, &t, rlvs)?;
    }
    if part("timers") {
        timers(&mut lab, &t, rlvs, runs)?;
    }
    Ok(())
}
