//! HTTP requests per second through the director (wrk against two nginx
//! real servers), every path measured in the same run, interleaved:
//! - direct: wrk straight to one real server (the baseline);
//! - rlvs NAT and rlvs FULLNAT (AF_PACKET engine);
//! - nft DNAT in the director's kernel (numgen round robin, conntrack);
//! - HAProxy in TCP mode on the director (round robin).

use anyhow::{bail, Context, Result};
use rlvs_netlab::Lab;
use std::time::Duration;

const NGINX_CONF: &str = "worker_processes 1;
pid {dir}/nginx-{tag}.pid;
error_log {dir}/nginx-{tag}.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000;
  server { listen 80; listen 8080; root {dir}/www-{tag}; }
}
";

const HAPROXY_CONF: &str = "global
  maxconn 8192
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend vip
  bind 10.0.0.102:80
  default_backend rs
backend rs
  balance roundrobin
  server rs1 192.168.100.2:80
  server rs2 192.168.100.3:80
";

struct Setup {
    lab: Lab,
    client: String,
}

fn build(rlvs: &str, ring: &str) -> Result<Setup> {
    let mut lab = Lab::new()?;
    lab.segment("priv")?;
    let client = lab.host("cl", "eth0", "02:00:00:00:20:01", "10.1.1.10/24")?;
    // Connection-per-request runs open tens of thousands of connections;
    // let the client reuse its TIME_WAIT ports as a real load generator would.
    lab.ok(&client, &["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1", "net.ipv4.ip_local_port_range=1024 65000"])?;
    lab.plug(&client, "eth1", "priv", "02:00:00:00:20:11", "192.168.100.50/24")?;
    let dir = lab.host("dir", "eth0", "02:00:00:00:20:02", "10.1.1.243/24")?;
    lab.plug(&dir, "eth1", "priv", "02:00:00:00:20:12", "192.168.100.254/24")?;
    let d = lab.dir().to_string_lossy().into_owned();
    for (i, tag) in [(2u8, "rs1"), (3, "rs2")] {
        let ns = lab.bare_host(tag)?;
        lab.plug(&ns, "eth0", "priv", &format!("02:00:00:00:20:2{i}"), &format!("192.168.100.{i}/24"))?;
        lab.ok(&ns, &["ip", "route", "add", "default", "via", "192.168.100.254"])?;
        std::fs::create_dir_all(format!("{d}/www-{tag}"))?;
        std::fs::write(format!("{d}/www-{tag}/index.html"), format!("{tag}\n"))?;
        let conf = format!("{d}/nginx-{tag}.conf");
        std::fs::write(&conf, NGINX_CONF.replace("{dir}", &d).replace("{tag}", tag))?;
        lab.spawn(&ns, &format!("nginx-{tag}"), &["nginx", "-c", &conf, "-g", "daemon off;"])?;
    }
    for vip in ["10.0.0.100", "10.0.0.101", "10.0.0.102"] {
        lab.ok(&dir, &["ip", "addr", "add", &format!("{vip}/32"), "dev", "lo"])?;
        lab.ok(&client, &["ip", "route", "add", vip, "dev", "eth0"])?;
    }
    lab.ok(&dir, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
    // nft DNAT on 10.0.0.101:80.
    lab.ok(&dir, &["nft", "add", "table", "ip", "benchnat"])?;
    lab.ok(&dir, &["nft", "add chain ip benchnat pre { type nat hook prerouting priority dstnat; }"])?;
    lab.ok(&dir, &["nft", "add rule ip benchnat pre ip daddr 10.0.0.101 tcp dport 80 dnat to numgen inc mod 2 map { 0 : 192.168.100.2, 1 : 192.168.100.3 }"])?;
    // HAProxy on 10.0.0.102:80.
    let hcfg = format!("{d}/haproxy.cfg");
    std::fs::write(&hcfg, HAPROXY_CONF)?;
    lab.spawn(&dir, "haproxy", &["haproxy", "-f", &hcfg, "-db"])?;
    // rlvs: NAT on 10.0.0.100:80, FULLNAT on 10.0.0.100:81 (real servers' 8080).
    lab.spawn(&dir, "daemon", &[rlvs, "daemon", "--log", "warn", "--ring", ring])?;
    let up = Lab::wait_for(Duration::from_secs(10), || {
        lab.run(&dir, &[rlvs, "adm", "-Ln"]).ok().filter(|o| o.status.success())
    });
    if up.is_none() {
        bail!("rlvs daemon did not start: {}", lab.log("daemon"));
    }
    for cmd in [
        "-A -t 10.0.0.100:80 -s rr",
        "-a -t 10.0.0.100:80 -r 192.168.100.2:8080 -m",
        "-a -t 10.0.0.100:80 -r 192.168.100.3:8080 -m",
        "-A -t 10.0.0.100:81 -s rr",
        "--add-laddr -t 10.0.0.100:81 -z 192.168.100.254",
        "-a -t 10.0.0.100:81 -r 192.168.100.2:8080 --fullnat",
        "-a -t 10.0.0.100:81 -r 192.168.100.3:8080 --fullnat",
    ] {
        let mut argv = vec![rlvs, "adm"];
        argv.extend(cmd.split(' '));
        lab.ok(&dir, &argv).with_context(|| cmd.to_string())?;
    }
    for url in [
        "http://192.168.100.2/",
        "http://10.0.0.100/",
        "http://10.0.0.100:81/",
        "http://10.0.0.101/",
        "http://10.0.0.102/",
    ] {
        let ok = Lab::wait_for(Duration::from_secs(10), || {
            lab.run(&client, &["curl", "-s", "--max-time", "1", url]).ok().filter(|o| o.status.success())
        });
        if ok.is_none() {
            bail!("{url} does not answer");
        }
    }
    Ok(Setup { lab, client })
}

fn wrk(s: &Setup, url: &str, seconds: u32, conns: u32, close: bool) -> Result<f64> {
    let (c, d) = (format!("-c{conns}"), format!("-d{seconds}s"));
    let mut argv = vec!["wrk", "-t1", &c, &d];
    if close {
        argv.extend(["-H", "Connection: close"]);
    }
    argv.push(url);
    let out = s.lab.ok(&s.client, &argv)?;
    let line = out.lines().find(|l| l.starts_with("Requests/sec:")).with_context(|| format!("wrk said: {out}"))?;
    Ok(line.split_whitespace().nth(1).context("no number")?.parse()?)
}

pub fn run(runs: usize, seconds: u32, conns: u32, rlvs: &str, ring: &str) -> Result<()> {
    let s = build(rlvs, ring)?;
    let paths = [
        ("direct to one real server", "http://192.168.100.2/"),
        ("rlvs NAT", "http://10.0.0.100/"),
        ("rlvs FULLNAT", "http://10.0.0.100:81/"),
        ("nft DNAT (kernel)", "http://10.0.0.101/"),
        ("HAProxy TCP mode", "http://10.0.0.102/"),
    ];
    // RLVS_BENCH_PATHS=fullnat,direct measures only the paths whose names
    // contain one of the words (for looking into one of them).
    let only = std::env::var("RLVS_BENCH_PATHS").unwrap_or_default().to_lowercase();
    let paths: Vec<_> = paths
        .into_iter()
        .filter(|(name, _)| only.is_empty() || only.split(',').any(|w| name.to_lowercase().contains(w)))
        .collect();
    for close in [false, true] {
        println!();
        println!("{}", if close { "New connection per request:" } else { "Keep-alive connections:" });
        println!();
        table(&s, &paths, runs, seconds, conns, close)?;
    }
    Ok(())
}

fn table(s: &Setup, paths: &[(&str, &str)], runs: usize, seconds: u32, conns: u32, close: bool) -> Result<()> {
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    println!("| run | {} |", paths.iter().map(|p| p.0).collect::<Vec<_>>().join(" | "));
    println!("|---|{}", "---|".repeat(paths.len()));
    for run in 0..runs {
        let mut row = Vec::new();
        for (i, (_, url)) in paths.iter().enumerate() {
            let rps = wrk(s, url, seconds, conns, close)?;
            results[i].push(rps);
            row.push(format!("{rps:.0}"));
        }
        println!("| {} | {} |", run + 1, row.join(" | "));
    }
    println!();
    println!("| path | requests/s (median) | ratio to direct |");
    println!("|---|---|---|");
    let med: Vec<f64> = results.iter_mut().map(|v| crate::median(v)).collect();
    for ((name, _), m) in paths.iter().zip(&med) {
        println!("| {name} | {m:.0} | {:.3} |", m / med[0]);
    }
    Ok(())
}
