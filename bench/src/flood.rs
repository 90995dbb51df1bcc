//! A SYN flood against a bounded connection table, with legitimate clients
//! in the middle of it:
//!
//!   cli --(10.2.0.0/24)-- director --(10.3.0.0/24)-- rs (HTTP on 80)
//!
//! Per method (DR, NAT): the SYN capacity of the path first (the generator
//! at full speed for a few seconds into an unbounded table, counted at the
//! real server's ingress), then, each with a fresh daemon bounded at
//! `limit` connections, a flood at 80 % of that capacity from 2^20 spoofed
//! sources (100.64.0.0/12), once with the defences on (drop_entry and
//! secure_tcp at 1) and once off. drop_packet stays off in both: at the
//! bound it drops every new connection, legitimate ones included, which is
//! its purpose (shedding CPU), not this test's. The real server drops the
//! flood at its ingress (it is the director under test, not its kernel's
//! SYN cookies). While the flood runs, `curls` legitimate requests go out
//! at an even pace, each with a 2 s timeout; the table's size and the
//! daemon's memory are sampled every second. After the flood: requests
//! that must all succeed, and (with `drain`) how long the table takes to
//! shed the flood's entries by their own timeouts (SYN_RECV: 60 s).
//!
//! The director runs on CPU 1 (its ingress NAPI kthread too), the
//! generator on CPU 0, as in `pps`.

use anyhow::{bail, Context, Result};
use rlvs_netlab::Lab;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const VIP: &str = "10.0.0.100";
const CLI_MAC: &str = "02:00:00:00:20:01";
const DIR_IN_MAC: &str = "02:00:00:00:20:02";
const DIR_OUT_MAC: &str = "02:00:00:00:20:03";
const RS_MAC: &str = "02:00:00:00:20:04";
/// Spoofed sources: 2^20 addresses of 100.64.0.0/10.
const SOURCES: u32 = 1 << 20;

pub struct Options {
    pub methods: Vec<String>,
    pub seconds: f64,
    pub curls: usize,
    pub limit: u64,
    pub drain: bool,
    pub engine: String,
    pub rlvs: String,
}

/// One flood run.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub method: String,
    pub defences: bool,
    pub capacity: f64,
    pub flood_rate: f64,
    pub curls_ok: usize,
    pub curls: usize,
    pub after_ok: usize,
    pub after: usize,
    pub max_conns: u64,
    pub limit: u64,
    pub max_rss_mib: f64,
    pub refused: u64,
    pub replaced: u64,
    pub swept: u64,
    pub packet_drops: u64,
    /// Seconds after the flood until the table held no more than the
    /// legitimate clients' entries (None: not measured, or not within
    /// 130 s; secure_tcp's SYNACK lasts 120 s).
    pub drained_after: Option<f64>,
}

struct Path {
    lab: Lab,
    cli: String,
    dir: String,
    rs: String,
}

