//! The checker side at scale: 1,000 virtual servers × 10 real servers with
//! TCP_CHECK against real listeners in a namespace. Measures how long the
//! configuration takes to read (`keepalived -t`) and to install (until the
//! engine holds every service and real server), then the daemon's CPU and
//! memory while the 10,000 checkers run.

use anyhow::{bail, Result};
use rlvs_netlab::{web, Lab};
use std::time::{Duration, Instant};

fn config(vs: usize, rs: usize, delay_loop: u32) -> String {
    let mut s = String::with_capacity(vs * rs * 80);
    for v in 0..vs {
        let port = 10_000 + v;
        s.push_str(&format!(
            "virtual_server 10.0.{}.{} {port} {{\n delay_loop {delay_loop}\n lb_algo wlc\n lb_kind DR\n protocol TCP\n",
            v / 250,
            v % 250 + 1
        ));
        for r in 0..rs {
            s.push_str(&format!(
                " real_server 10.2.0.{} {port} {{\n  weight 1\n  TCP_CHECK {{\n   connect_timeout 3\n  }}\n }}\n",
                r + 1
            ));
        }
        s.push_str("}\n");
    }
    s
}

fn proc_stat(pid: u32) -> Option<(u64, u64)> {
    // (utime+stime in clock ticks, RSS in kB)
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some((ticks, rss))
}

/// The same table as `ipvsadm -R` input: the baseline, how fast the control
/// plane takes 11,000 entries with no configuration reading or checkers.
fn restore_rules(vs: usize, rs: usize) -> String {
    let mut s = String::with_capacity(vs * rs * 60);
    for v in 0..vs {
        let vip = format!("10.0.{}.{}:{}", v / 250, v % 250 + 1, 10_000 + v);
        s.push_str(&format!("-A -t {vip} -s wlc\n"));
        for r in 0..rs {
            s.push_str(&format!("-a -t {vip} -r 10.2.0.{}:{} -g -w 1\n", r + 1, 10_000 + v));
        }
    }
    s
}

struct Sample {
    read: f64,
    install: f64,
    restore: f64,
    cpu: f64,
    rss_mb: f64,
    present: usize,
}

fn table_lines(lab: &Lab, ns: &str, ipvsadm: &str) -> usize {
    lab.run(ns, &[ipvsadm, "-Ln"])
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).lines().filter(|l| l.starts_with("TCP") || l.contains("-> 10.")).count()
        })
        .unwrap_or(0)
}

