//! rlvs-bench: data-plane benchmarks with baselines measured in the same
//! run, on the same namespace path, reported as medians of several runs.
//!
//! `rlvs-bench dr-udp` — 64-byte UDP frames from a generator namespace,
//! through a director namespace, to a sink namespace on a second link:
//! once forwarded by the kernel (ip_forward, a /32 route to the sink), once
//! by rlvs in DR mode (VIP service, the sink as real server). The sink counts
//! arrivals with an nftables counter at ingress and drops them.

mod checkers;
mod failover;
mod gen;
mod http;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use rlvs_netlab::Lab;
use rlvs_wire::EthernetAddress;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// DR forwarding of 64-byte UDP against kernel ip_forward.
    DrUdp {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long, default_value_t = 4.0)]
        seconds: f64,
        /// Flow counts to measure.
        #[arg(long, value_delimiter = ',', default_value = "1,10000")]
        flows: Vec<u16>,
        /// The rlvs binary to benchmark (a release build).
        #[arg(long, default_value = "target/release/rlvs")]
        rlvs: String,
        /// The daemon's AF_PACKET receive ring (v2 or v3).
        #[arg(long, default_value = "v2")]
        ring: String,
    },
    /// HTTP requests/s (wrk, nginx real servers) through rlvs NAT and FULLNAT
    /// against direct, nft DNAT and HAProxy TCP mode.
    Http {
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u32,
        #[arg(long, default_value_t = 16)]
        connections: u32,
        #[arg(long, default_value = "target/release/rlvs")]
        rlvs: String,
        /// The daemon's AF_PACKET receive ring (v2 or v3).
        #[arg(long, default_value = "v2")]
        ring: String,
    },
    /// The checker side at scale: config load, CPU and memory.
    Checkers {
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, default_value_t = 1000)]
        vs: usize,
        #[arg(long, default_value_t = 10)]
        rs: usize,
        #[arg(long, default_value_t = 5)]
        delay_loop: u32,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value = "target/release/rlvs")]
        rlvs: String,
    },
    /// VRRP takeover times of rlvs against Debian's keepalived, same run.
    Failover {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long, default_value = "target/release/rlvs")]
        rlvs: String,
    },
    /// (internal) The frame generator, run inside the generator namespace.
    Gen {
        #[arg(long)]
        ifname: String,
        #[arg(long)]
        src_mac: String,
        #[arg(long)]
        dst_mac: String,
        #[arg(long)]
        flows: u16,
        #[arg(long)]
        seconds: f64,
    },
}

const VIP: &str = "10.0.0.100";
const GEN_MAC: &str = "02:00:00:00:10:01";
const DIR_IN_MAC: &str = "02:00:00:00:10:02";

struct Path {
    lab: Lab,
    gen: String,
    sink: String,
}

/// gen --(10.2.0.0/24)-- director --(10.3.0.0/24)-- sink
fn build_path(director_setup: impl FnOnce(&mut Lab, &str, &str) -> Result<()>) -> Result<Path> {
    let mut lab = Lab::new()?;
    let gen = lab.bare_host("gen")?;
    let dir = lab.bare_host("dir")?;
    let sink = lab.bare_host("sink")?;
    lab.link((&gen, "eth0", GEN_MAC, "10.2.0.1/24"), (&dir, "eth0", DIR_IN_MAC, "10.2.0.254/24"))?;
    lab.link(
        (&dir, "eth1", "02:00:00:00:10:03", "10.3.0.254/24"),
        (&sink, "eth0", "02:00:00:00:10:04", "10.3.0.1/24"),
    )?;
    lab.ok(&sink, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"])?;
    lab.ok(&sink, &["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"])?;
    lab.ok(&sink, &["nft", "add", "table", "netdev", "bench"])?;
    lab.ok(
        &sink,
        &["nft", "add chain netdev bench c { type filter hook ingress device eth0 priority -500; policy accept; }"],
    )?;
    lab.ok(&sink, &["nft", "add", "rule", "netdev", "bench", "c", "meta", "l4proto", "udp", "counter", "drop"])?;
    // One core each: the generator on CPU 0, all of the director's work on
    // CPU 1 (RPS moves its receive processing there; the engine is pinned
    // there too), so the kernel and the engine forward with the same budget.
    lab.ok(&dir, &["sh", "-c", "echo 2 > /sys/class/net/eth0/queues/rx-0/rps_cpus"])?;
    director_setup(&mut lab, &dir, &sink)?;
    Ok(Path { lab, gen, sink })
}

fn sink_count(p: &Path) -> Result<u64> {
    let out = p.lab.ok(&p.sink, &["nft", "list", "chain", "netdev", "bench", "c"])?;
    let words: Vec<&str> = out.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "packets").context("no counter")?;
    Ok(words[i + 1].parse()?)
}

