//! The scale-out scenario on the [`ecmp`](crate::ecmp) topology, shared by
//! `rlvs lab ecmp` and its namespace test: 30 paced downloads and a stream
//! of short requests while one director is SIGKILLed, another drained,
//! and a third loses a virtual server's real servers; every time measured
//! on the router's routing table.

use crate::ecmp::{self, Ecmp, DIRECTORS, DOWNLOAD_PORT, SERVERS, VIP};
use crate::{web, Lab};
use anyhow::{bail, Context, Result};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Each download: 1.2 MB at 160 kB/s, 7.5 s on the wire.
pub const SIZE: usize = 1_200_000;
pub const RATE: usize = 160_000;
const DRAIN_TIME: &str = "2";
/// The client ports whose picks are compared across directors.
const PICK_PORTS: &str = "1024-9215";

#[derive(Debug, Default, Clone)]
pub struct Phase {
    pub downloads: usize,
    /// Downloads that ended short, with an error, or with other bytes.
    pub broken_downloads: Vec<String>,
    pub short_requests: usize,
    /// Short requests that failed, by when they started: before the
    /// router's change was seen (inside the detection window) or after.
    pub failed_in_window: usize,
    pub failed_after: usize,
    /// TCP resets the client received.
    pub resets: u64,
}

#[derive(Debug, Default, Clone)]
pub struct Report {
    /// d2's ipvsadm -Ln after its flap, and d1's: the lists differ in order.
    pub flapped_listing: String,
    pub steady_listing: String,
    /// Client ports whose pick (`rlvs ctl pick`) was compared on the
    /// three directors, and how many got another real server on d2 than
    /// on d1: with flag-3 (must be none) and in the kernel's order.
    pub picks_compared: usize,
    pub picks_differ_flag3: usize,
    pub picks_differ_kernel_order: usize,
    pub kill: Phase,
    /// From SIGKILL to the router's route without d1.
    pub withdrawal_after_kill: Duration,
    /// The same for the IPv6 VIP (seen after the IPv4 one).
    pub withdrawal6_after_kill: Duration,
    /// From rlvs's restart on d1 to the router's route with d1 again.
    pub reannounce_after_restart: Duration,
    pub drain: Phase,
    /// From `rlvs ctl announce drain` to d2 leaving the route (its
    /// preference lowered), and to its withdrawal.
    pub drain_preference_lowered: Duration,
    pub drain_withdrawn: Duration,
    /// From blocking d3's checks of the :8080 real servers to the route
    /// without d3, and from unblocking to d3's return.
    pub quorum_withdrawal: Duration,
    pub quorum_reannounce: Duration,
}

