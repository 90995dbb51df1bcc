//! keepalived's validate_check_config: what a virtual server's settings
//! mean together (ports, quorum, sorry server), judged once it is read.

use super::*;

impl Builder {
    /// keepalived's validate_check_config for one virtual server: one-packet
    /// scheduling, port 0, quorum and hysteresis, and real and sorry server
    /// ports that DR and TUN cannot change (reset to the service's).
    pub(super) fn complete_virtual_server(&mut self, node: &Node, vs: &mut VirtualServer, proto: Option<VsProtocol>) {
        let name = vs_name(vs, proto);
        let warn = |b: &mut Self, m: String| b.diags.push(Diag::warning(node.pos(), m));
        let vport = match vs.target {
            VsTarget::Addr { port, .. } => Some(port),
            _ => None,
        };
        if vport.is_some() {
            if vs.ops && vs.protocol != VsProtocol::Udp {
                warn(self, format!("Virtual server {name}: one packet scheduling requires UDP - resetting"));
                vs.ops = false;
            }
            if vport == Some(0) && vs.persistence_timeout.is_none() {
                warn(self, format!("Virtual server {name}: zero port only valid for persistent services - setting"));
                vs.persistence_timeout = Some(360);
            }
        }
        if let Some((sa, sp)) = vs.sorry_server {
            let p = proto_name(proto);
            if let Some(rs) = vs.real_servers.iter().find(|r| r.addr == sa && r.port == sp) {
                if rs.inhibit_on_failure != vs.sorry_server_inhibit {
                    let verb = if rs.inhibit_on_failure { "sett" } else { "clear" };
                    let m = format!(
                        "Virtual server {name}: real server [{}]:{p}:{} matches sorry server, but inhibit setting differs, {verb}ing on sorry server",
                        rs.addr, rs.port
                    );
                    warn(self, m);
                    vs.sorry_server_inhibit = rs.inhibit_on_failure;
                }
            }
        }
        let weight_sum: u64 = vs.real_servers.iter().map(|r| r.weight.max(0) as u64).sum();
        if u64::from(vs.quorum) > weight_sum && !vs.real_servers.is_empty() {
            warn(
                self,
                format!(
                    "Warning - quorum {} for {name} exceeds total weight of real servers {weight_sum}, reducing quorum to {weight_sum}",
                    vs.quorum
                ),
            );
            vs.quorum = weight_sum as u32;
        }
        if vs.hysteresis >= vs.quorum && !vs.real_servers.is_empty() {
            let h = vs.quorum.saturating_sub(1);
            warn(
                self,
                format!(
                    "Virtual server {name}: hysteresis {} >= quorum {}; setting hysteresis to {h}",
                    vs.hysteresis, vs.quorum
                ),
            );
            vs.hysteresis = h;
        }
        if let Some(vp) = vport {
            let p = proto_name(proto);
            // NAT and rlvs's FULLNAT map ports; DR and TUN cannot.
            for rs in vs.real_servers.iter_mut().filter(|r| matches!(r.lvs_method, LbKind::Dr | LbKind::Tun)) {
                if rs.port == 0 {
                    rs.port = vp;
                } else if rs.port != vp {
                    let m = format!(
                        "WARNING - virtual server {name} and real server [{}]:{p}:{} ports don't match - resetting",
                        rs.addr, rs.port
                    );
                    self.diags.push(Diag::warning(&rs.pos, m));
                    rs.port = vp;
                }
            }
            let sorry_nat = !matches!(vs.sorry_server_lvs_method.unwrap_or(vs.lb_kind), LbKind::Dr | LbKind::Tun);
            if let Some((a, sp)) = vs.sorry_server.filter(|_| !sorry_nat) {
                if sp == 0 {
                    vs.sorry_server = Some((a, vp));
                } else if sp != vp {
                    warn(
                        self,
                        format!("WARNING - virtual server {name} and sorry server ports don't match - resetting"),
                    );
                    vs.sorry_server = Some((a, vp));
                }
            }
        }
    }

    /// An address argument, or keepalived's message for one that does not
    /// read.
    pub(super) fn address(&mut self, n: &Node, message: impl Fn(&str) -> String) -> Option<IpAddr> {
        let text = self.need(n, 0)?;
        let a = parse_ip(text);
        if a.is_none() {
            self.bad(n, &message(text));
        }
        a
    }

