//! `rlvs realserver start|stop --vip ADDR [--mode dr|tun]`: what the seed's
//! rs.sh does for a real server, and its TUN counterpart.
//!
//! DR: the VIP as a /32 on lo (label lo:1, so `ip a` shows what `ifconfig
//! lo:1` showed) and the ARP settings that keep the real server from
//! answering ARP for it (arp_ignore=1, arp_announce=2 on all and lo).
//! TUN: the same, reverse-path filtering off (unwrapped packets arrive from
//! the client's address on the tunnel), and a tunnel endpoint: the kernel's
//! tunl0 (and fou for GUE) where the kernel has them, otherwise rlvs's
//! userspace decapsulator on a TUN device, started in the background.
//!
//! `stop` undoes exactly what `start` changed: every sysctl gets back the
//! value it had, the address goes, the decapsulator stops. The values are
//! remembered in /run/rlvs under the network namespace's inode; since the
//! kernel reuses those inodes, a remembered state is trusted only while the
//! VIP that `start` put on lo is still there.

use anyhow::{bail, Context, Result};
use rlvs_dataplane::netlink::Rtnl;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    #[arg(value_parser = ["start", "stop", "decap"])]
    action: String,
    /// The virtual IP the real server must accept.
    #[arg(long)]
    vip: IpAddr,
    /// Forwarding mode the director uses towards this server.
    #[arg(long, default_value = "dr", value_parser = ["dr", "tun"])]
    mode: String,
    /// TUN mode: also accept GUE on this UDP port (ipvsadm --tun-port).
    #[arg(long)]
    gue_port: Option<u16>,
    /// (decap) leave IPIP to the kernel.
    #[arg(long, hide = true)]
    no_ipip: bool,
}

const ARP: [(&str, &str, &str); 4] =
    [("all", "arp_ignore", "1"), ("lo", "arp_ignore", "1"), ("all", "arp_announce", "2"), ("lo", "arp_announce", "2")];
const RP_FILTER: [(&str, &str, &str); 2] = [("all", "rp_filter", "0"), ("lo", "rp_filter", "0")];

fn sysctl_path(dev: &str, key: &str) -> PathBuf {
    PathBuf::from(format!("/proc/sys/net/ipv4/conf/{dev}/{key}"))
}

fn run_dir() -> Result<(PathBuf, u64)> {
    let ino = std::fs::metadata("/proc/self/ns/net")?.ino();
    Ok((PathBuf::from("/run/rlvs"), ino))
}

/// What `start` changed, one "what value-to-restore" line each.
fn state_file(vip: IpAddr) -> Result<PathBuf> {
    let (dir, ino) = run_dir()?;
    Ok(dir.join(format!("realserver-{ino}-{vip}")))
}

fn decap_pid_file() -> Result<PathBuf> {
    let (dir, ino) = run_dir()?;
    Ok(dir.join(format!("decap-{ino}.pid")))
}

fn kernel_has(dev: &str, module: &str) -> bool {
    let _ = Command::new("modprobe").arg(module).output();
    rlvs_dataplane::iface::index_of(dev).is_some()
}

pub fn run(args: Args) -> Result<()> {
    if args.action == "decap" {
        return crate::decap::run(args.gue_port, !args.no_ipip);
    }
    let lo = rlvs_dataplane::iface::index_of("lo").context("no loopback interface")?;
    let prefix = if args.vip.is_ipv4() { 32 } else { 128 };
    let mut rtnl = Rtnl::new()?;
    let state = state_file(args.vip)?;
    let vip_present = rtnl.addresses(lo)?.contains(&args.vip);
    if args.action == "start" {
        let mut saved: Vec<String> = Vec::new();
        let mut sysctls: Vec<(&str, &str, &str)> = if args.vip.is_ipv4() { ARP.to_vec() } else { Vec::new() };
        if args.mode == "tun" {
            sysctls.extend(RP_FILTER);
        }
        for (d, k, v) in &sysctls {
            let p = sysctl_path(d, k);
            let old = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            saved.push(format!("sysctl {} {}", p.display(), old.trim()));
            std::fs::write(&p, v).with_context(|| format!("setting {d}/{k}"))?;
        }
        if args.mode == "tun" {
            saved.extend(start_tunnel(&args)?);
        }
        // A second start keeps what the first one remembered.
        if !(vip_present && state.exists()) {
            std::fs::create_dir_all(state.parent().unwrap())?;
            std::fs::write(&state, saved.join("\n"))?;
        }
        let label = args.vip.is_ipv4().then_some("lo:1");
        rtnl.addr_add(lo, args.vip, prefix, label).context("adding the VIP to lo")?;
        println!("real server ready for VIP {} ({}): on lo, ARP silenced", args.vip, args.mode);
    } else {
        let remembered = if vip_present { std::fs::read_to_string(&state).ok() } else { None };
        match remembered {
            Some(s) => {
                for line in s.lines().rev() {
                    undo(line);
                }
            }
            // As rs.sh does when nothing (trustworthy) was remembered.
            None if args.vip.is_ipv4() => {
                for (d, k, _) in ARP {
                    std::fs::write(sysctl_path(d, k), "0").with_context(|| format!("resetting {d}/{k}"))?;
                }
            }
            None => {}
        }
        let _ = std::fs::remove_file(&state);
        rtnl.addr_del(lo, args.vip, prefix).context("removing the VIP from lo")?;
        println!("real server settings for VIP {} undone", args.vip);
    }
    Ok(())
}