fn once(vs: usize, rs: usize, delay_loop: u32, seconds: u64, rlvs: &str) -> Result<(Sample, u64)> {
    let mut lab = Lab::new()?;
    let dir = lab.host("dir", "eth0", "02:00:00:00:09:01", "10.2.0.254/24")?;
    let back = lab.host("rs", "eth0", "02:00:00:00:09:02", "10.2.0.1/24")?;
    for r in 1..rs {
        lab.ok(&back, &["ip", "addr", "add", &format!("10.2.0.{}/24", r + 1), "dev", "eth0"])?;
    }
    let d = lab.dir().to_string_lossy().into_owned();
    let addrs: Vec<String> = (0..rs).map(|r| format!("10.2.0.{}", r + 1)).collect();
    web::tcp_listeners(&mut lab, &back, "listener", &addrs, 10_000, vs)?;
    let conf = format!("{d}/k.conf");
    std::fs::write(&conf, config(vs, rs, delay_loop))?;
    let size = std::fs::metadata(&conf)?.len();
    let face = format!("{d}/keepalived");
    std::os::unix::fs::symlink(rlvs, &face)?;
    let ipvsadm = format!("{d}/ipvsadm");
    std::os::unix::fs::symlink(rlvs, &ipvsadm)?;
    let want = vs * (rs + 1);

    // Baseline: a bare daemon fed the same table by `ipvsadm -R`.
    lab.spawn(&dir, "bare", &[rlvs, "daemon", "--engine", "none", "--log", "warn"])?;
    if Lab::wait_for(Duration::from_secs(15), || lab.run(&dir, &[&ipvsadm, "-Ln"]).ok().filter(|o| o.status.success()))
        .is_none()
    {
        bail!("bare daemon did not start: {}", lab.log("bare"));
    }
    let rules = format!("{d}/rules");
    std::fs::write(&rules, restore_rules(vs, rs))?;
    let t0 = Instant::now();
    let out = lab.run(&dir, &["sh", "-c", &format!("{ipvsadm} -R < {rules}")])?;
    if !out.status.success() || table_lines(&lab, &dir, &ipvsadm) < want {
        bail!("ipvsadm -R failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let restore = t0.elapsed().as_secs_f64();
    lab.stop("bare", libc::SIGTERM)?;

    // Reading: keepalived -t on the file.
    let t0 = Instant::now();
    let out = lab.run(&dir, &[&face, "-t", "-f", &conf])?;
    let read = t0.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("config test failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    // Installing: the daemon up until the table holds everything.
    let t0 = Instant::now();
    let pid = lab.spawn(&dir, "daemon", &[rlvs, "daemon", "--engine", "none", "--log", "warn", "-f", &conf])?;
    if Lab::wait_for(Duration::from_secs(120), || (table_lines(&lab, &dir, &ipvsadm) >= want).then_some(())).is_none() {
        bail!("table incomplete after 120 s:\n{}", lab.log("daemon"));
    }
    let install = t0.elapsed().as_secs_f64();

    // Running: every checker has run at least twice; then measure.
    std::thread::sleep(Duration::from_secs(u64::from(delay_loop) * 2 + 2));
    let (c0, _) = proc_stat(pid).unwrap_or((0, 0));
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let (c1, rss) = proc_stat(pid).unwrap_or((0, 0));
    let wall = t0.elapsed().as_secs_f64();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (c1 - c0) as f64 / hz / wall * 100.0;
    let table = String::from_utf8_lossy(&lab.run(&dir, &[&ipvsadm, "-Ln"])?.stdout).to_string();
    let present = table.lines().filter(|l| l.contains("-> 10.2.0.")).count();
    let _ = lab.stop("daemon", libc::SIGTERM);
    Ok((Sample { read, install, restore, cpu, rss_mb: rss as f64 / 1024.0, present }, size))
}

pub fn run(runs: usize, vs: usize, rs: usize, delay_loop: u32, seconds: u64, rlvs: &str) -> Result<()> {
    let mut samples = Vec::new();
    let mut size = 0;
    println!("| run | `keepalived -t` (s) | install from keepalived.conf (s) | `ipvsadm -R` baseline (s) | CPU (% of a core) | RSS (MB) | real servers present |");
    println!("|---|---|---|---|---|---|---|");
    for run in 1..=runs {
        let (s, sz) = once(vs, rs, delay_loop, seconds, rlvs)?;
        size = sz;
        println!(
            "| {run} | {:.3} | {:.3} | {:.3} | {:.1} | {:.1} | {} of {} |",
            s.read,
            s.install,
            s.restore,
            s.cpu,
            s.rss_mb,
            s.present,
            vs * rs
        );
        samples.push(s);
    }
    let med = |f: fn(&Sample) -> f64| crate::median(&mut samples.iter().map(f).collect::<Vec<_>>());
    let (install, restore) = (med(|s| s.install), med(|s| s.restore));
    println!();
    println!("| measure (median of {runs}) | value |");
    println!("|---|---|");
    println!("| virtual servers × real servers (TCP_CHECK each) | {vs} × {rs} = {} checkers |", vs * rs);
    println!("| configuration file | {:.1} MB |", size as f64 / 1e6);
    println!("| read and check (`keepalived -t`) | {:.3} s |", med(|s| s.read));
    println!("| daemon start to every service and real server in the table | {install:.3} s |");
    println!(
        "| baseline: the same 11,000 entries through `ipvsadm -R` | {restore:.3} s (install/baseline {:.2}) |",
        install / restore
    );
    println!("| probes per second (delay_loop {delay_loop}) | {:.0} |", (vs * rs) as f64 / f64::from(delay_loop));
    println!("| daemon CPU while checking ({seconds} s window) | {:.1} % of one core |", med(|s| s.cpu));
    println!("| daemon resident memory | {:.1} MB |", med(|s| s.rss_mb));
    Ok(())
}
