//! The nftables guard that keeps the director's own kernel away from VIP
//! traffic the userspace engine forwards. Kernel IPVS takes such packets
//! before the local stack sees them; a userspace engine only gets a copy
//! (its ETH_P_ALL tap runs before the netdev ingress hook), so the stack's
//! copy must be dropped at ingress or it would answer with RSTs. ARP, ICMP and
//! every other port of the VIP still reach the kernel.

use anyhow::{bail, Context, Result};
use rlvs_lvs::{Protocol, ServiceKey};
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

pub const TABLE: &str = "rlvs";

pub struct Guard {
    installed: bool,
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
        let script = format!(
            "table netdev {TABLE}\ndelete table netdev {TABLE}\n\
             table netdev {TABLE} {{\n\
             \tset services4 {{ type ipv4_addr . inet_proto . inet_service; }}\n\
             \tset anyport4 {{ type ipv4_addr . inet_proto; }}\n\
             \tset natreplies4 {{ type ipv4_addr . inet_proto . inet_service; }}\n\
             \tset local4 {{ type ipv4_addr; }}\n\
             \tset fnatsources4 {{ type ipv4_addr . inet_proto . inet_service; }}\n\
             \tset laddrs4 {{ type ipv4_addr; }}\n\
             \tchain guard {{\n\
             \t\ttype filter hook ingress devices = {{ {} }} priority -500; policy accept;\n\
             \t\tip daddr . meta l4proto . th dport @services4 drop\n\
             \t\tip daddr . meta l4proto @anyport4 drop\n\
             \t\tip saddr . meta l4proto . th sport @natreplies4 ip daddr != @local4 drop\n\
             \t\tip saddr . meta l4proto . th sport @fnatsources4 ip daddr @laddrs4 th dport {}-{} drop\n\
             \t}}\n\
             }}\n",
            devs.join(", "),
            rlvs_lvs::director::LPORT_FIRST,
            rlvs_lvs::director::LPORT_LAST,
        );
        nft(&script)?;
        Ok(Guard { installed: true })
    }

    /// Makes the drop set exactly the given services.
    /// Makes the drop sets exactly what is given:
    /// - services: (address, protocol, port), or (address, protocol) for
    ///   port-zero services, which take every port;
    /// - NAT real servers (address, protocol, port): their replies to
    ///   anyone but the director itself, which the engine rewrites and the
    ///   kernel must not forward as they are;
    /// - the director's own addresses, whose traffic from real servers
    ///   (health checks, say) stays the kernel's.
    /// - FULLNAT real servers and local addresses: replies to the local
    ///   addresses in rlvs's port range are the engine's.
    pub fn update(
        &self,
        services: &[ServiceKey],
        nat_sources: &[(IpAddr, Protocol, u16)],
        local: &[IpAddr],
        fnat_sources: &[(IpAddr, Protocol, u16)],
        laddrs: &[IpAddr],
    ) -> Result<()> {
        let mut ports = Vec::new();
        let mut any = Vec::new();
        for k in services {
            if let (IpAddr::V4(a), p @ (Protocol::Tcp | Protocol::Udp), 0) = (k.addr, k.protocol, k.fwmark) {
                match k.port {
                    0 => any.push(format!("{a} . {}", p.number())),
                    port => ports.push(format!("{a} . {} . {port}", p.number())),
                }
            }
        }
        let triples = |v: &[(IpAddr, Protocol, u16)]| -> Vec<String> {
            v.iter()
                .filter_map(|(a, p, port)| match a {
                    IpAddr::V4(a) => Some(format!("{a} . {} . {port}", p.number())),
                    _ => None,
                })
                .collect()
        };
        let v4 = |v: &[IpAddr]| -> Vec<String> { v.iter().filter(|a| a.is_ipv4()).map(|a| a.to_string()).collect() };
        let mut script = String::new();
        for (set, elems) in [
            ("services4", ports),
            ("anyport4", any),
            ("natreplies4", triples(nat_sources)),
            ("local4", v4(local)),
            ("fnatsources4", triples(fnat_sources)),
            ("laddrs4", v4(laddrs)),
        ] {
            script.push_str(&format!("flush set netdev {TABLE} {set}\n"));
            if !elems.is_empty() {
                script.push_str(&format!("add element netdev {TABLE} {set} {{ {} }}\n", elems.join(", ")));
            }
        }
        nft(&script)
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
