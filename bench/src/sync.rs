//! Connection sync capacity: the highest rate of new connections at which
//! a backup holds at least 99.9 % of them 1 s after they were made.
//!
//! A generator sends UDP datagrams at a fixed rate to a DR service on the
//! master, three from each new (address, port): every three datagrams
//! make a new connection, which the master announces (the kernel at the
//! third packet, rlvs under its XDP fast path at the first). The master and the backup talk sync
//! over one veth link of their own, at the default maxlen (1472). For each
//! rate and run: connections made on the master and held by the backup,
//! counted 1 s after the generator's last datagram, as deltas of
//! `ipvsadm -Lnc`. Medians over the runs.

use anyhow::{bail, Result};
use rlvs_netlab::Lab;
use std::time::Duration;

const VIP: &str = "10.0.0.100";
/// Datagrams per connection: the kernel announces a connection at its
/// third packet (sync_threshold), so one-packet flows would never sync.
const PER_FLOW: u64 = 3;

/// The directors: rlvs (its daemon on `engine`) or, in the lab guest,
/// kernel IPVS driven by the real ipvsadm (the reference).
pub enum Directors<'a> {
    Rlvs { rlvs: &'a str, engine: &'a str },
    Kernel,
}

impl Directors<'_> {
    fn ipvsadm(&self) -> String {
        match self {
            Directors::Rlvs { rlvs, .. } => format!("env RLVS_BACKEND=daemon {rlvs} adm"),
            Directors::Kernel => "ipvsadm".into(),
        }
    }
}

fn count(lab: &Lab, ns: &str, d: &Directors) -> Result<u64> {
    let out = lab.ok(ns, &["sh", "-c", &format!("{} -Lnc | grep -c '^UDP' || true", d.ipvsadm())])?;
    Ok(out.trim().parse().unwrap_or(0))
}

fn daemon(lab: &mut Lab, ns: &str, name: &str, rlvs: &str, engine: &str) -> Result<()> {
    lab.spawn(ns, name, &["env", "RLVS_BACKEND=daemon", rlvs, "daemon", "--engine", engine, "--log", "warn"])?;
    let up = Lab::wait_for(Duration::from_secs(15), || {
        lab.run(ns, &["env", "RLVS_BACKEND=daemon", rlvs, "adm", "-Ln"]).ok().filter(|o| o.status.success())
    });
    if up.is_none() {
        bail!("{name} did not start:\n{}", lab.log(name));
    }
    Ok(())
}

fn adm(lab: &Lab, ns: &str, d: &Directors, cmd: &str) -> Result<()> {
    lab.ok(ns, &["sh", "-c", &format!("{} {cmd}", d.ipvsadm())]).map(|_| ())
}

pub fn run(d: Directors, rates: &[u64], runs: usize, seconds: f64) -> Result<()> {
    let me = std::env::current_exe()?.to_string_lossy().into_owned();
    let mut lab = Lab::new()?;
    let gen = lab.host("sg", "eth0", "02:00:00:00:70:01", "10.1.1.10/24")?;
    let master = lab.host("sm", "eth0", "02:00:00:00:70:02", "10.1.1.251/24")?;
    let rs = lab.host("sr", "eth0", "02:00:00:00:70:03", "10.1.1.1/24")?;
    let backup = lab.bare_host("sb")?;
    lab.link(
        (&master, "eth1", "02:00:00:00:70:12", "192.168.50.1/24"),
        (&backup, "eth1", "02:00:00:00:70:13", "192.168.50.2/24"),
    )?;
    let _ = rs;
    lab.ok(&master, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"])?;
    if let Directors::Rlvs { rlvs, engine } = d {
        daemon(&mut lab, &master, "master", rlvs, engine)?;
        daemon(&mut lab, &backup, "backup", rlvs, engine)?;
    }
    for ns in [&master, &backup] {
        // Counts are deltas of the tables: nothing may expire meanwhile.
        adm(&lab, ns, &d, "--set 0 0 7200")?;
        adm(&lab, ns, &d, &format!("-A -u {VIP}:9 -s rr"))?;
        adm(&lab, ns, &d, &format!("-a -u {VIP}:9 -r 10.1.1.1 -g"))?;
    }
    adm(&lab, &master, &d, "--start-daemon master --mcast-interface eth1")?;
    adm(&lab, &backup, &d, "--start-daemon backup --mcast-interface eth1")?;
    std::thread::sleep(Duration::from_secs(3));
    let who = match &d {
        Directors::Rlvs { engine, .. } => format!("rlvs ({engine})"),
        Directors::Kernel => "kernel IPVS".into(),
    };
    println!("sync capacity, {who}: UDP connections made on the master, held by the backup 1 s later (default maxlen)");
    println!("{:>10} {:>8} {:>10} {:>10} {:>9}", "rate/s", "run", "made", "synced", "held %");
    let mut first: u64 = 0;
    let mut best = None;
    for &rate in rates {
        let mut held = Vec::new();
        for run in 1..=runs {
            let (m0, b0) = (count(&lab, &master, &d)?, count(&lab, &backup, &d)?);
            let out = lab.ok(
                &gen,
                &[
                    &me,
                    "gen",
                    "--ifname",
                    "eth0",
                    "--src-mac",
                    "02:00:00:00:70:01",
                    "--dst-mac",
                    "02:00:00:00:70:02",
                    "--flows",
                    "1",
                    "--seconds",
                    &seconds.to_string(),
                    "--new-udp",
                    "--rate",
                    &(rate * PER_FLOW).to_string(),
                    "--first",
                    &first.to_string(),
                    "--per-flow",
                    &PER_FLOW.to_string(),
                ],
            )?;
            let sent: u64 = out.trim().trim_start_matches("sent ").parse().unwrap_or(0);
            first = (first + sent).div_ceil(PER_FLOW) * PER_FLOW;
            // The generator returns after its last datagram.
            std::thread::sleep(Duration::from_secs(1));
            let b1 = count(&lab, &backup, &d)?;
            let m1 = count(&lab, &master, &d)?;
            let (made, synced) = (m1.saturating_sub(m0), b1.saturating_sub(b0));
            let pct = if made == 0 { 0.0 } else { 100.0 * synced as f64 / made as f64 };
            println!("{rate:>10} {run:>8} {made:>10} {synced:>10} {pct:>9.3}");
            held.push(pct);
        }
        held.sort_by(|a, b| a.total_cmp(b));
        let median = held[held.len() / 2];
        println!("{rate:>10} {:>8} {:>10} {:>10} {median:>9.3}", "median", "", "");
        if median >= 99.9 {
            best = Some(rate);
        }
    }
    match best {
        Some(r) => println!("highest rate with >= 99.9 % held within 1 s: {r}/s"),
        None => println!("no rate tried kept 99.9 %"),
    }
    Ok(())
}
