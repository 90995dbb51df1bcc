//! Packets per second through the director, every forwarder on its own
//! copy of one path, measured interleaved in the same run:
//!
//!   gen --(10.2.0.0/24)-- director --(10.3.0.0/24)-- sink
//!
//! - kernel ip_forward: a /32 route for the VIP to the sink;
//! - nft netdev fwd: an ingress rule rewriting the MACs and forwarding to
//!   the sink's link (no routing, no conntrack);
//! - XDP redirect: the reference (crates/dataplane/bpf/xdp_redirect.c),
//!   rewriting both MACs and redirecting to the sink's link, the least an
//!   XDP forwarder does;
//! - rlvs, per engine and forwarding method: the VIP as a service with the
//!   sink as real server (DR, NAT to 10.3.0.1, FULLNAT from 10.3.0.254,
//!   TUN: IPIP from 10.3.0.254 to 10.3.0.1).
//!
//! The director is charged all of its work, and only it runs on CPU 1:
//! its ingress veth runs threaded NAPI with the kthread pinned there (so
//! the receive path, an XDP program and AF_XDP's copy into the UMEM run
//! there, not in the generator's softirq), as does the rlvs daemon; the
//! sink's receive runs where the director transmits. The generator runs on
//! CPU 0. Every forwarder has the same GRO and NAPI settings (GRO on the
//! director's ingress and the sink's veth, which redirecting into a veth
//! needs). A sample counts only when the director is the bottleneck:
//! the generator offered at least 3 % more than reached the sink; others
//! are taken again (up to three times) and, if never director-bound,
//! reported with a mark. Besides the rate, CPU 1's busy time per delivered
//! packet gives the director's cost in ns per packet.
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
    XdpRedirect,
    Rlvs { engine: String, method: String },
}

