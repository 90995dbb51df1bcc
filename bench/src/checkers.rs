//! The checker side at scale: 1,000 virtual servers × 10 real servers with
//! TCP_CHECK against real listeners in a namespace. Measures how long the
//! configuration takes to read (`keepalived -t`) and to install (until the
//! engine holds every service and real server), then the daemon's CPU and
//! memory while the 10,000 checkers run.

use anyhow::{bail, Result};
use rlvs_netlab::Lab;
use std::time::{Duration, Instant};

const LISTENER: &str = r#"
import selectors, socket, sys
first, count, addrs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(",")
sel = selectors.DefaultSelector()
for a in addrs:
    for p in range(first, first + count):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((a, p)); s.listen(256); s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
print("listening", flush=True)
while True:
    for key, _ in sel.select():
        try:
            c, _ = key.fileobj.accept(); c.close()
        except OSError:
            pass
"#;

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

pub fn run(vs: usize, rs: usize, delay_loop: u32, seconds: u64, rlvs: &str) -> Result<()> {
    let mut lab = Lab::new()?;
    let dir = lab.host("dir", "eth0", "02:00:00:00:09:01", "10.2.0.254/24")?;
    let back = lab.host("rs", "eth0", "02:00:00:00:09:02", "10.2.0.1/24")?;
    for r in 1..rs {
        lab.ok(&back, &["ip", "addr", "add", &format!("10.2.0.{}/24", r + 1), "dev", "eth0"])?;
    }
    let d = lab.dir().to_string_lossy().into_owned();
    std::fs::write(format!("{d}/listen.py"), LISTENER)?;
    let addrs: Vec<String> = (0..rs).map(|r| format!("10.2.0.{}", r + 1)).collect();
    lab.spawn(&back, "listener", &["python3", &format!("{d}/listen.py"), "10000", &vs.to_string(), &addrs.join(",")])?;
    if Lab::wait_for(Duration::from_secs(60), || lab.log("listener").contains("listening").then_some(())).is_none() {
        bail!("listeners did not start: {}", lab.log("listener"));
    }
    let conf = format!("{d}/k.conf");
    std::fs::write(&conf, config(vs, rs, delay_loop))?;
    let size = std::fs::metadata(&conf)?.len();
    let face = format!("{d}/keepalived");
    std::os::unix::fs::symlink(rlvs, &face)?;
    let ipvsadm = format!("{d}/ipvsadm");
    std::os::unix::fs::symlink(rlvs, &ipvsadm)?;

    // Reading: keepalived -t on the file.
    let t0 = Instant::now();
    let out = lab.run(&dir, &[&face, "-t", "-f", &conf])?;
    let read = t0.elapsed();
    if !out.status.success() {
        bail!("config test failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    // Installing: the daemon up until the table holds everything.
    let t0 = Instant::now();
    let pid = lab.spawn(&dir, "daemon", &[rlvs, "daemon", "--engine", "none", "--log", "warn", "-f", &conf])?;
    let want = vs * (rs + 1);
    let installed = Lab::wait_for(Duration::from_secs(120), || {
        let o = lab.run(&dir, &[&ipvsadm, "-Ln"]).ok()?;
        let lines =
            String::from_utf8_lossy(&o.stdout).lines().filter(|l| l.starts_with("TCP") || l.contains("-> 10.")).count();
        (lines >= want).then_some(())
    });
    if installed.is_none() {
        bail!("table incomplete after 120 s:\n{}", lab.log("daemon"));
    }
    let install = t0.elapsed();

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
    let probes_per_s = (vs * rs) as f64 / f64::from(delay_loop);

    println!("| measure | value |");
    println!("|---|---|");
    println!("| virtual servers × real servers (TCP_CHECK each) | {vs} × {rs} = {} checkers |", vs * rs);
    println!("| configuration file | {:.1} MB |", size as f64 / 1e6);
    println!("| read and check (`keepalived -t`) | {:.3} s |", read.as_secs_f64());
    println!("| daemon start to every service and real server in the table | {:.3} s |", install.as_secs_f64());
    println!("| probes per second (delay_loop {delay_loop}) | {probes_per_s:.0} |");
    println!("| daemon CPU while checking ({seconds} s window) | {cpu:.1} % of one core |");
    println!("| daemon resident memory | {:.1} MB |", rss as f64 / 1024.0);
    println!("| real servers in the table at the end (all listeners up) | {present} of {} |", vs * rs);
    let _ = lab.stop("daemon", libc::SIGTERM);
    Ok(())
}
