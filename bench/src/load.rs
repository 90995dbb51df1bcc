//! Bulk loads: how long `ipvsadm -R` takes to put a table of services ×
//! real servers into a daemon, per engine, against the same load into a
//! daemon without a packet engine (`--engine none`: the table alone),
//! measured in the same run. A packet engine also keeps its traffic filter
//! and next-hop watch in step with every change and answers only once they
//! are; this shows what that costs, and (two table sizes) that the cost
//! grows linearly with the table.
//!
//! The director's namespace has one veth to a namespace holding the real
//! servers' addresses, so next hops resolve as on a real director.

use anyhow::{bail, Result};
use rlvs_netlab::Lab;
use std::time::{Duration, Instant};

fn rules(services: usize, servers: usize, method: &str) -> String {
    let flag = match method {
        "nat" => "-m",
        _ => "-g",
    };
    let mut s = String::with_capacity(services * (servers + 1) * 48);
    for v in 0..services {
        let vip = format!("10.0.{}.{}:{}", v / 250, v % 250 + 1, 10_000 + v % 50_000);
        s.push_str(&format!("-A -t {vip} -s wlc\n"));
        for r in 0..servers {
            s.push_str(&format!("-a -t {vip} -r 10.2.0.{}:{} {flag} -w 1\n", r + 1, 10_000 + v % 50_000));
        }
    }
    s
}

/// One load into a fresh daemon on `engine`: seconds for `ipvsadm -R`.
fn once(rlvs: &str, engine: &str, services: usize, servers: usize, method: &str) -> Result<f64> {
    let mut lab = Lab::new()?;
    let dir = lab.bare_host("dir")?;
    let back = lab.bare_host("back")?;
    lab.link(
        (&dir, "eth0", "02:00:00:00:20:01", "10.2.255.254/16"),
        (&back, "eth0", "02:00:00:00:20:02", "10.2.0.1/16"),
    )?;
    for r in 1..servers {
        lab.ok(&back, &["ip", "addr", "add", &format!("10.2.0.{}/16", r + 1), "dev", "eth0"])?;
    }
    let d = lab.dir().to_string_lossy().into_owned();
    let ipvsadm = format!("{d}/ipvsadm");
    std::os::unix::fs::symlink(rlvs, &ipvsadm)?;
    lab.spawn(&dir, "daemon", &[rlvs, "daemon", "--engine", engine, "--log", "warn"])?;
    if Lab::wait_for(Duration::from_secs(15), || lab.run(&dir, &[&ipvsadm, "-Ln"]).ok().filter(|o| o.status.success()))
        .is_none()
    {
        bail!("daemon ({engine}) did not start: {}", lab.log("daemon"));
    }
    let file = format!("{d}/rules");
    std::fs::write(&file, rules(services, servers, method))?;
    let t0 = Instant::now();
    let out = lab.run(&dir, &["sh", "-c", &format!("{ipvsadm} -R < {file}")])?;
    let took = t0.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("ipvsadm -R failed ({engine}): {}", String::from_utf8_lossy(&out.stderr));
    }
    let listing = lab.ok(&dir, &[&ipvsadm, "-Sn"])?;
    let lines = listing.lines().count();
    if lines != services * (servers + 1) {
        bail!("{engine}: {lines} lines in the table after the load, not {}", services * (servers + 1));
    }
    lab.stop("daemon", libc::SIGTERM)?;
    Ok(took)
}

pub fn run(runs: usize, sizes: &[usize], servers: usize, engines: &[String], method: &str, rlvs: &str) -> Result<()> {
    let mut all = vec!["none".to_string()];
    all.extend(engines.iter().filter(|e| *e != "none").cloned());
    let mut medians = Vec::new();
    for &services in sizes {
        let lines = services * (servers + 1);
        println!();
        println!("`ipvsadm -R` of {lines} lines ({services} services × {servers} real servers, {method}):");
        println!();
        println!("| run | {} |", all.iter().map(|e| format!("{e} (s)")).collect::<Vec<_>>().join(" | "));
        println!("|---|{}", "---|".repeat(all.len()));
        let mut res: Vec<Vec<f64>> = vec![Vec::new(); all.len()];
        for run in 1..=runs {
            let mut row = Vec::new();
            for (i, e) in all.iter().enumerate() {
                let t = once(rlvs, e, services, servers, method)?;
                res[i].push(t);
                row.push(format!("{t:.3}"));
            }
            println!("| {run} | {} |", row.join(" | "));
        }
        for (i, e) in all.iter().enumerate() {
            let mut ratios: Vec<f64> = res[i].iter().zip(&res[0]).map(|(a, b)| a / b).collect();
            let med = crate::median(&mut res[i].clone());
            medians.push((lines, e.clone(), med, crate::median(&mut ratios)));
        }
    }
    println!();
    println!("| lines | engine | seconds (median of {runs}) | ratio to `--engine none` | µs per line |");
    println!("|---|---|---|---|---|");
    for (lines, e, med, ratio) in &medians {
        println!("| {lines} | {e} | {med:.3} | {ratio:.2} | {:.1} |", med / *lines as f64 * 1e6);
    }
    if sizes.len() >= 2 {
        println!();
        println!("| engine | {} lines / {} lines (time ratio) |", sizes[1] * (servers + 1), sizes[0] * (servers + 1));
        println!("|---|---|");
        for e in &all {
            let t = |n: usize| medians.iter().find(|m| m.0 == n * (servers + 1) && &m.1 == e).map(|m| m.2);
            if let (Some(a), Some(b)) = (t(sizes[0]), t(sizes[1])) {
                println!("| {e} | {:.2} |", b / a);
            }
        }
    }
    Ok(())
}
