//! The seed tutorial's section 3: five namespaces on one switch (c1 the
//! client, c2 and c5 the directors, c3 and c4 the web servers), the two
//! directors run by keepalived with the seed's keepalived.conf files, and
//! the tests of 3.3.1 to 3.3.3 replayed: curls alternate; the master stops
//! and the backup serves; web1 stops, the health check removes it, and it
//! comes back when web1 starts again. Which programs play keepalived and
//! ipvsadm comes from the caller (`Tools`): rlvs's faces, or in the lab
//! guest the real ones to compare with. What happens is printed as the
//! seed prints it and returned with the measured times.

use crate::{web, Lab};
use anyhow::{bail, Context, Result};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const VIP: &str = "10.0.0.100";

/// What the replay saw.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// 3.3.1: bodies of the curls (or "curl: ..." errors).
    pub alternation: Vec<String>,
    /// 3.3.2: from SIGTERM on c2 to the first curl answered through c5.
    pub failover: Duration,
    pub after_failover: Vec<String>,
    /// 3.3.3: from web1's stop to its removal from c5's table.
    pub removal: Duration,
    /// The 1 s curl loop while web1 is down, and the number of refused
    /// curls after the removal was seen (should be 0).
    pub down_loop: Vec<String>,
    pub refused_after_removal: usize,
    /// From web1's start to its return to c5's table.
    pub readd: Duration,
    pub up_loop: Vec<String>,
}

impl Report {
    /// What the seed's tests expect: 3.3.1 strict alternation; 3.3.2 every
    /// curl through the backup, alternating; 3.3.3 once web1 is out of the
    /// table only rs2 answers and nothing is refused, and alternation
    /// returns when it is back.
    pub fn verdict(&self) -> Result<()> {
        let alternates =
            |l: &[String]| l.windows(2).all(|w| w[0].starts_with("rs") && w[1].starts_with("rs") && w[0] != w[1]);
        if self.alternation.len() != 9 || !alternates(&self.alternation) {
            bail!("3.3.1: the curls did not alternate: {:?}", self.alternation);
        }
        if !alternates(&self.after_failover) {
            bail!("3.3.2: the curls through the backup did not alternate: {:?}", self.after_failover);
        }
        if self.refused_after_removal != 0 || !self.down_loop.iter().rev().take(6).all(|b| b == "rs2") {
            bail!("3.3.3: with web1 removed, not only rs2 answered: {:?}", self.down_loop);
        }
        let tail: Vec<String> = self.up_loop.iter().rev().take(6).cloned().collect();
        if !alternates(&tail) {
            bail!("3.3.3: alternation did not return with web1: {:?}", self.up_loop);
        }
        Ok(())
    }
}

/// The seed's prompt before a command: `host` is `c1` or `c2 keepalived`
/// (a host and its working directory, `~` when none is given).
fn prompt(out: &mut dyn FnMut(&str), host: &str, cmd: &str) {
    let where_ = if host.contains(' ') { host.to_string() } else { format!("{host} ~") };
    out(&format!("[root@{where_}]# {cmd}"));
}

fn curl(lab: &Lab, client: &str, max: &str) -> String {
    match lab.run(client, &["curl", "-sS", "--max-time", max, VIP]) {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
        Err(e) => format!("curl: {e}"),
    }
}

/// Watches a director's table from another thread, every 50 ms: when the
/// real server's line went (or came).
struct Watch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Option<Instant>>>,
    t: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    fn start(ns: &str, ipvsadm: &str, rs: &str, present: bool) -> Watch {
        let (stop, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(None)));
        let (s2, seen2) = (stop.clone(), seen.clone());
        let (ns, ipvsadm, needle) = (ns.to_string(), ipvsadm.to_string(), format!("-> {rs}:80"));
        let t = std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                if let Ok(o) = Command::new("ip").args(["netns", "exec", &ns, &ipvsadm, "-Ln"]).output() {
                    if String::from_utf8_lossy(&o.stdout).contains(&needle) == present {
                        *seen2.lock().unwrap() = Some(Instant::now());
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Watch { stop, seen, t: Some(t) }
    }
    fn seen(&self) -> Option<Instant> {
        *self.seen.lock().unwrap()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.t.take() {
            let _ = t.join();
        }
    }
}

pub struct Hosts {
    pub c1: String,
    pub c2: String,
    pub c3: String,
    pub c4: String,
    pub c5: String,
}

