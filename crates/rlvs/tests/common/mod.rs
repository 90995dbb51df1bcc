//! Shared pieces of the namespace tests: the rlvs binary under test, an
//! `ipvsadm` link to it, and a daemon started in a lab namespace.

#![allow(dead_code)]

use rlvs_netlab::Lab;
use std::time::Duration;

pub fn rlvs() -> String {
    env!("CARGO_BIN_EXE_rlvs").to_string()
}

/// An `ipvsadm` symlink to the rlvs binary, inside the lab directory.
pub fn ipvsadm(lab: &Lab) -> String {
    let link = lab.dir().join("ipvsadm");
    if !link.exists() {
        std::os::unix::fs::symlink(rlvs(), &link).unwrap();
    }
    link.to_string_lossy().into_owned()
}

/// Starts `rlvs daemon` in `ns` and waits until it answers ipvsadm.
pub fn start_daemon(lab: &mut Lab, ns: &str, name: &str, extra: &[&str]) {
    start_daemon_with_env(lab, ns, name, &[], extra)
}

/// As [`start_daemon`], with `VAR=value` settings in its environment.
pub fn start_daemon_with_env(lab: &mut Lab, ns: &str, name: &str, env: &[&str], extra: &[&str]) {
    let rlvs = rlvs();
    let mut argv = vec!["env"];
    argv.extend(env);
    argv.extend([rlvs.as_str(), "daemon", "--log", "debug"]);
    argv.extend(extra);
    lab.spawn(ns, name, &argv).unwrap();
    let adm = ipvsadm(lab);
    let up = Lab::wait_for(Duration::from_secs(15), || lab.run(ns, &[&adm, "-Ln"]).ok().filter(|o| o.status.success()));
    assert!(up.is_some(), "daemon {name} did not come up:\n{}", lab.log(name));
}

/// The usual NAT/FULLNAT director: it routes, holds `vip` on lo and runs
/// the daemon; `client` reaches `vip` on its own link.
pub fn start_nat_director(lab: &mut Lab, director: &str, client: &str, vip: &str) {
    lab.ok(director, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]).unwrap();
    lab.ok(director, &["ip", "addr", "add", &format!("{vip}/32"), "dev", "lo"]).unwrap();
    lab.ok(client, &["ip", "route", "add", vip, "dev", "eth0"]).unwrap();
    start_daemon(lab, director, "daemon", &[]);
}

/// Runs ipvsadm in `ns`, returning (stdout, stderr, exit code).
pub fn adm(lab: &Lab, ns: &str, args: &str) -> (String, String, i32) {
    let path = ipvsadm(lab);
    let mut argv = vec![path.as_str()];
    argv.extend(args.split_whitespace());
    let out = lab.run(ns, &argv).unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// Runs each ipvsadm command in `ns`; every one must succeed.
pub fn adm_ok<S: AsRef<str>>(lab: &Lab, ns: &str, cmds: impl IntoIterator<Item = S>) {
    for cmd in cmds {
        let cmd = cmd.as_ref();
        let (_, err, code) = adm(lab, ns, cmd);
        assert_eq!(code, 0, "ipvsadm {cmd}: {err}");
    }
}

/// `n` bytes that compress badly, the same every run.
pub fn payload(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The seed's vs.sh listing, as real ipvsadm 1.31 printed it in the lab.
pub fn golden_seed_listing() -> String {
    let path = format!("{}/../../tests/golden/ipvsadm/errors.jsonl", env!("CARGO_MANIFEST_DIR"));
    let first = std::fs::read_to_string(path).unwrap().lines().next().unwrap().to_string();
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    v["listing"]["stdout"].as_str().unwrap().to_string()
}

/// Which packet engine a daemon started as `name` ended up running
/// ("afxdp" or "afpacket"), from its log.
pub fn engine_of(lab: &Lab, name: &str) -> String {
    let log = lab.log(name);
    let line = log.lines().find(|l| l.contains("data plane ready")).unwrap_or_default();
    if line.contains("afxdp") {
        "afxdp".into()
    } else {
        "afpacket".into()
    }
}

/// A daemon's log without its terminal colours.
pub fn plain_log(lab: &Lab, name: &str) -> String {
    let log = lab.log(name);
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for e in chars.by_ref() {
                if e == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Stops daemon `name` (SIGTERM) and, when it ran the AF_XDP engine,
/// returns how many packets its XDP fast path forwarded (from the line it
/// logs at stop); None on AF_PACKET.
pub fn stop_and_fast_path_count(lab: &mut Lab, name: &str) -> Option<u64> {
    let engine = engine_of(lab, name);
    lab.stop(name, libc::SIGTERM).unwrap();
    if engine != "afxdp" {
        return None;
    }
    let log = plain_log(lab, name);
    let line = log.lines().find(|l| l.contains("XDP fast path")).unwrap_or_else(|| panic!("no fast path line:\n{log}"));
    let n = line.split("forwarded=").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|v| v.parse().ok());
    Some(n.unwrap_or_else(|| panic!("{line}")))
}

/// On AF_XDP, the bulk of a transfer went through the XDP fast path.
pub fn assert_fast_path_carried(lab: &mut Lab, name: &str, at_least: u64) {
    if let Some(n) = stop_and_fast_path_count(lab, name) {
        assert!(n >= at_least, "the XDP fast path forwarded {n} packets, expected at least {at_least}");
    }
}

/// The TCP resets `ns` has received so far (nstat).
pub fn resets(lab: &Lab, ns: &str) -> u64 {
    let out = lab.ok(ns, &["nstat", "-asz", "TcpInRsts"]).unwrap();
    out.lines()
        .filter(|l| l.starts_with("TcpInRsts"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

/// `promtool check metrics` (Debian's prometheus package) on one scrape;
/// panics with what promtool says.
pub fn promtool_accepts(lab: &Lab, name: &str, metrics: &str) {
    let file = lab.dir().join(name);
    std::fs::write(&file, metrics).unwrap();
    let check = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("promtool check metrics < {}", file.display()))
        .output()
        .expect("promtool (Debian's prometheus package)");
    assert!(
        check.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}