    /// Once every group is read: a fwmark service balances by mark, so a
    /// real server's port means nothing there (keepalived warns and drops
    /// it).
    pub(in crate::build) fn check_fwmark_ports(&mut self, c: &mut Config) {
        for vs in &mut c.virtual_servers {
            let name = vs_name(vs, Some(vs.protocol));
            let p = proto_name(Some(vs.protocol));
            let sorry_port = vs
                .sorry_server
                .filter(|_| matches!(vs.sorry_server_lvs_method.unwrap_or(vs.lb_kind), LbKind::Dr | LbKind::Tun))
                .map(|(_, port)| port)
                .filter(|&port| port != 0);
            // A fwmark service has no protocol of its own (keepalived: none).
            let rs_proto = if matches!(vs.target, VsTarget::Fwmark(_)) { "none" } else { p };
            let rs_name = |rs: &RealServer| format!("[{}]:{rs_proto}:{}", rs.addr, rs.port);
            let fixed_port = |rs: &&mut RealServer| rs.port != 0 && matches!(rs.lvs_method, LbKind::Dr | LbKind::Tun);
            match &vs.target {
                VsTarget::Fwmark(_) => {
                    for rs in vs.real_servers.iter_mut().filter(fixed_port) {
                        let m = format!(
                            "WARNING - fwmark virtual server {name}, real server {} has port specified - clearing",
                            rs_name(rs)
                        );
                        self.diags.push(Diag::warning(&rs.pos, m));
                        rs.port = 0;
                    }
                    if sorry_port.is_some() {
                        let m = format!("WARNING - virtual server {name}, sorry server has port specified - clearing");
                        self.diags.push(Diag::warning(&vs.pos, m));
                        if let Some(s) = vs.sorry_server.as_mut() {
                            s.1 = 0;
                        }
                    }
                }
                VsTarget::Group(g) => {
                    let Some(group) = c.vs_groups.iter().find(|x| &x.name == g) else { continue };
                    if group.entries.iter().any(|(e, _)| matches!(e, VsgEntry::Fwmark(_))) {
                        for rs in vs.real_servers.iter_mut().filter(fixed_port) {
                            let m = format!(
                                "WARNING - fwmark virtual server {name}, real server {} has port specified - port will be ignored",
                                rs_name(rs)
                            );
                            self.diags.push(Diag::warning(&rs.pos, m));
                        }
                        if sorry_port.is_some() {
                            let m = format!(
                                "WARNING - fwmark virtual server {name}, sorry server has port specified - port will be ignored"
                            );
                            self.diags.push(Diag::warning(&vs.pos, m));
                        }
                    }
                    for (e, _) in &group.entries {
                        let VsgEntry::Range { first, last, port } = e else { continue };
                        let entry =
                            if first == last { format!("{first},{port}") } else { format!("{first}-{last},{port}") };
                        for rs in vs.real_servers.iter_mut().filter(fixed_port).filter(|r| r.port != *port) {
                            let m = format!(
                                "virtual server {name}:[{entry}] and real server {} ports don't match",
                                rs_name(rs)
                            );
                            self.diags.push(Diag::warning(&rs.pos, m));
                        }
                        if sorry_port.is_some_and(|sp| sp != *port) {
                            let m = format!("WARNING - virtual server {name}, sorry server has port specified - port will be ignored");
                            self.diags.push(Diag::warning(&vs.pos, m));
                        }
                    }
                }
                VsTarget::Addr { .. } => {}
            }
        }
    }
}

pub(super) fn proto_name(p: Option<VsProtocol>) -> &'static str {
    match p {
        Some(VsProtocol::Tcp) => "tcp",
        Some(VsProtocol::Udp) => "udp",
        Some(VsProtocol::Sctp) => "sctp",
        None => "none",
    }
}

/// keepalived's FMT_VS: `[10.1.1.100]:tcp:80`, `FWM 12`, `[GROUP]:0`.
pub(in crate::build) fn vs_name(vs: &VirtualServer, proto: Option<VsProtocol>) -> String {
    match &vs.target {
        VsTarget::Addr { addr, port } => format!("[{addr}]:{}:{port}", proto_name(proto)),
        VsTarget::Fwmark(m) => format!("FWM {m}"),
        VsTarget::Group(g) => format!("[{g}]:0"),
    }
}
