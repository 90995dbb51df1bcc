//! The nftables guard that keeps the director's own kernel away from VIP
//! traffic the userspace engine forwards. Kernel IPVS takes such packets
//! before the local stack sees them; a userspace engine only gets a copy
//! (its ETH_P_ALL tap runs before the netdev ingress hook), so the stack's
//! copy must be dropped at ingress or it would answer with RSTs. ARP, ICMP and
//! every other port of the VIP still reach the kernel.

use crate::filter::Rule;
use crate::nft_sets::SetWriter;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::process::{Command, Stdio};

pub const TABLE: &str = "rlvs";

pub struct Guard {
    installed: bool,
    sets: SetWriter,
}

/// Deletes rlvs's table in this namespace if one is left (a daemon that
/// was killed); what package removal runs.
pub fn remove_table() {
    if nft(&format!("list table netdev {TABLE}\n")).is_ok() {
        match nft(&format!("delete table netdev {TABLE}\n")) {
            Ok(()) => println!("removed nftables table netdev {TABLE}"),
            Err(e) => eprintln!("could not remove nftables table netdev {TABLE}: {e}"),
        }
    }
}

fn nft(script: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running nft (is the nftables package installed?)")?;
    child.stdin.take().unwrap().write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("nft failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

impl Guard {
    /// Creates `table netdev rlvs` with an ingress chain on `devices`,
    /// replacing one left behind by a daemon that did not stop cleanly.
    pub fn install(devices: &[String]) -> Result<Guard> {
        if devices.is_empty() {
            bail!("no interfaces to guard");
        }
        let devs: Vec<String> = devices.iter().map(|d| format!("\"{d}\"")).collect();
        let (first, last) = (rlvs_lvs::director::LPORT_FIRST, rlvs_lvs::director::LPORT_LAST);
        let mut sets = String::new();
        let mut rules = String::new();
        for (v, addr, ip) in [("4", "ipv4_addr", "ip"), ("6", "ipv6_addr", "ip6")] {
            for (name, ty) in [
                ("services", format!("{addr} . inet_proto . inet_service")),
                ("anyport", format!("{addr} . inet_proto")),
                ("natreplies", format!("{addr} . inet_proto . inet_service")),
                ("local", addr.to_string()),
                ("fnatsources", format!("{addr} . inet_proto . inet_service")),
                ("laddrs", addr.to_string()),
            ] {
                sets.push_str(&format!("\tset {name}{v} {{ type {ty}; }}\n"));
            }
            rules.push_str(&format!(
                "\t\t{ip} daddr . meta l4proto . th dport @services{v} drop\n\
                 \t\t{ip} daddr . meta l4proto @anyport{v} drop\n\
                 \t\t{ip} saddr . meta l4proto . th sport @natreplies{v} {ip} daddr != @local{v} drop\n\
                 \t\t{ip} saddr . meta l4proto . th sport @fnatsources{v} {ip} daddr @laddrs{v} th dport {first}-{last} drop\n"
            ));
        }
        let script = format!(
            "table netdev {TABLE}\ndelete table netdev {TABLE}\n\
             table netdev {TABLE} {{\n{sets}\tchain guard {{\n\
             \t\ttype filter hook ingress devices = {{ {} }} priority -500; policy accept;\n{rules}\t}}\n}}\n",
            devs.join(", "),
        );
        nft(&script)?;
        Ok(Guard { installed: true, sets: SetWriter::new()? })
    }

    /// Adds and removes set elements, both families, in one transaction
    /// (over nfnetlink: see nft_sets.rs). The sets (bpf/rlvs_xdp.c has the
    /// same rules in XDP):
    /// - services: (address, protocol, port), or (address, protocol) in
    ///   anyport for port-zero services, which take every port;
    /// - natreplies: NAT real servers (address, protocol, port), whose
    ///   replies to anyone but the director (local) the engine rewrites and
    ///   the kernel must not forward as they are;
    /// - fnatsources and laddrs: FULLNAT real servers and local addresses:
    ///   replies to the local addresses in rlvs's port range are the engine's.
    pub fn apply(&mut self, added: &[Rule], removed: &[Rule]) -> Result<()> {
        self.sets.apply(TABLE, added, removed)
    }

    pub fn remove(&mut self) {
        if self.installed {
            if let Err(e) = nft(&format!("delete table netdev {TABLE}\n")) {
                tracing::warn!(error = %e, "could not remove the nftables guard");
            }
            self.installed = false;
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.remove();
    }
}