/// The topology with web servers and real servers ready, the client's
/// route to the VIP set (section 2's steps).
pub fn build(lab: &mut Lab, rlvs: &str) -> Result<Hosts> {
    let c1 = lab.host("c1", "eth0", "02:00:00:00:00:01", "10.1.1.10/24")?;
    let c2 = lab.host("c2", "bond0", "02:00:00:00:00:02", "10.1.1.243/24")?;
    let c3 = lab.host("c3", "eth0", "02:00:00:00:00:03", "10.1.1.244/24")?;
    let c4 = lab.host("c4", "eth0", "02:00:00:00:00:04", "10.1.1.245/24")?;
    let c5 = lab.host("c5", "eth0", "02:00:00:00:00:05", "10.1.1.246/24")?;
    web::start(lab, &c3, "web1", "rs1", &[])?;
    web::start(lab, &c4, "web2", "rs2", &[])?;
    for (ns, ip, body) in [(&c3, "10.1.1.244", "rs1"), (&c4, "10.1.1.245", "rs2")] {
        let url = format!("http://{ip}/");
        let ok = Lab::wait_for(Duration::from_secs(10), || {
            let o = lab.run(&c1, &["curl", "-s", "--max-time", "1", &url]).ok()?;
            (String::from_utf8_lossy(&o.stdout).trim() == body).then_some(())
        });
        if ok.is_none() {
            bail!("web server in {ns} did not come up");
        }
        lab.ok(ns, &[rlvs, "realserver", "start", "--vip", VIP])?;
    }
    lab.ok(&c1, &["ip", "route", "add", VIP, "dev", "eth0"])?;
    Ok(Hosts { c1, c2, c3, c4, c5 })
}

/// The programs a replay runs: rlvs (for `rlvs realserver`), and what
/// plays keepalived and ipvsadm on the directors: rlvs's faces, or in the
/// lab guest the real ones, to compare.
pub struct Tools {
    pub rlvs: String,
    pub keepalived: String,
    pub ipvsadm: String,
}

impl Tools {
    /// rlvs in every role, through `keepalived` and `ipvsadm` links in the
    /// lab's directory.
    pub fn rlvs(lab: &Lab, rlvs: &str) -> Result<Tools> {
        let link = |name: &str| -> Result<String> {
            let l = lab.dir().join(name);
            if !l.exists() {
                std::os::unix::fs::symlink(rlvs, &l)?;
            }
            Ok(l.to_string_lossy().into_owned())
        };
        Ok(Tools { rlvs: rlvs.to_string(), keepalived: link("keepalived")?, ipvsadm: link("ipvsadm")? })
    }
}

/// Starts keepalived (`keepalived -n -l -f FILE`, its pid files in the
/// lab's directory) on `ns`.
pub fn start_director(lab: &mut Lab, keepalived: &str, ns: &str, tag: &str, conf: &str) -> Result<()> {
    let d = lab.dir().to_string_lossy().into_owned();
    let file = format!("{d}/{tag}.conf");
    std::fs::write(&file, conf)?;
    let pids = [format!("{d}/{tag}.pid"), format!("{d}/{tag}-vrrp.pid"), format!("{d}/{tag}-check.pid")];
    let ns = ns.to_string();
    lab.spawn(&ns, tag, &[keepalived, "-n", "-l", "-f", &file, "-p", &pids[0], "-r", &pids[1], "-c", &pids[2]])?;
    Ok(())
}

