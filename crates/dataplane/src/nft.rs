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
        Ok(Guard { installed: true })
    }

    /// Makes the drop sets exactly what is given, for both families:
    /// - services: (address, protocol, port), or (address, protocol) for
    ///   port-zero services, which take every port;
    /// - NAT real servers (address, protocol, port): their replies to
    ///   anyone but the director itself, which the engine rewrites and the
    ///   kernel must not forward as they are;
    /// - the director's own addresses, whose traffic from real servers
    ///   (health checks, say) stays the kernel's;
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
        let carried = |p: Protocol| matches!(p, Protocol::Tcp | Protocol::Udp);
        let mut script = String::new();
        for v6 in [false, true] {
            let fam = |a: &IpAddr| a.is_ipv6() == v6;
            let v = if v6 { "6" } else { "4" };
            let services_of = |port_zero: bool| -> Vec<String> {
                services
                    .iter()
                    .filter(|k| k.fwmark == 0 && fam(&k.addr) && carried(k.protocol) && (k.port == 0) == port_zero)
                    .map(|k| {
                        if port_zero {
                            format!("{} . {}", k.addr, k.protocol.number())
                        } else {
                            format!("{} . {} . {}", k.addr, k.protocol.number(), k.port)
                        }
                    })
                    .collect()
            };
            let triples = |t: &[(IpAddr, Protocol, u16)]| -> Vec<String> {
                t.iter()
                    .filter(|(a, p, _)| fam(a) && carried(*p))
                    .map(|(a, p, port)| format!("{a} . {} . {port}", p.number()))
                    .collect()
            };
            let addrs = |a: &[IpAddr]| -> Vec<String> { a.iter().filter(|a| fam(a)).map(|a| a.to_string()).collect() };
            for (set, elems) in [
                ("services", services_of(false)),
                ("anyport", services_of(true)),
                ("natreplies", triples(nat_sources)),
                ("local", addrs(local)),
                ("fnatsources", triples(fnat_sources)),
                ("laddrs", addrs(laddrs)),
            ] {
                script.push_str(&format!("flush set netdev {TABLE} {set}{v}\n"));
                if !elems.is_empty() {
                    script.push_str(&format!("add element netdev {TABLE} {set}{v} {{ {} }}\n", elems.join(", ")));
                }
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
