//! Network-namespace labs. A [`Lab`] owns the namespaces and processes it
//! creates, names them uniquely (`rl<pid>-<n>-<host>`), and removes all of
//! them when dropped — on success, on failure and on panic. Nothing is
//! created in the host's own namespace: the Ethernet switch is a bridge
//! inside a namespace of its own, with one veth per host.
//!
//! [`seed`] builds the seed tutorial's topology on top of it.

pub mod ecmp;
pub mod ecmp_run;
pub mod seed;
pub mod seed_ha;
pub mod web;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT_LAB: AtomicU32 = AtomicU32::new(0);
const BRIDGE: &str = "br0";

pub struct Lab {
    prefix: String,
    switch: Option<String>,
    namespaces: Vec<String>,
    children: Vec<(String, Child)>,
    dir: PathBuf,
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Removes labs left behind by processes that no longer exist (a test
/// killed with SIGKILL cannot run its destructors).
fn sweep_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix("rl") else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            kill_all_in(name);
            let _ = ip(&["netns", "del", name]);
        }
    }
}

fn kill_all_in(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(p) = pid.parse::<i32>() {
                // SAFETY: plain kill(2).
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
    }
}

/// GRO on a veth end, which gives it a NAPI context: a frame an XDP program
/// on the other end redirects is dropped by a peer without one (an XDP
/// program or GRO). Only turning GRO on while the device is up does it
/// (veth_set_features; set before, it is on but the redirect target is
/// not). Every lab link is set up so, as a real deployment of rlvs on veth
/// must be (docs/ARCHITECTURE.md).
fn napi_on(ns: &str, ifname: &str) -> Result<()> {
    let out = Command::new("ip").args(["netns", "exec", ns, "ethtool", "-K", ifname, "gro", "on"]).output()?;
    if !out.status.success() {
        bail!("ethtool -K {ifname} gro on in {ns}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

impl Lab {
    /// A new, empty lab. Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN).
    pub fn new() -> Result<Lab> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            bail!("network-namespace labs need root");
        }
        sweep_stale();
        let prefix = format!("rl{}-{}", std::process::id(), NEXT_LAB.fetch_add(1, Ordering::SeqCst));
        let dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&dir)?;
        Ok(Lab { prefix, switch: None, namespaces: Vec::new(), children: Vec::new(), dir })
    }

    /// A scratch directory removed with the lab.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The full namespace name of host `short`.
    pub fn ns(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    fn add_ns(&mut self, short: &str) -> Result<String> {
        let ns = self.ns(short);
        ip(&["netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    fn switch(&mut self) -> Result<String> {
        if let Some(s) = &self.switch {
            return Ok(s.clone());
        }
        let sw = self.add_ns("sw")?;
        ip(&["-n", &sw, "link", "add", BRIDGE, "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", BRIDGE, "up"])?;
        self.switch = Some(sw.clone());
        Ok(sw)
    }

    /// A host with one interface `ifname` plugged into the lab's switch.
    pub fn host(&mut self, short: &str, ifname: &str, mac: &str, cidr: &str) -> Result<String> {
        let ns = self.add_ns(short)?;
        self.plug(&ns, ifname, BRIDGE, mac, cidr)?;
        Ok(ns)
    }

    /// Another broadcast domain: a bridge of its own in the switch namespace.
    pub fn segment(&mut self, name: &str) -> Result<()> {
        let sw = self.switch()?;
        ip(&["-n", &sw, "link", "add", name, "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", name, "up"])?;
        Ok(())
    }

    /// Plugs a new interface of host `ns` into `segment` (BRIDGE is the
    /// default one), with an address unless `cidr` is empty.
    pub fn plug(&mut self, ns: &str, ifname: &str, segment: &str, mac: &str, cidr: &str) -> Result<()> {
        self.plug_queues(ns, ifname, segment, mac, cidr, 1)
    }

    /// As [`Lab::plug`], with `queues` transmit and receive queues on both
    /// ends: the switch spreads flows over them by hash, as a multi-queue
    /// NIC's RSS would.
    pub fn plug_queues(
        &mut self,
        ns: &str,
        ifname: &str,
        segment: &str,
        mac: &str,
        cidr: &str,
        queues: u32,
    ) -> Result<()> {
        let sw = self.switch()?;
        // Switch ports are named after the host and its interface; both are
        // short, the port name must stay within 15 bytes.
        let host = ns.rsplit('-').next().unwrap_or(ns);
        let port = format!("v{host}{ifname}");
        let q = queues.to_string();
        ip(&[
            "-n",
            &sw,
            "link",
            "add",
            &port,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            ifname,
            "netns",
            ns,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
        ])?;
        ip(&["-n", &sw, "link", "set", &port, "master", segment, "up"])?;
        napi_on(&sw, &port)?;
        ip(&["-n", ns, "link", "set", ifname, "address", mac])?;
        if !cidr.is_empty() {
            ip(&["-n", ns, "addr", "add", cidr, "dev", ifname])?;
        }
        ip(&["-n", ns, "link", "set", ifname, "up"])?;
        Ok(())
    }

    /// The lab's default segment.
    pub const DEFAULT_SEGMENT: &'static str = BRIDGE;

    /// A host with no interface but loopback, for point-to-point links.
    pub fn bare_host(&mut self, short: &str) -> Result<String> {
        self.add_ns(short)
    }

    /// A veth pair between two hosts of this lab.
    pub fn link(&self, a: (&str, &str, &str, &str), b: (&str, &str, &str, &str)) -> Result<()> {
        // (namespace, ifname, mac, cidr)
        ip(&["-n", a.0, "link", "add", a.1, "type", "veth", "peer", "name", b.1, "netns", b.0])?;
        for (ns, ifname, mac, cidr) in [a, b] {
            ip(&["-n", ns, "link", "set", ifname, "address", mac])?;
            if !cidr.is_empty() {
                ip(&["-n", ns, "addr", "add", cidr, "dev", ifname])?;
            }
            ip(&["-n", ns, "link", "set", ifname, "up"])?;
            napi_on(ns, ifname)?;
        }
        Ok(())
    }

    pub fn command(&self, ns: &str, argv: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).args(argv);
        c
    }

    /// Runs a command in `ns` and returns its output, whatever its status.
    pub fn run(&self, ns: &str, argv: &[&str]) -> Result<Output> {
        self.command(ns, argv).stdin(Stdio::null()).output().with_context(|| format!("running {argv:?} in {ns}"))
    }

    /// Runs a command in `ns` and returns its stdout; fails unless it succeeds.
    pub fn ok(&self, ns: &str, argv: &[&str]) -> Result<String> {
        let out = self.run(ns, argv)?;
        if !out.status.success() {
            bail!("{argv:?} in {ns} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts a long-running process in `ns`, its output going to `log`
    /// inside the lab directory. It is killed when the lab is dropped.
    pub fn spawn(&mut self, ns: &str, name: &str, argv: &[&str]) -> Result<u32> {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log")))?;
        let child = self
            .command(ns, argv)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {argv:?} in {ns}"))?;
        let pid = child.id();
        self.children.push((name.to_string(), child));
        Ok(pid)
    }

    /// The pid of a process started with [`Lab::spawn`] and still running.
    pub fn spawn_pid(&self, name: &str) -> Option<u32> {
        self.children.iter().find(|(n, _)| n == name).map(|(_, c)| c.id())
    }

    /// The log of a process started with [`Lab::spawn`].
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Stops a spawned process with `signal` and waits (bounded) for it.
    pub fn stop(&mut self, name: &str, signal: i32) -> Result<Option<std::process::ExitStatus>> {
        let Some(i) = self.children.iter().position(|(n, _)| n == name) else { bail!("no process {name}") };
        let (_, mut child) = self.children.remove(i);
        // `ip netns exec` execs the command, so the pid is the process itself.
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, signal) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(st) = child.try_wait()? {
                return Ok(Some(st));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        Ok(None)
    }

    /// Waits (up to 30 s) until something in `ns` listens on `port`
    /// (`proto` "tcp" or "udp"): a server spawned a moment ago may not have
    /// bound yet on a loaded machine, and a test that sends to it then
    /// measures the server's start-up, not the director.
    pub fn wait_listening(&self, ns: &str, proto: &str, port: u16, name: &str) -> Result<()> {
        let flag = if proto == "udp" { "-Hlnu" } else { "-Hlnt" };
        let filter = format!("sport = :{port}");
        let up = Lab::wait_for(Duration::from_secs(30), || {
            let out = self.run(ns, &["ss", flag, &filter]).ok()?;
            (out.status.success() && !out.stdout.is_empty()).then_some(())
        });
        if up.is_none() {
            bail!("{name} did not listen on {proto} port {port} in 30 s: {}", self.log(name));
        }
        Ok(())
    }

    /// Polls `f` every 50 ms until it returns Some or `timeout` passes.
    pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f() {
                return Some(v);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, c) in self.children.iter_mut() {
            // SAFETY: plain kill(2) on our own children.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (_, c) in self.children.iter_mut() {
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.namespaces.iter().rev() {
            kill_all_in(ns);
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