/// Replays 3.3.1-3.3.3 and prints it through `out`.
pub fn replay(lab: &mut Lab, tools: &Tools, c2_conf: &str, c5_conf: &str, out: &mut dyn FnMut(&str)) -> Result<Report> {
    let mut r = Report::default();
    let h = build(lab, &tools.rlvs)?;
    let ipvsadm = tools.ipvsadm.clone();
    out("== 3.2 keepalived on c2 (bond0, MASTER, priority 100) and c5 (eth0, BACKUP, priority 80), the seed's files");
    prompt(out, "c2 keepalived", "systemctl start keepalived");
    start_director(lab, &tools.keepalived, &h.c2, "c2", c2_conf)?;
    prompt(out, "c5 keepalived", "systemctl start keepalived.service");
    start_director(lab, &tools.keepalived, &h.c5, "c5", c5_conf)?;
    let ready = Lab::wait_for(Duration::from_secs(20), || {
        let vip = lab.ok(&h.c2, &["ip", "-4", "-o", "addr", "show", "dev", "bond0"]).ok()?;
        (vip.contains(&format!(" {VIP}/")) && curl(lab, &h.c1, "1").starts_with("rs")).then_some(())
    });
    if ready.is_none() {
        bail!("c2 never served the VIP:\n{}\n{}", lab.log("c2"), lab.log("c5"));
    }
    prompt(out, "c2 keepalived", "ip a");
    out(lab.ok(&h.c2, &["ip", "-4", "addr", "show", "dev", "bond0"])?.trim_end());
    prompt(out, "c2", "ipvsadm -Ln");
    out(lab.ok(&h.c2, &[&ipvsadm, "-Ln"])?.trim_end_matches('\n'));

    out("== 3.3.1 Test first lvs Is it working");
    for _ in 0..9 {
        prompt(out, "c1", &format!("curl {VIP}"));
        let b = curl(lab, &h.c1, "3");
        out(&b);
        r.alternation.push(b);
    }

    out("== 3.3.2 Stop c2 On keepalived Service, then test if it is dispatched properly");
    prompt(out, "c2 keepalived", "systemctl stop keepalived");
    let t0 = Instant::now();
    let c2pid = lab.spawn_pid("c2").context("c2 not running")?;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(c2pid as i32, libc::SIGTERM) };
    let served = Lab::wait_for(Duration::from_secs(15), || {
        let vip = lab.ok(&h.c5, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).ok()?;
        (vip.contains(&format!(" {VIP}/")) && curl(lab, &h.c1, "0.5").starts_with("rs")).then_some(())
    });
    if served.is_none() {
        bail!("c5 never served the VIP:\n{}", lab.log("c5"));
    }
    r.failover = t0.elapsed();
    let _ = lab.stop("c2", libc::SIGTERM);
    for _ in 0..8 {
        prompt(out, "c1", &format!("curl {VIP}"));
        let b = curl(lab, &h.c1, "3");
        out(&b);
        r.after_failover.push(b);
    }

    out("== 3.3.3 Test Backend Server Health Check");
    prompt(out, "c3", "systemctl stop httpd");
    let watch = Watch::start(&h.c5, &ipvsadm, "10.1.1.244", false);
    let t0 = Instant::now();
    lab.stop("web1", libc::SIGTERM)?;
    prompt(out, "c1", &format!("while true;do curl {VIP};sleep 1;done"));
    let mut rs2_run = 0;
    for _ in 0..40 {
        let t = Instant::now();
        let b = curl(lab, &h.c1, "0.9");
        out(&b);
        let removed = watch.seen().is_some_and(|s| s <= t);
        if removed && !b.starts_with("rs") {
            r.refused_after_removal += 1;
        }
        r.down_loop.push(b.clone());
        rs2_run = if removed && b == "rs2" { rs2_run + 1 } else { 0 };
        if rs2_run >= 6 {
            break;
        }
        std::thread::sleep(Duration::from_secs(1).saturating_sub(t.elapsed()));
    }
    let Some(removed_at) = watch.seen() else { bail!("web1 was never removed:\n{}", lab.log("c5")) };
    r.removal = removed_at - t0;
    drop(watch);

    prompt(out, "c3", "systemctl start httpd");
    let watch = Watch::start(&h.c5, &ipvsadm, "10.1.1.244", true);
    let t0 = Instant::now();
    web::start(lab, &h.c3, "web1", "rs1", &[])?;
    prompt(out, "c1", &format!("while true;do curl {VIP};sleep 1;done"));
    let mut alternating = 0;
    for _ in 0..40 {
        let t = Instant::now();
        let b = curl(lab, &h.c1, "0.9");
        out(&b);
        let prev = r.up_loop.last().cloned();
        r.up_loop.push(b.clone());
        if b.starts_with("rs") && prev.is_some_and(|p| p.starts_with("rs") && p != b) {
            alternating += 1;
        } else {
            alternating = 0;
        }
        if alternating >= 6 {
            break;
        }
        std::thread::sleep(Duration::from_secs(1).saturating_sub(t.elapsed()));
    }
    let Some(back_at) = watch.seen() else { bail!("web1 never came back:\n{}", lab.log("c5")) };
    r.readd = back_at - t0;
    drop(watch);
    prompt(out, "c5", "ipvsadm -Ln");
    out(lab.ok(&h.c5, &[&ipvsadm, "-Ln"])?.trim_end_matches('\n'));
    out("== measured");
    out(&format!("failover (keepalived stopped on c2 -> curl answered through c5): {:.2} s", r.failover.as_secs_f64()));
    out(&format!("web1 stopped -> removed from c5's table: {:.2} s", r.removal.as_secs_f64()));
    out(&format!("web1 started -> back in c5's table: {:.2} s", r.readd.as_secs_f64()));
    let _ = lab.stop("c5", libc::SIGTERM);
    Ok(r)
}