impl Forwarder {
    pub fn name(&self) -> String {
        match self {
            Forwarder::Kernel => "kernel ip_forward".into(),
            Forwarder::NftFwd => "nft netdev fwd".into(),
            Forwarder::XdpRedirect => "XDP redirect".into(),
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
    // Every IPv4 packet counts: forwarded ones, and tunnelled ones (IPIP).
    let _ = proto;
    lab.ok(&sink, &["nft", "add", "rule", "netdev", "bench", "c", "meta", "protocol", "ip", "counter", "drop"])?;
    // The same receive settings for every forwarder: NAPI on the sink's
    // veth (GRO on; a redirect into a veth needs it), and on the
    // director's ingress, threaded, its kthread pinned to CPU 1 before
    // each measurement (see `pin_napi`).
    // veth hands a frame to the receiver's NAPI only when the sender
    // offers no TSO (an XDP program on the receiver turns it off on the
    // sender by itself); off everywhere, so every forwarder's packets take
    // the same way in and out.
    lab.ok(&sink, &["ethtool", "-K", "eth0", "gro", "on"])?;
    director_receive(&lab, &gen, &dir, SINK_MAC)?;
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
        Forwarder::XdpRedirect => {
            let me = std::env::current_exe()?.to_string_lossy().into_owned();
            let argv =
                ["taskset", "-c", "1", &me, "xdp-ref", "--ingress", "eth0", "--egress", "eth1", "--dst-mac", SINK_MAC];
            lab.spawn(&dir, "xdp-ref", &argv)?;
            if Lab::wait_for(Duration::from_secs(10), || lab.log("xdp-ref").contains("attached").then_some(()))
                .is_none()
            {
                bail!("the reference XDP forwarder did not attach: {}", lab.log("xdp-ref"));
            }
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
                "tun" => "-i",
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

/// The director's side of the path, the same for every bench that
/// charges it its work: GRO on its ingress (eth0) and threaded NAPI there,
/// no TSO from the sender (`gen`, its eth0) or on its egress (eth1), and
/// the neighbour entry of 10.3.0.1 (`next_mac`) on eth1, so no forwarder
/// waits for ARP.
pub(crate) fn director_receive(lab: &Lab, gen: &str, dir: &str, next_mac: &str) -> Result<()> {
    lab.ok(dir, &["ethtool", "-K", "eth0", "gro", "on"])?;
    lab.ok(gen, &["ethtool", "-K", "eth0", "tso", "off"])?;
    lab.ok(dir, &["ethtool", "-K", "eth1", "tso", "off"])?;
    lab.ok(dir, &["sh", "-c", "echo 1 > /sys/class/net/eth0/threaded"])?;
    lab.ok(dir, &["ip", "neigh", "replace", "10.3.0.1", "lladdr", next_mac, "dev", "eth1"])?;
    Ok(())
}

fn sink_count(p: &Path) -> Result<u64> {
    let out = p.lab.ok(&p.sink, &["nft", "list", "chain", "netdev", "bench", "c"])?;
    let words: Vec<&str> = out.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "packets").context("no counter")?;
    Ok(words[i + 1].parse()?)
}

/// Frames the generator's veth took or dropped for want of room at the
/// director: what was offered.
fn offered(p: &Path) -> Result<u64> {
    let out = p.lab.ok(
        &p.gen,
        &["cat", "/sys/class/net/eth0/statistics/tx_packets", "/sys/class/net/eth0/statistics/tx_dropped"],
    )?;
    out.split_whitespace().map(|w| w.parse::<u64>().context("counter")).sum()
}

/// CPU 1's busy time so far, in clock ticks (everything but idle and
/// iowait).
fn cpu1_busy() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().find(|l| l.starts_with("cpu1 ")).context("no cpu1 in /proc/stat")?;
    let v: Vec<u64> = line.split_whitespace().skip(1).map(|w| w.parse().unwrap_or(0)).collect();
    Ok(v.iter().sum::<u64>() - v[3] - v[4])
}

/// Pins every threaded-NAPI kthread of a veth named eth0 (the directors'
/// ingress; nothing else here runs threaded NAPI) to CPU 1. Done before
/// each measurement, since attaching an XDP program may create them anew.
pub(crate) fn pin_napi() -> Result<usize> {
    let mut n = 0;
    for e in std::fs::read_dir("/proc")?.flatten() {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.starts_with("napi/eth0-") {
            let pid = e.file_name().to_string_lossy().into_owned();
            let out = std::process::Command::new("taskset").args(["-pc", "1", &pid]).output()?;
            if out.status.success() {
                n += 1;
            }
        }
    }
    Ok(n)
}

/// One measurement.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Delivered to the sink, per second.
    pub pps: f64,
    /// Offered by the generator, per second.
    pub offered: f64,
    /// CPU 1 busy time per delivered packet.
    pub ns_per_packet: f64,
}

impl Sample {
    /// The director dropped what it could not forward: its rate is its own.
    pub fn director_bound(&self) -> bool {
        self.offered >= self.pps * 1.03
    }
}

/// Packets per second reaching the sink while the generator runs, what
/// was offered, and CPU 1's cost per packet. With `profile`, the whole
/// machine is sampled (perf, software clock) while the counter runs, into
/// `profile/<forwarder>.data`.
pub fn measure(p: &mut Path, flows: u16, seconds: f64, syn: bool, profile: Option<&str>) -> Result<Sample> {
    if pin_napi()? == 0 {
        bail!("no threaded NAPI kthread for the director's ingress (is /sys/class/net/eth0/threaded there?)");
    }
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
            std::fs::create_dir_all(dir).with_context(|| format!("creating {dir}"))?;
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
    let (o0, c0, b0, t0) = (offered(p)?, sink_count(p)?, cpu1_busy()?, Instant::now());
    std::thread::sleep(Duration::from_secs_f64(seconds - 2.0));
    let (o1, c1, b1, t1) = (offered(p)?, sink_count(p)?, cpu1_busy()?, Instant::now());
    if let Some(mut child) = perf {
        child.wait()?;
    }
    p.lab.stop("gen", libc::SIGTERM)?;
    let secs = (t1 - t0).as_secs_f64();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let delivered = (c1 - c0) as f64;
    Ok(Sample {
        pps: delivered / secs,
        offered: (o1 - o0) as f64 / secs,
        ns_per_packet: (b1 - b0) as f64 / hz * 1e9 / delivered.max(1.0),
    })
}

/// Measures until the sample is director-bound, at most three times.
fn director_bound_sample(p: &mut Path, flows: u16, o: &Options) -> Result<Sample> {
    let mut s = measure(p, flows, o.seconds, o.syn, o.profile.as_deref())?;
    for _ in 0..2 {
        if s.director_bound() {
            break;
        }
        s = measure(p, flows, o.seconds, o.syn, o.profile.as_deref())?;
    }
    Ok(s)
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
    // This process stays off the director's CPU.
    // SAFETY: a zeroed cpu_set_t with CPU 0 set, for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
    let proto = if o.syn { "tcp" } else { "udp" };
    let mut forwarders = vec![Forwarder::Kernel, Forwarder::NftFwd];
    if crate::xdp_ref::available() {
        forwarders.push(Forwarder::XdpRedirect);
    } else {
        println!("(no XDP reference: this build had no clang)");
    }
    for m in &o.methods {
        for e in &o.engines {
            forwarders.push(Forwarder::Rlvs { engine: e.clone(), method: m.clone() });
        }
    }
    let xdp_ref = forwarders.iter().position(|f| matches!(f, Forwarder::XdpRedirect));
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
        println!("Delivered packets/s, director CPU ns per packet; `*`: not director-bound in three tries");
        println!("(offered less than 3 % above delivered).");
        println!();
        println!("| run | {} |", names.join(" | "));
        println!("|---|{}", "---|".repeat(names.len()));
        let mut res: Vec<Vec<Sample>> = vec![Vec::new(); paths.len()];
        for run in 0..o.runs {
            let mut row = Vec::new();
            for (i, p) in paths.iter_mut().enumerate() {
                let s = director_bound_sample(p, fl, o)?;
                res[i].push(s);
                let mark = if s.director_bound() { "" } else { "*" };
                row.push(format!("{:.0}{mark} / {:.0} ns", s.pps, s.ns_per_packet));
            }
            println!("| {} | {} |", run + 1, row.join(" | "));
        }
        // Ratios per run, then their median: both sides saw the same
        // moment of the machine. Only director-bound pairs count.
        let ratio = |i: usize, base: Option<usize>| -> Option<f64> {
            let base = base?;
            let mut r: Vec<f64> = res[i]
                .iter()
                .zip(&res[base])
                .filter(|(a, b)| a.director_bound() && b.director_bound())
                .map(|(a, b)| a.pps / b.pps)
                .collect();
            (!r.is_empty()).then(|| crate::median(&mut r))
        };
        for i in 0..paths.len() {
            let bound: Vec<Sample> = res[i].iter().filter(|s| s.director_bound()).copied().collect();
            let pps = if bound.is_empty() {
                0.0
            } else {
                crate::median(&mut bound.iter().map(|s| s.pps).collect::<Vec<_>>())
            };
            let ns = crate::median(&mut res[i].iter().map(|s| s.ns_per_packet).collect::<Vec<_>>());
            summary.push((
                fl,
                names[i].clone(),
                bound.len(),
                pps,
                ns,
                ratio(i, Some(0)),
                ratio(i, Some(1)),
                ratio(i, xdp_ref),
            ));
        }
    }
    println!();
    println!(
        "| traffic | forwarder | director-bound runs | pps (median of those) | director ns/packet (median) | ratio to ip_forward | ratio to nft fwd | ratio to XDP redirect |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let show = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.3}"));
    for (fl, name, n, pps, ns, rk, rn, rx) in summary {
        let t = if o.syn { "SYN".to_string() } else { format!("UDP, {fl} flow{}", if fl == 1 { "" } else { "s" }) };
        println!(
            "| {t} | {name} | {n} of {} | {} | {ns:.0} | {} | {} | {} |",
            o.runs,
            if n > 0 { format!("{pps:.0}") } else { "-".into() },
            show(rk),
            show(rn),
            show(rx)
        );
    }
    drop(paths);
    Ok(())
}