/// Packets per second reaching the sink while the generator runs.
fn measure(p: &mut Path, flows: u16, seconds: f64) -> Result<f64> {
    let me = std::env::current_exe()?.to_string_lossy().into_owned();
    let (f, s) = (flows.to_string(), seconds.to_string());
    p.lab.spawn(
        &p.gen,
        "gen",
        &[
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
        ],
    )?;
    std::thread::sleep(Duration::from_secs_f64(1.0));
    let (c0, t0) = (sink_count(p)?, Instant::now());
    std::thread::sleep(Duration::from_secs_f64(seconds - 2.0));
    let (c1, t1) = (sink_count(p)?, Instant::now());
    p.lab.stop("gen", libc::SIGTERM)?;
    Ok((c1 - c0) as f64 / (t1 - t0).as_secs_f64())
}

pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn dr_udp(runs: usize, seconds: f64, flows: &[u16], rlvs: &str, ring: &str) -> Result<()> {
    if seconds < 3.0 {
        bail!("--seconds must be at least 3 (1 s warm-up, 1 s cool-down)");
    }
    let rlvs = std::fs::canonicalize(rlvs).with_context(|| format!("{rlvs} (build it with cargo build --release)"))?;
    let rlvs = rlvs.to_string_lossy().into_owned();
    let mut kernel = build_path(|lab, dir, _| {
        lab.ok(dir, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        lab.ok(dir, &["ip", "route", "add", &format!("{VIP}/32"), "via", "10.3.0.1"])?;
        Ok(())
    })?;
    let r2 = rlvs.clone();
    let ring = ring.to_string();
    let mut engine = build_path(move |lab, dir, _| {
        lab.ok(dir, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"])?;
        lab.spawn(dir, "daemon", &["taskset", "-c", "1", &r2, "daemon", "--log", "warn", "--ring", &ring])?;
        let ok = Lab::wait_for(Duration::from_secs(10), || {
            lab.run(dir, &[&r2, "adm", "-Ln"]).ok().filter(|o| o.status.success())
        });
        if ok.is_none() {
            bail!("rlvs daemon did not start: {}", lab.log("daemon"));
        }
        lab.ok(dir, &[&r2, "adm", "-A", "-u", &format!("{VIP}:9"), "-s", "rr"])?;
        lab.ok(dir, &[&r2, "adm", "-a", "-u", &format!("{VIP}:9"), "-r", "10.3.0.1", "-g"])?;
        Ok(())
    })?;
    println!("| flows | run | kernel ip_forward (pps) | rlvs DR AF_PACKET (pps) | ratio |");
    println!("|---|---|---|---|---|");
    let mut summary = Vec::new();
    for &f in flows {
        let (mut k, mut e, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..runs {
            let kp = measure(&mut kernel, f, seconds)?;
            let ep = measure(&mut engine, f, seconds)?;
            println!("| {f} | {} | {kp:.0} | {ep:.0} | {:.3} |", run + 1, ep / kp);
            k.push(kp);
            e.push(ep);
            ratios.push(ep / kp);
        }
        summary.push((f, median(&mut k), median(&mut e), median(&mut ratios)));
    }
    println!();
    println!("| flows | kernel ip_forward median (pps) | rlvs DR median (pps) | median ratio |");
    println!("|---|---|---|---|");
    for (f, k, e, r) in summary {
        println!("| {f} | {k:.0} | {e:.0} | {r:.3} |");
    }
    drop(engine);
    drop(kernel);
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::DrUdp { runs, seconds, flows, rlvs, ring } => dr_udp(runs, seconds, &flows, &rlvs, &ring),
        Cmd::Http { runs, seconds, connections, rlvs, ring } => {
            let rlvs = std::fs::canonicalize(&rlvs).with_context(|| format!("{rlvs} (cargo build --release)"))?;
            http::run(runs, seconds, connections, &rlvs.to_string_lossy(), &ring)
        }
        Cmd::Checkers { runs, vs, rs, delay_loop, seconds, rlvs } => {
            let rlvs = std::fs::canonicalize(&rlvs).with_context(|| format!("{rlvs} (cargo build --release)"))?;
            checkers::run(runs, vs, rs, delay_loop, seconds, &rlvs.to_string_lossy())
        }
        Cmd::Failover { runs, rlvs } => {
            let rlvs = std::fs::canonicalize(&rlvs).with_context(|| format!("{rlvs} (cargo build --release)"))?;
            failover::run(runs, &rlvs.to_string_lossy())
        }
        Cmd::Gen { ifname, src_mac, dst_mac, flows, seconds } => {
            let parse = |s: &str| EthernetAddress::parse(s).ok_or_else(|| anyhow::anyhow!("bad MAC {s}"));
            let sent = gen::run(gen::GenArgs {
                ifname,
                src_mac: parse(&src_mac)?,
                dst_mac: parse(&dst_mac)?,
                src: Ipv4Addr::new(10, 2, 0, 1),
                dst: VIP.parse()?,
                dport: 9,
                flows,
                seconds,
                max_packets: 2_000_000_000,
            })?;
            println!("sent {sent}");
            Ok(())
        }
    }
}