/// Undoes one remembered change.
fn undo(line: &str) {
    let w: Vec<&str> = line.split_whitespace().collect();
    match w.as_slice() {
        ["sysctl", path, value] => {
            let _ = std::fs::write(path, value);
        }
        ["link-down", dev] => {
            let _ = Command::new("ip").args(["link", "set", dev, "down"]).output();
        }
        ["fou", port] => {
            let _ = Command::new("ip").args(["fou", "del", "port", port]).output();
        }
        ["decap", pidfile] => {
            if let Ok(pid) = std::fs::read_to_string(pidfile).map(|p| p.trim().parse::<i32>().unwrap_or(0)) {
                if pid > 0 {
                    // SAFETY: plain kill(2) of the decapsulator we started.
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                    wait_decap_gone(pid);
                }
            }
            let _ = std::fs::remove_file(pidfile);
        }
        _ => {}
    }
}

/// The decapsulator's device goes when the kernel closes its last
/// descriptor, after the process has exited: `stop` returns once it is
/// gone (bounded), so what follows a stop sees the endpoint gone.
fn wait_decap_gone(pid: i32) {
    let name = std::ffi::CString::new(crate::decap::DEVICE).unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        // SAFETY: a C string.
        if unsafe { libc::if_nametoindex(name.as_ptr()) } == 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    tracing::warn!("the decapsulator (pid {pid})'s device {} is still there after 5 s", crate::decap::DEVICE);
}

/// Sets up the tunnel endpoint; returns the lines that undo it.
fn start_tunnel(args: &Args) -> Result<Vec<String>> {
    let mut undo = Vec::new();
    let kernel_ipip = kernel_has("tunl0", "ipip");
    if kernel_ipip {
        let p = sysctl_path("tunl0", "rp_filter");
        let old = std::fs::read_to_string(&p).unwrap_or_else(|_| "0".into());
        undo.push(format!("sysctl {} {}", p.display(), old.trim()));
        std::fs::write(&p, "0")?;
        let out = Command::new("ip").args(["link", "set", "tunl0", "up"]).output()?;
        if !out.status.success() {
            bail!("ip link set tunl0 up: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        undo.push("link-down tunl0".into());
    }
    let mut gue_in_kernel = false;
    if let (Some(port), true) = (args.gue_port, kernel_ipip) {
        let _ = Command::new("modprobe").arg("fou").output();
        let out = Command::new("ip").args(["fou", "add", "port", &port.to_string(), "gue"]).output();
        if out.is_ok_and(|o| o.status.success()) {
            undo.push(format!("fou {port}"));
            gue_in_kernel = true;
        }
    }
    let need_userspace = !kernel_ipip || (args.gue_port.is_some() && !gue_in_kernel);
    if need_userspace {
        let pidfile = decap_pid_file()?;
        std::fs::create_dir_all(pidfile.parent().unwrap())?;
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        cmd.args(["realserver", "decap", "--vip", &args.vip.to_string()]);
        if let (Some(p), false) = (args.gue_port, gue_in_kernel) {
            cmd.args(["--gue-port", &p.to_string()]);
        }
        if kernel_ipip {
            cmd.arg("--no-ipip");
        }
        let log = std::fs::File::create(pidfile.with_extension("log"))?;
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid in the child only detaches it from our session.
        let child = unsafe {
            cmd.stdin(std::process::Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .pre_exec(|| {
                    libc::setsid();
                    Ok(())
                })
                .spawn()
                .context("starting the userspace decapsulator")?
        };
        std::fs::write(&pidfile, child.id().to_string())?;
        undo.push(format!("decap {}", pidfile.display()));
        let up = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            rlvs_dataplane::iface::index_of(crate::decap::DEVICE).is_some()
        });
        if !up {
            bail!("the userspace decapsulator did not start (see {})", pidfile.with_extension("log").display());
        }
    }
    Ok(undo)
}
