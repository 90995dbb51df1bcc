//! Packets per second through the director, every forwarder on its own
//! copy of one path, measured interleaved in the same run:
//!
//!   gen --(10.2.0.0/24)-- director --(10.3.0.0/24)-- sink
//!
//! - kernel ip_forward: a /32 route for the VIP to the sink;
//! - nft netdev fwd: an ingress rule rewriting the MACs and forwarding to
//!   the sink's link (no routing, no conntrack);
//! - rlvs, per engine and forwarding method: the VIP as a service with the
//!   sink as real server (DR, NAT to 10.3.0.1, FULLNAT from 10.3.0.254).
//!
//! The generator (one core) sends 64-byte frames: UDP over `flows`
//! source ports, or TCP SYNs each from a new (address, port), so every one
//! is a new connection (the SYN path: scheduling, a connection entry). The
//! sink counts what arrives with an nftables counter at ingress and drops
//! it.

use anyhow::{bail, Context, Result};
use rlvs_netlab::Lab;
use std::time::{Duration, Instant};

pub const VIP: &str = "10.0.0.100";
pub const GEN_MAC: &str = "02:00:00:00:10:01";
pub const DIR_IN_MAC: &str = "02:00:00:00:10:02";
const DIR_OUT_MAC: &str = "02:00:00:00:10:03";
const SINK_MAC: &str = "02:00:00:00:10:04";

#[derive(Clone, Debug)]
pub enum Forwarder {
    Kernel,
    NftFwd,
    Rlvs { engine: String, method: String },
}

impl Forwarder {
    pub fn name(&self) -> String {
        match self {
            Forwarder::Kernel => "kernel ip_forward".into(),
            Forwarder::NftFwd => "nft netdev fwd".into(),
            Forwarder::Rlvs { engine, method } => format!("rlvs {} {engine}", method.to_uppercase()),
        }
    }
}

pub struct Path {
    pub lab: Lab,
    pub gen: String,
    pub sink: String,
    pub name: String,
}

