//! rlvs-bench: data-plane benchmarks with baselines measured in the same
//! run, on the same namespace path, reported as medians of several runs.
//!
//! `pps` (packets per second, UDP and SYN), `http` (wrk and nginx),
//! `latency`, `conns` (memory per connection), `checkers`, `failover`.

mod checkers;
mod conns;
mod ecmp;
mod failover;
mod flood;
mod gen;
mod http;
mod load;
mod pps;
mod sync;
mod xdp_ref;

use anyhow::{Context, Result};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// Heap bytes in use, for `conns`.
pub(crate) static ALLOCATED: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        ALLOCATED.fetch_sub(l.size() as isize, Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;
use clap::{Parser, Subcommand};
use rlvs_wire::EthernetAddress;
use std::net::Ipv4Addr;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Packets per second (64-byte UDP, or TCP SYNs) through rlvs per engine
    /// and method, against kernel ip_forward and nft netdev fwd.
    Pps {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long, default_value_t = 4.0)]
        seconds: f64,
        #[arg(long, value_delimiter = ',', default_value = "1,10000")]
        flows: Vec<u16>,
        #[arg(long, value_delimiter = ',', default_value = "dr,nat,fullnat,tun")]
        methods: Vec<String>,
        #[arg(long, value_delimiter = ',', default_value = "afxdp,afpacket")]
        engines: Vec<String>,
        /// TCP SYNs, every one a new connection, instead of UDP.
        #[arg(long)]
        syn: bool,
        /// Sample the machine with perf during each measurement, into DIR.
        #[arg(long)]
        profile: Option<String>,
        #[arg(long, default_value = "target/release/rlvs")]
        rlvs: String,
    },
    /// HTTP requests/s (wrk, nginx real servers) and UDP latency through rlvs
    /// DR, NAT and FULLNAT per engine, against direct, kernel ip_forward, nft
    /// netdev fwd, nft DNAT and HAProxy TCP mode.
    Http {
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u32,
        #[arg(long, default_value_t = 16)]
        connections: u32,
        #[arg(long, default_value = "target/release/rlvs")]
        rlvs: String,
        #[arg(long, value_delimiter = ',', default_value = "afxdp,afpacket")]
        engines: Vec<String>,
        /// UDP round trips per path and run for the latency table (0: none).
        #[arg(long, default_value_t = 20000)]
        pings: u32,
    },
    /// Scale-out behind ECMP: each director's share and the total rate
    /// with 1, 2 and 3 directors, flows moved when one leaves (BIRD's
    /// multipath route against a resilient next-hop group), withdrawal
    /// and re-announcement times.
    Ecmp {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long, value_delimiter = ',', default_value = "shares,disruption,timers")]
        parts: Vec<String>,
        #[arg(long, default_value_t = 5)]
        seconds: u32,
        #[arg(long, default_value = "target/release/rlvs")]
        rlvs: String,
    },
    /// Heap bytes per tracked connection with a million connections.
    Conns {
        #[arg(long, default_value_t = 1_000_000)]
        count: u32,
    },
    /// `ipvsadm -R` bulk loads per engine against `--engine none`, at two
    /// table sizes (linearity).
    Load {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Services per load (each with --servers real servers).
        #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
        services: Vec<usize>,
        #[arg(long, default_value_t = 10)]
        servers: usize,
        #[arg(long, value_delimiter = ',', default_value = "afxdp,afpacket")]
        engines: Vec<String>,
        /// dr or nat (NAT real servers also enter the filter's reply table).
        #[arg(long, default_value = "dr")]
        method: String,
        #[arg(long, default_value = "target/release/rlvs")]
        rlvs: String,
    },
    /// (internal) UDP echo server for the latency measurement.
    Echo {
        #[arg(long)]
        port: u16,
        #[arg(long, value_delimiter = ',')]
        addrs: Vec<String>,
    },
    /// (internal) UDP round trips; prints p50 and p99 in microseconds.
    Ping {
        #[arg(long)]
        to: String,
        #[arg(long)]
        count: u32,
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
    /// (internal) The reference XDP forwarder of `pps`, run inside the
    /// director's namespace until stopped.
    XdpRef {
        #[arg(long)]
        ingress: String,
        #[arg(long)]
        egress: String,
        #[arg(long)]
        dst_mac: String,
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
        #[arg(long)]
        syn: bool,
        /// UDP from a new source each datagram (a new connection each).
        #[arg(long)]
        new_udp: bool,
        /// Frames a second (0: as fast as possible).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// First source in the sequence of new ones.
        #[arg(long, default_value_t = 0)]
        first: u64,
        /// Datagrams each new source sends.
        #[arg(long, default_value_t = 1)]
        per_flow: u64,
        /// Spoof new sources from this many addresses of 100.64.0.0/10.
        #[arg(long, default_value_t = 0)]
        spoofed: u32,
        /// The destination (default: pps's VIP) and port.
        #[arg(long)]
        dst: Option<Ipv4Addr>,
        #[arg(long, default_value_t = 9)]
        dport: u16,
    },
    /// A SYN flood at 80 % of the path's SYN capacity from 2^20 spoofed
    /// sources against a bounded table, with legitimate curls, defences on
    /// and off (BENCHMARKS.md, "SYN flood").
    Synflood {
        #[arg(long, value_delimiter = ',', default_value = "dr,nat")]
        methods: Vec<String>,
        #[arg(long, default_value_t = 60.0)]
        seconds: f64,
        #[arg(long, default_value_t = 1000)]
        curls: usize,
        /// The table's bound, in connections.
        #[arg(long, default_value_t = 200_000)]
        limit: u64,
        /// Wait for the table to shed the flood by its timeouts.
        #[arg(long)]
        drain: bool,
        #[arg(long, default_value = "afxdp")]
        engine: String,
        #[arg(long, default_value = "target/release/rlvs")]
        rlvs: String,
        /// Fail unless, with the defences on, at least this share of the
        /// legitimate requests succeeded during the flood and all after it,
        /// and the table never passed its bound.
        #[arg(long)]
        require: Option<f64>,
    },
    /// Connection sync capacity: new connections a second a backup keeps
    /// up with (BENCHMARKS.md, "Connection sync").
    Sync {
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        #[arg(long, value_delimiter = ',', default_value = "10000,25000,50000,100000,200000")]
        rates: Vec<u64>,
        #[arg(long, default_value = "target/release/rlvs")]
        rlvs: String,
        /// rlvs's engine on both directors.
        #[arg(long, default_value = "afxdp")]
        engine: String,
        /// Kernel IPVS and the real ipvsadm instead of rlvs (the lab's reference).
        #[arg(long)]
        kernel: bool,
    },
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

/// The rlvs binary a bench runs, as an absolute path (the benches run it
/// inside namespaces, from other directories).
fn built(rlvs: &str) -> Result<String> {
    let path = std::fs::canonicalize(rlvs).with_context(|| format!("{rlvs} (cargo build --release)"))?;
    Ok(path.to_string_lossy().into_owned())
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Http { runs, seconds, connections, rlvs, engines, pings } => {
            let rlvs = built(&rlvs)?;
            http::run(runs, seconds, connections, &rlvs, &engines, pings)
        }
        Cmd::Echo { port, addrs } => http::echo(port, &addrs),
        Cmd::Conns { count } => conns::run(count),
        Cmd::Ecmp { runs, seconds, rlvs, parts } => {
            let rlvs = built(&rlvs)?;
            ecmp::run(&rlvs, runs, seconds, &parts)
        }
        Cmd::Load { runs, services, servers, engines, method, rlvs } => {
            let rlvs = built(&rlvs)?;
            load::run(runs, &services, servers, &engines, &method, &rlvs)
        }
        Cmd::Ping { to, count } => http::ping_client(&to, count),
        Cmd::Checkers { runs, vs, rs, delay_loop, seconds, rlvs } => {
            let rlvs = built(&rlvs)?;
            checkers::run(runs, vs, rs, delay_loop, seconds, &rlvs)
        }
        Cmd::Failover { runs, rlvs } => {
            let rlvs = built(&rlvs)?;
            failover::run(runs, &rlvs)
        }
        Cmd::Pps { runs, seconds, flows, methods, engines, syn, profile, rlvs } => {
            let rlvs = built(&rlvs)?;
            let o = pps::Options { runs, seconds, flows, methods, engines, syn, profile };
            pps::run(&o, &rlvs)
        }
        Cmd::XdpRef { ingress, egress, dst_mac } => {
            let mac = EthernetAddress::parse(&dst_mac).ok_or_else(|| anyhow::anyhow!("bad MAC {dst_mac}"))?;
            xdp_ref::run(&ingress, &egress, pps::VIP.parse()?, mac.0)
        }
        Cmd::Synflood { methods, seconds, curls, limit, drain, engine, rlvs, require } => {
            let rlvs = built(&rlvs)?;
            let o = flood::Options { methods, seconds, curls, limit, drain, engine, rlvs };
            let all = flood::run(&o)?;
            if let Some(share) = require {
                for r in &all {
                    if r.max_conns > r.limit {
                        anyhow::bail!("{} held {} connections, over its bound of {}", r.method, r.max_conns, r.limit);
                    }
                    let ok = r.curls_ok as f64 >= share * r.curls as f64 && r.after_ok == r.after;
                    if r.defences && !ok {
                        anyhow::bail!(
                            "{} with defences: {}/{} during, {}/{} after",
                            r.method,
                            r.curls_ok,
                            r.curls,
                            r.after_ok,
                            r.after
                        );
                    }
                    if drain && r.defences && r.drained_after.is_none() {
                        anyhow::bail!("{} with defences: the table did not drain", r.method);
                    }
                }
            }
            Ok(())
        }
        Cmd::Sync { runs, seconds, rates, rlvs, engine, kernel } => {
            let d =
                if kernel { sync::Directors::Kernel } else { sync::Directors::Rlvs { rlvs: &rlvs, engine: &engine } };
            sync::run(d, &rates, runs, seconds)
        }
        Cmd::Gen {
            ifname,
            src_mac,
            dst_mac,
            flows,
            seconds,
            syn,
            new_udp,
            rate,
            first,
            per_flow,
            spoofed,
            dst,
            dport,
        } => {
            let parse = |s: &str| EthernetAddress::parse(s).ok_or_else(|| anyhow::anyhow!("bad MAC {s}"));
            let sent = gen::run(gen::GenArgs {
                ifname,
                src_mac: parse(&src_mac)?,
                dst_mac: parse(&dst_mac)?,
                src: Ipv4Addr::new(10, 2, 0, 1),
                dst: match dst {
                    Some(d) => d,
                    None => pps::VIP.parse()?,
                },
                dport,
                flows,
                seconds,
                max_packets: if rate > 0 { (rate as f64 * seconds) as u64 } else { 2_000_000_000 },
                syn,
                new_udp,
                rate,
                first,
                per_flow,
                spoofed,
            })?;
            println!("sent {sent}");
            Ok(())
        }
    }
}
