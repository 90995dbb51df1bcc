//! Connection sync capacity: the highest rate of new connections at which
//! a backup holds at least 99.9 % of them 1 s after they were made.
//!
//! A generator sends UDP datagrams, each from a new (address, port), at a
//! fixed rate to a DR service on the master (AF_XDP engine): every datagram
//! is a new connection, which the master announces at once (UDP under the
//! fast path, see lvs::director::sync). The master and the backup talk sync
//! over one veth link of their own, at the default maxlen (1472). For each
//! rate and run: connections made on the master and held by the backup,
//! counted 1 s after the generator's last datagram, as deltas of
//! `ipvsadm -Lnc`. Medians over the runs.

use anyhow::{bail, Result};
use rlvs_netlab::Lab;
use std::time::Duration;

const VIP: &str = "10.0.0.100";

fn count(lab: &Lab, ns: &str, rlvs: &str) -> Result<u64> {
    let out = lab.ok(ns, &["sh", "-c", &format!("RLVS_BACKEND=daemon {rlvs} adm -Lnc | grep -c '^UDP' || true")])?;
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

fn adm(lab: &Lab, ns: &str, rlvs: &str, cmd: &str) -> Result<()> {
    let mut argv = vec!["env", "RLVS_BACKEND=daemon", rlvs, "adm"];
    argv.extend(cmd.split_whitespace());
    lab.ok(ns, &argv).map(|_| ())
}

pub fn run(rlvs: &str, rates: &[u64], runs: usize, seconds: f64) -> Result<()> {
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
    daemon(&mut lab, &master, "master", rlvs, "afxdp")?;
    daemon(&mut lab, &backup, "backup", rlvs, "afxdp")?;
    for ns in [&master, &backup] {
        adm(&lab, ns, rlvs, &format!("-A -u {VIP}:9 -s rr"))?;
        adm(&lab, ns, rlvs, &format!("-a -u {VIP}:9 -r 10.1.1.1 -g"))?;
    }
    adm(&lab, &master, rlvs, "--start-daemon master --mcast-interface eth1")?;
    adm(&lab, &backup, rlvs, "--start-daemon backup --mcast-interface eth1")?;
    std::thread::sleep(Duration::from_secs(3));
    println!("sync capacity: UDP connections made on the master, held by the backup 1 s later (default maxlen)");
    println!("{:>10} {:>8} {:>10} {:>10} {:>9}", "rate/s", "run", "made", "synced", "held %");
    let mut first: u64 = 0;
    let mut best = None;
    for &rate in rates {
        let mut held = Vec::new();
        for run in 1..=runs {
            let (m0, b0) = (count(&lab, &master, rlvs)?, count(&lab, &backup, rlvs)?);
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
                    &rate.to_string(),
                    "--first",
                    &first.to_string(),
                ],
            )?;
            let sent: u64 = out.trim().trim_start_matches("sent ").parse().unwrap_or(0);
            first += sent;
            // The generator returns after its last datagram.
            std::thread::sleep(Duration::from_secs(1));
            let b1 = count(&lab, &backup, rlvs)?;
            let m1 = count(&lab, &master, rlvs)?;
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