/// Builds the path and sets the director up as `f`.
pub fn build(f: &Forwarder, rlvs: &str, proto: &str) -> Result<Path> {
    let mut lab = Lab::new()?;
    let gen = lab.bare_host("gen")?;
    let dir = lab.bare_host("dir")?;
    let sink = lab.bare_host("sink")?;
    lab.link((&gen, "eth0", GEN_MAC, "10.2.0.1/24"), (&dir, "eth0", DIR_IN_MAC, "10.2.0.254/24"))?;
    lab.link((&dir, "eth1", DIR_OUT_MAC, "10.3.0.254/24"), (&sink, "eth0", SINK_MAC, "10.3.0.1/24"))?;
    lab.ok(&sink, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"])?;
    lab.ok(&sink, &["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"])?;
    lab.ok(&sink, &["nft", "add", "table", "netdev", "bench"])?;
    lab.ok(
        &sink,
        &["nft", "add chain netdev bench c { type filter hook ingress device eth0 priority -500; policy accept; }"],
    )?;
    lab.ok(&sink, &["nft", "add", "rule", "netdev", "bench", "c", "meta", "l4proto", proto, "counter", "drop"])?;
    // The generator on CPU 0, the director's work on CPU 1 (RPS moves the
    // kernel's receive processing there; the engine is pinned there).
    lab.ok(&dir, &["sh", "-c", "echo 2 > /sys/class/net/eth0/queues/rx-0/rps_cpus"])?;
    // The sink's neighbour entry, so no forwarder waits for ARP.
    lab.ok(&dir, &["ip", "neigh", "replace", "10.3.0.1", "lladdr", SINK_MAC, "dev", "eth1"])?;
    match f {
        Forwarder::Kernel => {
            lab.ok(&dir, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
            lab.ok(&dir, &["ip", "route", "add", &format!("{VIP}/32"), "via", "10.3.0.1"])?;
        }
        Forwarder::NftFwd => {
            lab.ok(&dir, &["nft", "add", "table", "netdev", "fw"])?;
            lab.ok(
                &dir,
                &["nft", "add chain netdev fw c { type filter hook ingress device eth0 priority 0; policy accept; }"],
            )?;
            lab.ok(
                &dir,
                &[
                    "nft",
                    &format!(
                        "add rule netdev fw c ip daddr {VIP} ether saddr set {DIR_OUT_MAC} ether daddr set {SINK_MAC} fwd to eth1"
                    ),
                ],
            )?;
        }
        Forwarder::Rlvs { engine, method } => {
            lab.ok(&dir, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"])?;
            lab.spawn(&dir, "daemon", &["taskset", "-c", "1", rlvs, "daemon", "--log", "warn", "--engine", engine])?;
            let ok = Lab::wait_for(Duration::from_secs(10), || {
                lab.run(&dir, &[rlvs, "adm", "-Ln"]).ok().filter(|o| o.status.success())
            });
            if ok.is_none() {
                bail!("rlvs daemon did not start: {}", lab.log("daemon"));
            }
            let t = if proto == "udp" { "-u" } else { "-t" };
            let svc = format!("{VIP}:9");
            lab.ok(&dir, &[rlvs, "adm", "-A", t, &svc, "-s", "rr"])?;
            let flag = match method.as_str() {
                "dr" => "-g",
                "nat" => "-m",
                "fullnat" => {
                    lab.ok(&dir, &[rlvs, "adm", "--add-laddr", t, &svc, "-z", "10.3.0.254"])?;
                    // A SYN flood takes a local port per SYN: 31,744 per
                    // local address would run out within the warm-up.
                    if proto == "tcp" {
                        for i in 0..128 {
                            let lip = format!("10.3.1.{i}");
                            lab.ok(&dir, &[rlvs, "adm", "--add-laddr", t, &svc, "-z", &lip])?;
                        }
                    }
                    "--fullnat"
                }
                other => bail!("unknown method {other}"),
            };
            lab.ok(&dir, &[rlvs, "adm", "-a", t, &svc, "-r", "10.3.0.1:9", flag])?;
        }
    }
    Ok(Path { lab, gen, sink, name: f.name() })
}

fn sink_count(p: &Path) -> Result<u64> {
    let out = p.lab.ok(&p.sink, &["nft", "list", "chain", "netdev", "bench", "c"])?;
    let words: Vec<&str> = out.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "packets").context("no counter")?;
    Ok(words[i + 1].parse()?)
}

/// Packets per second reaching the sink while the generator runs.
/// With `profile`, the whole machine is sampled (perf, software clock)
/// while the counter runs, into `profile/<forwarder>.data`.
pub fn measure(p: &mut Path, flows: u16, seconds: f64, syn: bool, profile: Option<&str>) -> Result<f64> {
    let me = std::env::current_exe()?.to_string_lossy().into_owned();
    let (f, s) = (flows.to_string(), seconds.to_string());
    let mut argv = vec![
        "taskset",
        "-c",
        "0",
        &me,
        "gen",
        "--ifname",
        "eth0",
        "--src-mac",
        GEN_MAC,
        "--dst-mac",
        DIR_IN_MAC,
        "--flows",
        &f,
        "--seconds",
        &s,
    ];
    if syn {
        argv.push("--syn");
    }
    p.lab.spawn(&p.gen, "gen", &argv)?;
    std::thread::sleep(Duration::from_secs_f64(1.0));
    let perf = match profile {
        Some(dir) => {
            let out = format!("{dir}/{}.data", p.name.replace(' ', "-"));
            let secs = format!("{:.1}", seconds - 2.0);
            Some(
                std::process::Command::new("perf")
                    .args(["record", "-q", "-a", "-g", "-F", "1999", "-o", &out, "--", "sleep", &secs])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()?,
            )
        }
        None => None,
    };
    let (c0, t0) = (sink_count(p)?, Instant::now());
    std::thread::sleep(Duration::from_secs_f64(seconds - 2.0));
    let (c1, t1) = (sink_count(p)?, Instant::now());
    if let Some(mut child) = perf {
        child.wait()?;
    }
    p.lab.stop("gen", libc::SIGTERM)?;
    Ok((c1 - c0) as f64 / (t1 - t0).as_secs_f64())
}

pub struct Options {
    pub runs: usize,
    pub seconds: f64,
    pub flows: Vec<u16>,
    pub methods: Vec<String>,
    pub engines: Vec<String>,
    pub syn: bool,
    pub profile: Option<String>,
}

pub fn run(o: &Options, rlvs: &str) -> Result<()> {
    if o.seconds < 3.0 {
        bail!("--seconds must be at least 3 (1 s warm-up, 1 s cool-down)");
    }
    let proto = if o.syn { "tcp" } else { "udp" };
    let mut forwarders = vec![Forwarder::Kernel, Forwarder::NftFwd];
    for m in &o.methods {
        for e in &o.engines {
            forwarders.push(Forwarder::Rlvs { engine: e.clone(), method: m.clone() });
        }
    }
    // SYNs are all new connections: the flow count does not apply.
    let flows = if o.syn { vec![1] } else { o.flows.clone() };
    let mut paths: Vec<Path> = forwarders.iter().map(|f| build(f, rlvs, proto)).collect::<Result<_>>()?;
    let names: Vec<String> = forwarders.iter().map(|f| f.name()).collect();
    let mut summary = Vec::new();
    for &fl in &flows {
        println!();
        match o.syn {
            true => println!("TCP SYNs (every one a new connection):"),
            false => println!("64-byte UDP, {fl} flow{}:", if fl == 1 { "" } else { "s" }),
        }
        println!();
        println!("| run | {} |", names.join(" | "));
        println!("|---|{}", "---|".repeat(names.len()));
        let mut res: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
        for run in 0..o.runs {
            let mut row = Vec::new();
            for (i, p) in paths.iter_mut().enumerate() {
                let pps = measure(p, fl, o.seconds, o.syn, o.profile.as_deref())?;
                res[i].push(pps);
                row.push(format!("{pps:.0}"));
            }
            println!("| {} | {} |", run + 1, row.join(" | "));
        }
        // Ratios per run, then their median: both baselines saw the same
        // moment of the machine.
        let ratio = |i: usize, base: usize| -> f64 {
            let mut r: Vec<f64> = res[i].iter().zip(&res[base]).map(|(a, b)| a / b).collect();
            crate::median(&mut r)
        };
        let meds: Vec<f64> = res.iter().map(|v| crate::median(&mut v.clone())).collect();
        for i in 0..paths.len() {
            summary.push((fl, names[i].clone(), meds[i], ratio(i, 0), ratio(i, 1)));
        }
    }
    println!();
    println!("| traffic | forwarder | pps (median of {}) | ratio to ip_forward | ratio to nft fwd |", o.runs);
    println!("|---|---|---|---|---|");
    for (fl, name, m, rk, rn) in summary {
        let t = if o.syn { "SYN".to_string() } else { format!("UDP, {fl} flow{}", if fl == 1 { "" } else { "s" }) };
        println!("| {t} | {name} | {m:.0} | {rk:.3} | {rn:.3} |");
    }
    drop(paths);
    Ok(())
}