fn build(method: &str) -> Result<Path> {
    let mut lab = Lab::new()?;
    let cli = lab.bare_host("cli")?;
    let dir = lab.bare_host("dir")?;
    let rs = lab.bare_host("rs")?;
    lab.link((&cli, "eth0", CLI_MAC, "10.2.0.1/24"), (&dir, "eth0", DIR_IN_MAC, "10.2.0.254/24"))?;
    lab.link((&dir, "eth1", DIR_OUT_MAC, "10.3.0.254/24"), (&rs, "eth0", RS_MAC, "10.3.0.1/24"))?;
    lab.ok(&cli, &["ip", "route", "add", &format!("{VIP}/32"), "via", "10.2.0.254"])?;
    lab.ok(&rs, &["ip", "route", "add", "default", "via", "10.3.0.254"])?;
    // Replies to spoofed sources (NAT SYN-ACKs, were any to pass) go to
    // the client's side and die there.
    lab.ok(&dir, &["ip", "route", "add", "default", "via", "10.2.0.1"])?;
    lab.ok(&dir, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
    if method == "dr" {
        lab.ok(&rs, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"])?;
        lab.ok(&rs, &["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"])?;
        lab.ok(&rs, &["sysctl", "-qw", "net.ipv4.conf.all.arp_announce=2"])?;
    }
    // The flood ends at the real server's ingress, counted: what the
    // director forwarded of it.
    lab.ok(&rs, &["nft", "add", "table", "netdev", "flood"])?;
    lab.ok(
        &rs,
        &["nft", "add chain netdev flood c { type filter hook ingress device eth0 priority -500; policy accept; }"],
    )?;
    lab.ok(&rs, &["nft", "add rule netdev flood c ip saddr 100.64.0.0/10 counter drop"])?;
    crate::pps::director_receive(&lab, &cli, &dir, RS_MAC)?;
    rlvs_netlab::web::start(&mut lab, &rs, "web", "rs1", &[])?;
    Ok(Path { lab, cli, dir, rs })
}

impl Path {
    /// A fresh daemon with `defence` options and the service.
    fn daemon(&mut self, o: &Options, method: &str, defence: &[&str]) -> Result<()> {
        let _ = self.lab.stop("daemon", libc::SIGTERM);
        let mut argv = vec!["taskset", "-c", "1", &o.rlvs, "daemon", "--log", "warn", "--engine", &o.engine];
        argv.extend_from_slice(defence);
        self.lab.spawn(&self.dir, "daemon", &argv)?;
        let up = Lab::wait_for(Duration::from_secs(10), || {
            self.lab.run(&self.dir, &[&o.rlvs, "adm", "-Ln"]).ok().filter(|out| out.status.success())
        });
        if up.is_none() {
            bail!("rlvs daemon did not start: {}", self.lab.log("daemon"));
        }
        let svc = format!("{VIP}:80");
        self.lab.ok(&self.dir, &[&o.rlvs, "adm", "-A", "-t", &svc, "-s", "rr"])?;
        let flag = if method == "dr" { "-g" } else { "-m" };
        self.lab.ok(&self.dir, &[&o.rlvs, "adm", "-a", "-t", &svc, "-r", "10.3.0.1:80", flag])?;
        // The director's ingress NAPI kthread on CPU 1, with the daemon.
        crate::pps::pin_napi()?;
        Ok(())
    }

    fn forwarded_flood(&self) -> Result<u64> {
        let out = self.lab.ok(&self.rs, &["nft", "list", "chain", "netdev", "flood", "c"])?;
        let words: Vec<&str> = out.split_whitespace().collect();
        let i = words.iter().position(|w| *w == "packets").context("no counter")?;
        Ok(words[i + 1].parse()?)
    }

    fn flood(&mut self, rate: u64, seconds: f64, first: u64) -> Result<()> {
        let me = std::env::current_exe()?.to_string_lossy().into_owned();
        let (rate, secs, first) = (rate.to_string(), seconds.to_string(), first.to_string());
        let spoofed = SOURCES.to_string();
        let argv = [
            "taskset",
            "-c",
            "0",
            &me,
            "gen",
            "--ifname",
            "eth0",
            "--src-mac",
            CLI_MAC,
            "--dst-mac",
            DIR_IN_MAC,
            "--flows",
            "1",
            "--seconds",
            &secs,
            "--syn",
            "--rate",
            &rate,
            "--first",
            &first,
            "--spoofed",
            &spoofed,
            "--dst",
            VIP,
            "--dport",
            "80",
        ];
        self.lab.spawn(&self.cli, "gen", &argv)?;
        Ok(())
    }

    fn engine(&self, o: &Options) -> Result<serde_json::Value> {
        let out = self.lab.ok(&self.dir, &[&o.rlvs, "ctl", "defence", "--json"])?;
        Ok(serde_json::from_str(&out)?)
    }

    fn curl(&self) -> Result<Child> {
        let url = format!("http://{VIP}/");
        Ok(self
            .lab
            .command(&self.cli, &["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", &url])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?)
    }
}

fn succeeded(children: Vec<Child>) -> usize {
    children.into_iter().filter_map(|c| c.wait_with_output().ok()).filter(|o| o.stdout == b"200").count()
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// SYNs a second the path forwards into an unbounded table.
fn capacity(p: &mut Path, o: &Options, method: &str) -> Result<f64> {
    p.daemon(o, method, &["--conn-limit", "none"])?;
    p.flood(0, 4.0, 0)?;
    std::thread::sleep(Duration::from_secs(1));
    let (c0, t0) = (p.forwarded_flood()?, Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    let (c1, t1) = (p.forwarded_flood()?, Instant::now());
    let _ = p.lab.stop("gen", libc::SIGTERM);
    Ok((c1 - c0) as f64 / (t1 - t0).as_secs_f64())
}

fn flood_run(p: &mut Path, o: &Options, method: &str, capacity: f64, defences: bool) -> Result<Outcome> {
    let limit = o.limit.to_string();
    let mut args = vec!["--conn-limit", &limit];
    let on = ["--drop-entry", "1", "--drop-packet", "0", "--secure-tcp", "1"];
    let off = ["--drop-entry", "0", "--drop-packet", "0", "--secure-tcp", "0"];
    args.extend_from_slice(if defences { &on } else { &off });
    p.daemon(o, method, &args)?;
    let pid = p.lab.spawn_pid("daemon").context("daemon pid")?;
    let rate = (capacity * 0.8) as u64;
    let c0 = p.forwarded_flood()?;
    let started = Instant::now();
    p.flood(rate, o.seconds, if defences { 1 << 30 } else { 2 << 30 })?;
    let mut out = Outcome { method: method.into(), defences, capacity, limit: o.limit, ..Default::default() };
    let mut curls = Vec::with_capacity(o.curls);
    let pace = Duration::from_secs_f64(o.seconds / o.curls as f64);
    let mut next_sample = started;
    // The first curl after a second of flood, the last a second before its end.
    let first_curl = started + Duration::from_secs(1);
    let pace = pace.mul_f64((o.seconds - 2.0).max(1.0) / o.seconds);
    while curls.len() < o.curls {
        let due = first_curl + pace * curls.len() as u32;
        let now = Instant::now();
        if now >= next_sample {
            let e = p.engine(o)?;
            out.max_conns = out.max_conns.max(e["connections"].as_u64().unwrap_or(0));
            out.max_rss_mib = out.max_rss_mib.max(rss_mib(pid));
            next_sample = now + Duration::from_secs(1);
        }
        if now >= due {
            curls.push(p.curl()?);
        } else {
            std::thread::sleep((due - now).min(Duration::from_millis(20)));
        }
    }
    let flood_end = started + Duration::from_secs_f64(o.seconds);
    while Instant::now() < flood_end {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = p.lab.stop("gen", libc::SIGTERM);
    let flood_secs = started.elapsed().as_secs_f64();
    out.flood_rate = (p.forwarded_flood()? - c0) as f64 / flood_secs;
    out.curls = curls.len();
    out.curls_ok = succeeded(curls);
    let e = p.engine(o)?;
    out.max_conns = out.max_conns.max(e["connections"].as_u64().unwrap_or(0));
    out.max_rss_mib = out.max_rss_mib.max(rss_mib(pid));
    let after: Vec<Child> = (0..20).map(|_| p.curl()).collect::<Result<_>>()?;
    out.after = after.len();
    out.after_ok = succeeded(after);
    let d = &e["defence"];
    let n = |k: &str| d[k].as_u64().unwrap_or(0);
    (out.refused, out.replaced, out.swept, out.packet_drops) =
        (n("refused_at_limit"), n("entries_replaced"), n("entries_dropped"), n("packets_dropped"));
    if o.drain && defences {
        let legit = (out.curls + out.after) as u64;
        let since = Instant::now();
        out.drained_after = Lab::wait_for(Duration::from_secs(130), || {
            std::thread::sleep(Duration::from_millis(950));
            let conns = p.engine(o).ok()?["connections"].as_u64()?;
            (conns <= legit).then(|| since.elapsed().as_secs_f64())
        });
    }
    Ok(out)
}

pub fn run(o: &Options) -> Result<Vec<Outcome>> {
    let mut all = Vec::new();
    for method in &o.methods {
        let mut p = build(method)?;
        let cap = capacity(&mut p, o, method)?;
        eprintln!("{method}: SYN capacity {cap:.0}/s");
        for defences in [true, false] {
            let r = flood_run(&mut p, o, method, cap, defences)?;
            eprintln!("{r:?}");
            all.push(r);
        }
    }
    println!(
        "| method | defences | SYN capacity /s | flood offered /s | flood forwarded /s | legit OK during | after | max conns / limit | max RSS MiB | refused | replaced | swept | drop_packet | drained after |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &all {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {}/{} ({:.1} %) | {}/{} | {} / {} | {:.0} | {} | {} | {} | {} | {} |",
            r.method.to_uppercase(),
            if r.defences { "on" } else { "off" },
            r.capacity,
            r.capacity * 0.8,
            r.flood_rate,
            r.curls_ok,
            r.curls,
            100.0 * r.curls_ok as f64 / r.curls.max(1) as f64,
            r.after_ok,
            r.after,
            r.max_conns,
            r.limit,
            r.max_rss_mib,
            r.refused,
            r.replaced,
            r.swept,
            r.packet_drops,
            r.drained_after.map_or("-".into(), |s| format!("{s:.0} s")),
        );
    }
    Ok(all)
}
