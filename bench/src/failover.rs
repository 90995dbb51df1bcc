//! VRRP takeover times, rlvs against Debian's keepalived 2.2.7 in the same
//! run: two directors (priority 100 master, priority 80 backup, advert_int
//! 1, VRRPv2, PASS authentication) on one switch. For each backup
//! implementation (the master is the same implementation), the time from
//! the master's stop to the VIP on the backup:
//! - SIGTERM: the master sends priority 0; the backup waits its skew time
//!   ((256-80)/256 s = 0.688 s);
//! - crash: every master process SIGKILLed and its link set down; the
//!   backup waits out master_down_interval (3 × 1 s + 0.688 s) from the
//!   last advert it heard, so the time from the crash is 2.69-3.69 s
//!   depending on when in the advert cycle it came. The crash is placed
//!   at a random point of the cycle, the same sequence for both.

use anyhow::{bail, Result};
use rlvs_netlab::Lab;
use std::time::{Duration, Instant};

const VIP: &str = "10.0.0.100";

fn conf(router_id: &str, ifname: &str, state: &str, prio: u8) -> String {
    format!(
        "global_defs {{\n router_id {router_id}\n vrrp_mcast_group4 224.0.100.100\n}}\n\
         vrrp_instance VI_1 {{\n state {state}\n interface {ifname}\n virtual_router_id 5\n priority {prio}\n advert_int 1\n\
         authentication {{\n auth_type PASS\n auth_pass 123456\n }}\n virtual_ipaddress {{\n {VIP}/24 dev {ifname}\n }}\n}}\n"
    )
}

fn has_vip(lab: &Lab, ns: &str, ifname: &str) -> bool {
    lab.ok(ns, &["ip", "-4", "-o", "addr", "show", "dev", ifname])
        .map(|o| o.contains(&format!("inet {VIP}/")))
        .unwrap_or(false)
}

fn wait_vip(lab: &Lab, ns: &str, ifname: &str, present: bool, timeout: Duration) -> bool {
    Lab::wait_for(timeout, || (has_vip(lab, ns, ifname) == present).then_some(())).is_some()
}

fn kill_all(ns: &str, sig: i32) {
    if let Ok(out) = std::process::Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(p) = pid.parse::<i32>() {
                // SAFETY: plain kill(2) on the lab's own processes.
                unsafe { libc::kill(p, sig) };
            }
        }
    }
}

/// One measurement: (SIGTERM takeover, crash takeover) for `imp`
/// ("rlvs" or "keepalived") on both directors.
fn measure(imp: &str, rlvs: &str, crash_phase: Duration) -> Result<(Duration, Duration)> {
    let mut lab = Lab::new()?;
    let c2 = lab.host("c2", "bond0", "02:00:00:00:03:43", "10.1.1.243/24")?;
    let c5 = lab.host("c5", "eth0", "02:00:00:00:03:46", "10.1.1.246/24")?;
    let d = lab.dir().to_string_lossy().into_owned();
    let bin = if imp == "rlvs" {
        let link = format!("{d}/keepalived");
        std::os::unix::fs::symlink(rlvs, &link)?;
        link
    } else {
        "/usr/sbin/keepalived".to_string()
    };
    std::fs::write(format!("{d}/c2.conf"), conf("node1", "bond0", "MASTER", 100))?;
    std::fs::write(format!("{d}/c5.conf"), conf("node2", "eth0", "BACKUP", 80))?;
    let start = |lab: &mut Lab, ns: &str, tag: &str, conf: &str| {
        let pids = [format!("{d}/{tag}.pid"), format!("{d}/{tag}v.pid"), format!("{d}/{tag}c.pid")];
        lab.spawn(
            ns,
            tag,
            &[&bin, "-P", "-n", "-l", "-f", &format!("{d}/{conf}"), "-p", &pids[0], "-r", &pids[1], "-c", &pids[2]],
        )
    };
    start(&mut lab, &c5, "c5", "c5.conf")?;
    start(&mut lab, &c2, "c2", "c2.conf")?;
    if !wait_vip(&lab, &c2, "bond0", true, Duration::from_secs(15))
        || !wait_vip(&lab, &c5, "eth0", false, Duration::from_secs(10))
    {
        bail!("{imp}: no initial election:\n{}\n{}", lab.log("c2"), lab.log("c5"));
    }
    std::thread::sleep(Duration::from_secs(2));
    let t0 = Instant::now();
    kill_all(&c2, libc::SIGTERM);
    if !wait_vip(&lab, &c5, "eth0", true, Duration::from_secs(10)) {
        bail!("{imp}: no takeover after SIGTERM");
    }
    let term = t0.elapsed();
    let _ = lab.stop("c2", libc::SIGKILL);
    start(&mut lab, &c2, "c2b", "c2.conf")?;
    if !wait_vip(&lab, &c5, "eth0", false, Duration::from_secs(15)) {
        bail!("{imp}: the master did not preempt back");
    }
    std::thread::sleep(Duration::from_secs(2) + crash_phase);
    let t0 = Instant::now();
    kill_all(&c2, libc::SIGKILL);
    lab.ok(&c2, &["ip", "link", "set", "bond0", "down"])?;
    if !wait_vip(&lab, &c5, "eth0", true, Duration::from_secs(10)) {
        bail!("{imp}: no takeover after the crash");
    }
    Ok((term, t0.elapsed()))
}

fn median(v: &mut [f64]) -> f64 {
    crate::median(v)
}

pub fn run(runs: usize, rlvs: &str) -> Result<()> {
    println!("| run | implementation | SIGTERM takeover (s) | crash takeover (s) |");
    println!("|---|---|---|---|");
    let mut res: Vec<(&str, Vec<f64>, Vec<f64>)> =
        vec![("keepalived 2.2.7", Vec::new(), Vec::new()), ("rlvs", Vec::new(), Vec::new())];
    let mut seed = 0x2545_f491u64;
    for run in 0..runs {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let phase = Duration::from_millis(seed % 1000);
        for (i, imp) in ["keepalived", "rlvs"].iter().enumerate() {
            let (t, c) = measure(imp, rlvs, phase)?;
            println!("| {} | {} | {:.3} | {:.3} |", run + 1, res[i].0, t.as_secs_f64(), c.as_secs_f64());
            res[i].1.push(t.as_secs_f64());
            res[i].2.push(c.as_secs_f64());
        }
    }
    println!();
    println!("| implementation (master and backup) | SIGTERM takeover, median (s) | crash takeover, median (s) |");
    println!("|---|---|---|");
    for (name, t, c) in &mut res {
        println!("| {name} | {:.3} | {:.3} |", median(t), median(c));
    }
    Ok(())
}
