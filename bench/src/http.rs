//! HTTP requests per second (wrk against two nginx real servers) and UDP
//! round-trip latency through the director, every path measured in the
//! same run, interleaved. One lab holds the baselines, one lab per rlvs
//! engine holds rlvs's paths (so no baseline pays for an XDP program):
//!
//! - direct: the client straight to one real server (its second link);
//! - kernel ip_forward: the director routes to a real server's address;
//! - nft netdev fwd: stateless MAC rewrite and forward, both directions;
//! - nft DNAT (numgen round robin, conntrack) and HAProxy in TCP mode;
//! - rlvs DR (replies straight back to the client), NAT and FULLNAT.
//!
//! Latency: `rlvs-bench ping` sends one 64-byte UDP request at a time to an
//! echo server on the real servers and records each round trip.

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

const CLIENT_MAC: &str = "02:00:00:00:20:01";
const DIR_IN_MAC: &str = "02:00:00:00:20:02";
const DIR_OUT_MAC: &str = "02:00:00:00:20:12";
const RS1_MAC: &str = "02:00:00:00:20:22";

struct Setup {
    lab: Lab,
    client: String,
}

/// A path: its name, its HTTP URL, and its UDP echo address.
type Target = (String, String, String);

/// The common topology: client (eth0 on the public side, eth1 on the real
/// servers' segment), director, two real servers with nginx and an echo.
fn topology(me: &str) -> Result<(Lab, String, String)> {
    let mut lab = Lab::new()?;
    lab.segment("priv")?;
    let client = lab.host("cl", "eth0", CLIENT_MAC, "10.1.1.10/24")?;
    // Connection-per-request runs open tens of thousands of connections;
    // let the client reuse its TIME_WAIT ports as a real load generator would.
    lab.ok(&client, &["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1", "net.ipv4.ip_local_port_range=1024 65000"])?;
    // DR replies come back on eth1 from a VIP routed via eth0.
    lab.ok(&client, &["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"])?;
    lab.plug(&client, "eth1", "priv", "02:00:00:00:20:11", "192.168.100.50/24")?;
    lab.ok(&client, &["sysctl", "-qw", "net.ipv4.conf.eth1.rp_filter=0"])?;
    let dir = lab.host("dir", "eth0", DIR_IN_MAC, "10.1.1.243/24")?;
    lab.plug(&dir, "eth1", "priv", DIR_OUT_MAC, "192.168.100.254/24")?;
    lab.ok(&dir, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
    let d = lab.dir().to_string_lossy().into_owned();
    for (i, tag) in [(2u8, "rs1"), (3, "rs2")] {
        let ns = lab.bare_host(tag)?;
        lab.plug(&ns, "eth0", "priv", &format!("02:00:00:00:20:2{i}"), &format!("192.168.100.{i}/24"))?;
        lab.ok(&ns, &["ip", "route", "add", "default", "via", "192.168.100.254"])?;
        // DR: the VIP on lo, quiet about it, and its replies straight to
        // the client's second link.
        lab.ok(&ns, &["ip", "addr", "add", "10.0.0.103/32", "dev", "lo"])?;
        lab.ok(&ns, &["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"])?;
        lab.ok(&ns, &["ip", "rule", "add", "from", "10.0.0.103", "lookup", "100"])?;
        lab.ok(&ns, &["ip", "route", "add", "default", "via", "192.168.100.50", "table", "100"])?;
        // Baseline addresses reached through the director's kernel.
        lab.ok(&ns, &["ip", "addr", "add", &format!("172.16.0.{i}/32"), "dev", "lo"])?;
        lab.ok(&ns, &["ip", "addr", "add", &format!("172.16.0.1{i}/32"), "dev", "lo"])?;
        std::fs::create_dir_all(format!("{d}/www-{tag}"))?;
        std::fs::write(format!("{d}/www-{tag}/index.html"), format!("{tag}\n"))?;
        let conf = format!("{d}/nginx-{tag}.conf");
        std::fs::write(&conf, NGINX_CONF.replace("{dir}", &d).replace("{tag}", tag))?;
        lab.spawn(&ns, &format!("nginx-{tag}"), &["nginx", "-c", &conf, "-g", "daemon off;"])?;
        // One socket per address, so each reply leaves from the address the
        // request went to (the VIP, for DR).
        let addrs = format!("192.168.100.{i},10.0.0.103,172.16.0.{i},172.16.0.1{i}");
        lab.spawn(&ns, &format!("echo-{tag}"), &[me, "echo", "--port", "7", "--addrs", &addrs])?;
    }
    for vip in ["10.0.0.100", "10.0.0.101", "10.0.0.102", "10.0.0.103", "172.16.0.2", "172.16.0.12"] {
        lab.ok(&client, &["ip", "route", "add", vip, "via", "10.1.1.243", "dev", "eth0"])?;
    }
    Ok((lab, client, dir))
}

fn baselines(me: &str) -> Result<(Setup, Vec<Target>)> {
    let (lab, client, dir) = topology(me)?;
    lab.ok(&dir, &["ip", "route", "add", "172.16.0.2/32", "via", "192.168.100.2"])?;
    // nft netdev fwd for 172.16.0.12 (on rs1), both ways, no routing.
    for cmd in [
        "add table netdev fw".to_string(),
        "add chain netdev fw in { type filter hook ingress device eth0 priority 0; policy accept; }".into(),
        "add chain netdev fw out { type filter hook ingress device eth1 priority 0; policy accept; }".into(),
        format!("add rule netdev fw in ip daddr 172.16.0.12 ether saddr set {DIR_OUT_MAC} ether daddr set {RS1_MAC} fwd to eth1"),
        format!("add rule netdev fw out ip saddr 172.16.0.12 ether saddr set {DIR_IN_MAC} ether daddr set {CLIENT_MAC} fwd to eth0"),
    ] {
        lab.ok(&dir, &["nft", &cmd])?;
    }
    for vip in ["10.0.0.101", "10.0.0.102"] {
        lab.ok(&dir, &["ip", "addr", "add", &format!("{vip}/32"), "dev", "lo"])?;
    }
    lab.ok(&dir, &["nft", "add", "table", "ip", "benchnat"])?;
    lab.ok(&dir, &["nft", "add chain ip benchnat pre { type nat hook prerouting priority dstnat; }"])?;
    lab.ok(&dir, &["nft", "add rule ip benchnat pre ip daddr 10.0.0.101 meta l4proto { tcp, udp } th dport { 7, 80 } dnat to numgen inc mod 2 map { 0 : 192.168.100.2, 1 : 192.168.100.3 }"])?;
    let d = lab.dir().to_string_lossy().into_owned();
    let hcfg = format!("{d}/haproxy.cfg");
    std::fs::write(&hcfg, HAPROXY_CONF)?;
    let mut lab = lab;
    lab.spawn(&dir, "haproxy", &["haproxy", "-f", &hcfg, "-db"])?;
    let t = |n: &str, url: &str, echo: &str| (n.to_string(), url.to_string(), echo.to_string());
    let targets = vec![
        t("direct to one real server", "http://192.168.100.2/", "192.168.100.2:7"),
        t("kernel ip_forward", "http://172.16.0.2/", "172.16.0.2:7"),
        t("nft netdev fwd", "http://172.16.0.12/", "172.16.0.12:7"),
        t("nft DNAT (kernel)", "http://10.0.0.101/", "10.0.0.101:7"),
        t("HAProxy TCP mode", "http://10.0.0.102/", ""),
    ];
    Ok((Setup { lab, client }, targets))
}

fn rlvs_lab(me: &str, rlvs: &str, engine: &str) -> Result<(Setup, Vec<Target>)> {
    let (mut lab, client, dir) = topology(me)?;
    for vip in ["10.0.0.100", "10.0.0.103"] {
        lab.ok(&dir, &["ip", "addr", "add", &format!("{vip}/32"), "dev", "lo"])?;
    }
    lab.spawn(&dir, "daemon", &[rlvs, "daemon", "--log", "warn", "--engine", engine])?;
    let up = Lab::wait_for(Duration::from_secs(10), || {
        lab.run(&dir, &[rlvs, "adm", "-Ln"]).ok().filter(|o| o.status.success())
    });
    if up.is_none() {
        bail!("rlvs daemon did not start: {}", lab.log("daemon"));
    }
    let mut cmds = Vec::new();
    for (proto, vport, rport_nat) in [("-t", "80", "8080"), ("-u", "7", "7")] {
        cmds.push(format!("-A {proto} 10.0.0.103:{vport} -s rr"));
        cmds.push(format!("-A {proto} 10.0.0.100:{vport} -s rr"));
        let fport = if proto == "-t" { "81" } else { "8" };
        cmds.push(format!("-A {proto} 10.0.0.100:{fport} -s rr"));
        cmds.push(format!("--add-laddr {proto} 10.0.0.100:{fport} -z 192.168.100.254"));
        for rs in ["192.168.100.2", "192.168.100.3"] {
            cmds.push(format!("-a {proto} 10.0.0.103:{vport} -r {rs} -g"));
            cmds.push(format!("-a {proto} 10.0.0.100:{vport} -r {rs}:{rport_nat} -m"));
            cmds.push(format!("-a {proto} 10.0.0.100:{fport} -r {rs}:{rport_nat} --fullnat"));
        }
    }
    for cmd in &cmds {
        let mut argv = vec![rlvs, "adm"];
        argv.extend(cmd.split(' '));
        lab.ok(&dir, &argv).with_context(|| cmd.to_string())?;
    }
    let t = |n: &str, url: &str, echo: &str| (format!("rlvs {n} {engine}"), url.to_string(), echo.to_string());
    let targets = vec![
        t("DR", "http://10.0.0.103/", "10.0.0.103:7"),
        t("NAT", "http://10.0.0.100/", "10.0.0.100:7"),
        t("FULLNAT", "http://10.0.0.100:81/", "10.0.0.100:8"),
    ];
    Ok((Setup { lab, client }, targets))
}

fn wait_up(s: &Setup, targets: &[Target]) -> Result<()> {
    for (_, url, _) in targets {
        let ok = Lab::wait_for(Duration::from_secs(10), || {
            s.lab.run(&s.client, &["curl", "-s", "--max-time", "1", url]).ok().filter(|o| o.status.success())
        });
        if ok.is_none() {
            bail!("{url} does not answer");
        }
    }
    Ok(())
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

/// (p50, p99) round trip in microseconds.
fn ping(s: &Setup, me: &str, to: &str, count: u32) -> Result<(f64, f64)> {
    let out = s.lab.ok(&s.client, &[me, "ping", "--to", to, "--count", &count.to_string()])?;
    let nums: Vec<f64> = out.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    match nums[..] {
        [p50, p99, ..] => Ok((p50, p99)),
        _ => bail!("ping said: {out}"),
    }
}

pub fn run(runs: usize, seconds: u32, conns: u32, rlvs: &str, engines: &[String], pings: u32) -> Result<()> {
    let me = std::env::current_exe()?.to_string_lossy().into_owned();
    let mut labs = vec![baselines(&me)?];
    for e in engines {
        labs.push(rlvs_lab(&me, rlvs, e)?);
    }
    // RLVS_BENCH_PATHS=fullnat,direct measures only the paths whose names
    // contain one of the words (for looking into one of them).
    let only = std::env::var("RLVS_BENCH_PATHS").unwrap_or_default().to_lowercase();
    for (s, targets) in &mut labs {
        targets.retain(|(name, _, _)| {
            name.starts_with("direct") || only.is_empty() || only.split(',').any(|w| name.to_lowercase().contains(w))
        });
        wait_up(s, targets)?;
    }
    for close in [false, true] {
        println!();
        println!("{}", if close { "New connection per request:" } else { "Keep-alive connections:" });
        println!();
        http_table(&labs, runs, seconds, conns, close)?;
    }
    if pings > 0 {
        println!();
        println!("UDP round trip, one 64-byte request at a time ({pings} per run):");
        println!();
        latency_table(&labs, &me, runs, pings)?;
    }
    Ok(())
}

fn all(labs: &[(Setup, Vec<Target>)]) -> Vec<(usize, &Target)> {
    labs.iter().enumerate().flat_map(|(i, (_, t))| t.iter().map(move |x| (i, x))).collect()
}

/// The median of per-run ratios of path `i` to path `base`.
fn ratio(res: &[Vec<f64>], i: usize, base: usize) -> f64 {
    let mut r: Vec<f64> = res[i].iter().zip(&res[base]).map(|(a, b)| a / b).collect();
    crate::median(&mut r)
}

fn http_table(labs: &[(Setup, Vec<Target>)], runs: usize, seconds: u32, conns: u32, close: bool) -> Result<()> {
    let paths = all(labs);
    let mut res: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    println!("| run | {} |", paths.iter().map(|p| p.1 .0.as_str()).collect::<Vec<_>>().join(" | "));
    println!("|---|{}", "---|".repeat(paths.len()));
    for run in 0..runs {
        let mut row = Vec::new();
        for (i, (li, (_, url, _))) in paths.iter().enumerate() {
            let rps = wrk(&labs[*li].0, url, seconds, conns, close)?;
            res[i].push(rps);
            row.push(format!("{rps:.0}"));
        }
        println!("| {} | {} |", run + 1, row.join(" | "));
    }
    let find = |n: &str| paths.iter().position(|p| p.1 .0.starts_with(n));
    let (direct, fwd, nft) = (find("direct").unwrap_or(0), find("kernel"), find("nft netdev"));
    println!();
    println!("| path | requests/s (median) | ratio to direct | ratio to ip_forward | ratio to nft fwd |");
    println!("|---|---|---|---|---|");
    for (i, (_, (name, _, _))) in paths.iter().enumerate() {
        let m = crate::median(&mut res[i].clone());
        let r = |b: Option<usize>| b.map_or("-".to_string(), |b| format!("{:.3}", ratio(&res, i, b)));
        println!("| {name} | {m:.0} | {:.3} | {} | {} |", ratio(&res, i, direct), r(fwd), r(nft));
    }
    Ok(())
}

fn latency_table(labs: &[(Setup, Vec<Target>)], me: &str, runs: usize, pings: u32) -> Result<()> {
    let paths: Vec<(usize, &Target)> = all(labs).into_iter().filter(|(_, t)| !t.2.is_empty()).collect();
    let mut p50: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    let mut p99: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    for _ in 0..runs {
        for (i, (li, (_, _, echo))) in paths.iter().enumerate() {
            let (a, b) = ping(&labs[*li].0, me, echo, pings)?;
            p50[i].push(a);
            p99[i].push(b);
        }
    }
    let med = |v: &Vec<f64>| crate::median(&mut v.clone());
    let direct = paths.iter().position(|p| p.1 .0.starts_with("direct")).unwrap_or(0);
    let fwd = paths.iter().position(|p| p.1 .0.starts_with("kernel")).unwrap_or(0);
    println!("| path | p50 (µs, median of {runs}) | p99 (µs) | added over direct p50 / p99 (µs) | added over ip_forward p50 / p99 (µs) |");
    println!("|---|---|---|---|---|");
    for (i, (_, (name, _, _))) in paths.iter().enumerate() {
        let (a, b) = (med(&p50[i]), med(&p99[i]));
        println!(
            "| {name} | {a:.1} | {b:.1} | {:+.1} / {:+.1} | {:+.1} / {:+.1} |",
            a - med(&p50[direct]),
            b - med(&p99[direct]),
            a - med(&p50[fwd]),
            b - med(&p99[fwd])
        );
    }
    Ok(())
}

/// `rlvs-bench echo`: answers every UDP datagram with itself, from the
/// address it was sent to (one socket and thread per address).
pub fn echo(port: u16, addrs: &[String]) -> Result<()> {
    let mut threads = Vec::new();
    for a in addrs {
        let s = std::net::UdpSocket::bind((a.as_str(), port)).with_context(|| format!("binding {a}:{port}"))?;
        threads.push(std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = s.recv_from(&mut buf) {
                let _ = s.send_to(&buf[..n], from);
            }
        }));
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

/// `rlvs-bench ping`: `count` requests one at a time; prints p50 and p99
/// in microseconds. A lost request (100 ms without an answer) counts as
/// 100 ms, so losses show in p99 rather than hiding.
pub fn ping_client(to: &str, count: u32) -> Result<()> {
    let mut lost_in_a_row = 0;
    let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
    s.connect(to)?;
    s.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut buf = [0u8; 64];
    let mut rtts = Vec::with_capacity(count as usize);
    for i in 0..count + 100 {
        let req = i.to_be_bytes();
        let mut msg = [0u8; 22];
        msg[..4].copy_from_slice(&req);
        let t0 = std::time::Instant::now();
        s.send(&msg)?;
        let rtt = loop {
            match s.recv(&mut buf) {
                Ok(n) if n >= 4 && buf[..4] == req => break t0.elapsed().as_secs_f64() * 1e6,
                Ok(_) => continue,
                Err(_) => break 100_000.0,
            }
        };
        lost_in_a_row = if rtt >= 100_000.0 { lost_in_a_row + 1 } else { 0 };
        if lost_in_a_row == 20 {
            bail!("{to}: 20 requests in a row went unanswered");
        }
        // The first hundred warm caches and neighbour tables.
        if i >= 100 {
            rtts.push(rtt);
        }
    }
    rtts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| rtts[((rtts.len() as f64 - 1.0) * q).round() as usize];
    println!("{:.1} {:.1}", at(0.5), at(0.99));
    Ok(())
}