impl Report {
    pub fn verdict(&self) -> Result<()> {
        let order = |l: &str| {
            l.lines()
                .filter(|l| l.contains("->") && l.contains(&format!(":{DOWNLOAD_PORT} ")))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        if order(&self.flapped_listing) == order(&self.steady_listing) {
            bail!("the flap did not change d2's list order:\n{}\n{}", self.flapped_listing, self.steady_listing);
        }
        if self.picks_compared == 0 || self.picks_differ_flag3 != 0 {
            bail!("with flag-3, {} of {} picks differ between directors", self.picks_differ_flag3, self.picks_compared);
        }
        if self.picks_differ_kernel_order == 0 {
            bail!("in the kernel's order, the flap changed no pick: the comparison proves nothing");
        }
        for (name, p) in [("SIGKILL", &self.kill), ("drain", &self.drain)] {
            if !p.broken_downloads.is_empty() {
                bail!("{name}: downloads broke: {:?}", p.broken_downloads);
            }
            if p.failed_after != 0 {
                bail!("{name}: {} short requests failed after the router's change", p.failed_after);
            }
        }
        if self.drain.failed_in_window != 0 || self.drain.resets != 0 {
            bail!("drain: requests failed ({}) or were reset ({})", self.drain.failed_in_window, self.drain.resets);
        }
        Ok(())
    }

    pub fn print(&self, out: &mut dyn FnMut(&str)) {
        let p = |n: &str, ph: &Phase| {
            format!(
                "{n}: {} downloads, {} broken; {} short requests, {} failed inside the detection window, {} after; {} resets",
                ph.downloads,
                ph.broken_downloads.len(),
                ph.short_requests,
                ph.failed_in_window,
                ph.failed_after,
                ph.resets
            )
        };
        out(&format!(
            "picks of {} client ports: {} differ between d2 (flapped) and d1/d3 with flag-3, {} in the kernel's order",
            self.picks_compared, self.picks_differ_flag3, self.picks_differ_kernel_order
        ));
        out(&p("SIGKILL d1", &self.kill));
        out(&format!(
            "  withdrawn {:.0} ms after SIGKILL (the IPv6 VIP: seen by {:.0} ms)",
            ms(self.withdrawal_after_kill),
            ms(self.withdrawal6_after_kill)
        ));
        out(&format!("  re-announced {:.0} ms after rlvs restarted on d1", ms(self.reannounce_after_restart)));
        out(&p("drain d2", &self.drain));
        out(&format!(
            "  out of the route {:.0} ms after `rlvs ctl announce drain` (GRACEFUL_SHUTDOWN), withdrawn after {:.0} ms (drain_time {DRAIN_TIME} s)",
            ms(self.drain_preference_lowered),
            ms(self.drain_withdrawn)
        ));
        out(&format!(
            "quorum: d3 withdrew {:.0} ms after its :{DOWNLOAD_PORT} checks were blocked, announced again {:.0} ms after they were let through",
            ms(self.quorum_withdrawal),
            ms(self.quorum_reannounce)
        ));
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ipvsadm(lab: &Lab, rlvs: &str) -> Result<String> {
    let link = lab.dir().join("ipvsadm");
    if !link.exists() {
        std::os::unix::fs::symlink(rlvs, &link)?;
    }
    Ok(link.to_string_lossy().into_owned())
}

/// Downloads `n` files through the VIP in the background.
fn start_downloads(lab: &Lab, t: &Ecmp, tag: &str, n: usize) -> Result<Vec<(String, std::path::PathBuf, Child)>> {
    let mut out = Vec::new();
    for i in 0..n {
        let file = lab.dir().join(format!("dl-{tag}-{i}"));
        let url = format!("http://{VIP}:{DOWNLOAD_PORT}/f{i}");
        let f = file.to_string_lossy().into_owned();
        let child = lab
            .command(&t.client, &["curl", "-sS", "--max-time", "60", "-o", &f, &url])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        out.push((url, file, child));
    }
    Ok(out)
}

fn finish_downloads(list: Vec<(String, std::path::PathBuf, Child)>) -> Vec<String> {
    let want = web::paced_body(SIZE);
    let mut broken = Vec::new();
    for (url, file, child) in list {
        let out = child.wait_with_output();
        let body = std::fs::read(&file).unwrap_or_default();
        match out {
            Ok(o) if o.status.success() && body == want => {}
            Ok(o) => broken.push(format!(
                "{url}: {} bytes of {SIZE}, {}: {}",
                body.len(),
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => broken.push(format!("{url}: {e}")),
        }
    }
    broken
}

/// Short requests, one every 50 ms (bounded: at most `limit` of them),
/// each recorded with its start and whether it answered.
struct Stream {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(Instant, bool)>>>,
    thread: std::thread::JoinHandle<()>,
}

fn start_stream(lab: &Lab, t: &Ecmp, limit: usize) -> Stream {
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s, v) = (stop.clone(), seen.clone());
    let cmd: Vec<String> = lab
        .command(&t.client, &["curl", "-s", "--max-time", "2", &format!("http://{VIP}/")])
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let thread = std::thread::spawn(move || {
        for _ in 0..limit {
            if s.load(Ordering::SeqCst) {
                break;
            }
            let start = Instant::now();
            let out = std::process::Command::new("ip").args(&cmd).output();
            let ok = out.is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).starts_with("rs"));
            v.lock().unwrap().push((start, ok));
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    Stream { stop, seen, thread }
}

impl Stream {
    /// (requests, failed before `window_end`, failed after it).
    fn finish(self, window_end: Instant) -> (usize, usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
        let seen = self.seen.lock().unwrap();
        let failed_in = seen.iter().filter(|(t, ok)| !ok && *t <= window_end).count();
        let failed_after = seen.iter().filter(|(t, ok)| !ok && *t > window_end).count();
        (seen.len(), failed_in, failed_after)
    }
}

fn resets(lab: &Lab, ns: &str) -> u64 {
    let out = lab.ok(ns, &["nstat", "-asz", "TcpInRsts"]).unwrap_or_default();
    out.lines().filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()).sum()
}

fn nft(lab: &Lab, ns: &str, script: &str) -> Result<()> {
    let path = lab.dir().join(format!("nft-{}.nft", script.len()));
    std::fs::write(&path, script)?;
    lab.ok(ns, &["nft", "-f", &path.to_string_lossy()])?;
    Ok(())
}

/// Blocks (or lets through) the checks `ns` makes to `servers` on `port`:
/// the output hook sees the checkers' sockets, not the frames the data
/// plane forwards.
fn block_checks(lab: &Lab, ns: &str, servers: &[&str], port: u16, on: bool) -> Result<()> {
    if on {
        let set = servers.join(", ");
        nft(
            lab,
            ns,
            &format!(
                "table inet rlvslab {{\n chain out {{\n  type filter hook output priority 0;\n  ip daddr {{ {set} }} tcp dport {port} reject with tcp reset\n }}\n}}\n"
            ),
        )
    } else {
        lab.ok(ns, &["nft", "delete", "table", "inet", "rlvslab"]).map(|_| ())
    }
}

fn wait_listing(lab: &Lab, adm: &str, ns: &str, f: impl Fn(&str) -> bool, what: &str) -> Result<String> {
    Lab::wait_for(Duration::from_secs(30), || {
        let l = lab.ok(ns, &[adm, "-Ln"]).ok()?;
        f(&l).then_some(l)
    })
    .with_context(|| format!("{what}: not seen in 30 s"))
}

pub fn run(lab: &mut Lab, rlvs: &str, out: &mut dyn FnMut(&str)) -> Result<Report> {
    let mut r = Report::default();
    let adm = ipvsadm(lab, rlvs)?;
    out("== topology: client - router (BIRD, ECMP) - d1 d2 d3 (rlvs + BIRD) - rs1..rs4 (DR)");
    let t = ecmp::build(lab, rlvs, SIZE, RATE)?;
    for i in 0..3 {
        ecmp::start_director(lab, &t, i, rlvs, DRAIN_TIME)?;
    }
    let all = ecmp::wait_next_hops(lab, &t, &DIRECTORS, Duration::from_secs(60))
        .with_context(|| format!("directors not announced:\n{}\n{}", lab.log("rlvs-d1"), lab.log("bird-router")))?;
    out(&format!("== all three directors announce {VIP} ({:.0} ms after start)", ms(all)));
    ecmp::wait_next_hops6(lab, &t, 3, Duration::from_secs(30))?;
    out(&format!("== and {} as a /128 over IPv6 sessions", ecmp::VIP6));

    out(&format!("== d2 sees rs1:{DOWNLOAD_PORT} fail and return (a flap), so its list is in another order"));
    // The checks of both 8080 and 8081 connect to 8080: wait until both
    // services have dropped rs1, and both have it back.
    let rs1 = [format!("{}:{DOWNLOAD_PORT} ", SERVERS[0]), format!("{}:{} ", SERVERS[0], ecmp::KERNEL_ORDER_PORT)];
    block_checks(lab, &t.directors[1], &[SERVERS[0]], DOWNLOAD_PORT, true)?;
    wait_listing(lab, &adm, &t.directors[1], |l| rs1.iter().all(|r| !l.contains(r)), "rs1 out of d2's table")?;
    block_checks(lab, &t.directors[1], &[SERVERS[0]], DOWNLOAD_PORT, false)?;
    wait_listing(lab, &adm, &t.directors[1], |l| rs1.iter().all(|r| l.contains(r)), "rs1 back in d2's table")?;
    // In list order: rs1 went to the head when it came back, as in the kernel.
    r.flapped_listing = lab.ok(&t.directors[1], &[&adm, "-Ln", "--nosort"])?;
    r.steady_listing = lab.ok(&t.directors[0], &[&adm, "-Ln", "--nosort"])?;
    out(&format!("d1 (ipvsadm -Ln --nosort):\n{}d2:\n{}", r.steady_listing, r.flapped_listing));

    let picks = |port: u16| -> Result<Vec<String>> {
        let mut all = Vec::new();
        for ns in &t.directors {
            let svc = format!("{VIP}:{port}");
            all.push(lab.ok(ns, &[rlvs, "ctl", "pick", &svc, ecmp::CLIENT, "--ports", PICK_PORTS])?);
        }
        Ok(all)
    };
    let differ = |a: &str, b: &str| a.lines().zip(b.lines()).filter(|(x, y)| x != y).count();
    let sorted = picks(DOWNLOAD_PORT)?;
    let kernel = picks(ecmp::KERNEL_ORDER_PORT)?;
    r.picks_compared = sorted[0].lines().count();
    r.picks_differ_flag3 = differ(&sorted[0], &sorted[1]) + differ(&sorted[0], &sorted[2]);
    r.picks_differ_kernel_order = differ(&kernel[0], &kernel[1]);
    out(&format!(
        "picks compared for {} client ports: {} differ with flag-3, {} in the kernel's order",
        r.picks_compared, r.picks_differ_flag3, r.picks_differ_kernel_order
    ));

    out("== 30 downloads and a stream of short requests; SIGKILL rlvs on d1");
    let before = resets(lab, &t.client);
    let downloads = start_downloads(lab, &t, "kill", 30)?;
    let stream = start_stream(lab, &t, 2000);
    std::thread::sleep(Duration::from_secs(2));
    let killed = Instant::now();
    lab.stop("rlvs-d1", libc::SIGKILL)?;
    r.withdrawal_after_kill = ecmp::wait_next_hops(lab, &t, &DIRECTORS[1..], Duration::from_secs(10))?;
    ecmp::wait_next_hops6(lab, &t, 2, Duration::from_secs(10))?;
    r.withdrawal6_after_kill = killed.elapsed();
    r.kill.downloads = downloads.len();
    r.kill.broken_downloads = finish_downloads(downloads);
    (r.kill.short_requests, r.kill.failed_in_window, r.kill.failed_after) =
        stream.finish(killed + r.withdrawal_after_kill);
    r.kill.resets = resets(lab, &t.client) - before;

    let restarted = Instant::now();
    ecmp::start_director(lab, &t, 0, rlvs, DRAIN_TIME)?;
    ecmp::wait_next_hops(lab, &t, &DIRECTORS, Duration::from_secs(30))?;
    r.reannounce_after_restart = restarted.elapsed();

    out("== 15 downloads and short requests; drain d2 with `rlvs ctl announce drain`");
    let before = resets(lab, &t.client);
    let downloads = start_downloads(lab, &t, "drain", 15)?;
    let stream = start_stream(lab, &t, 2000);
    std::thread::sleep(Duration::from_secs(1));
    let drained = Instant::now();
    let others = [DIRECTORS[0], DIRECTORS[2]];
    let mut drain = lab.command(&t.directors[1], &[rlvs, "ctl", "announce", "drain"]).spawn()?;
    r.drain_preference_lowered = ecmp::wait_next_hops(lab, &t, &others, Duration::from_secs(10))?;
    drain.wait()?;
    let gone = Lab::wait_for(Duration::from_secs(10), || {
        let s = lab.ok(&t.directors[1], &[rlvs, "ctl", "announce", "--json"]).ok()?;
        s.contains("\"withdrawn\"").then_some(())
    });
    if gone.is_none() {
        bail!("d2 did not withdraw after its drain time");
    }
    r.drain_withdrawn = drained.elapsed();
    r.drain.downloads = downloads.len();
    r.drain.broken_downloads = finish_downloads(downloads);
    (r.drain.short_requests, r.drain.failed_in_window, r.drain.failed_after) = stream.finish(drained);
    r.drain.resets = resets(lab, &t.client) - before;
    lab.ok(&t.directors[1], &[rlvs, "ctl", "announce", "resume"])?;
    ecmp::wait_next_hops(lab, &t, &DIRECTORS, Duration::from_secs(10))?;

    out(&format!("== d3 loses every real server of {VIP}:{DOWNLOAD_PORT} (its checks blocked), then gets them back"));
    block_checks(lab, &t.directors[2], &SERVERS, DOWNLOAD_PORT, true)?;
    r.quorum_withdrawal = ecmp::wait_next_hops(lab, &t, &DIRECTORS[..2], Duration::from_secs(30))?;
    let unblocked = Instant::now();
    block_checks(lab, &t.directors[2], &SERVERS, DOWNLOAD_PORT, false)?;
    ecmp::wait_next_hops(lab, &t, &DIRECTORS, Duration::from_secs(30))?;
    r.quorum_reannounce = unblocked.elapsed();
    r.print(out);
    Ok(r)
}
