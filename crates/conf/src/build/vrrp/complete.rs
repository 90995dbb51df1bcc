//! keepalived's vrrp_complete_init: every instance judged once all are
//! read, in keepalived's order, with its messages and resets.

use super::*;

impl Builder {
    /// keepalived's vrrp_complete_init over every instance once all are
    /// read: the minimal checks for all (vrid, interface), then each
    /// instance's completion in order. keepalived stops at the first
    /// instance that fails either; rlvs goes on with the others (they run)
    /// but, as keepalived, says nothing more about them.
    pub(in crate::build) fn complete_instances(
        &mut self,
        g: &GlobalDefs,
        pending: Vec<PendingInstance>,
    ) -> Vec<VrrpInstance> {
        let mut quiet = false;
        let mut keep = Vec::new();
        let mut ready = Vec::new();
        for p in pending {
            let mark = self.diags.len();
            let pos = p.v.pos.clone();
            let msg = if p.v.vrid == 0 {
                Some(format!("({}) the virtual router id must be set", p.v.name))
            } else if p.v.interface.is_none() {
                Some(format!("({}) Unknown interface!", p.v.name))
            } else {
                None
            };
            match msg {
                Some(m) => {
                    self.diags.push(Diag::error(&pos, m));
                    self.dropped_instances.push(p.v.name.clone());
                    if quiet {
                        self.diags.truncate(mark);
                    }
                    quiet = true;
                }
                None => ready.push(p),
            }
        }
        self.vrrp_min_cfg_failed = quiet;
        self.vrrp_complete_failed = quiet;
        for mut p in ready {
            let mark = self.diags.len();
            let before = self.dropped_instances.len();
            let done = self.complete_instance(&mut p.v, g, p.auth, p.v6, p.unicast_without_peers);
            if quiet {
                self.diags.truncate(mark);
            }
            if self.dropped_instances.len() > before {
                quiet = true;
                self.vrrp_complete_failed = true;
            }
            keep.extend(done);
        }
        keep
    }

    /// vrrp_complete_instance's rules that do not need the host's
    /// interfaces.
    pub(super) fn complete_instance(
        &mut self,
        v: &mut VrrpInstance,
        g: &GlobalDefs,
        (auth_type, auth_pass): (Option<bool>, Option<[u8; 8]>),
        v6: bool,
        unicast_without_peers: bool,
    ) -> Option<VrrpInstance> {
        let iname = v.name.clone();
        let pos = v.pos.clone();
        let err = |b: &mut Self, msg: String| b.diags.push(Diag::warning(&pos, msg));
        // The instance is dropped: an error (a reload is refused over it).
        let fatal = |b: &mut Self, msg: String| {
            b.diags.push(Diag::error(&pos, msg));
            b.dropped_instances.push(iname.clone());
        };
        // (The virtual router id and the interface were checked first, for
        // every instance: keepalived's chk_min_cfg, which runs before it
        // knows an instance is unicast, so every instance needs an
        // interface and its later unicast checks without one are never
        // reached.)
        let strict = v.strict_mode.unwrap_or(g.strict);
        // keepalived keeps an IPv6 instance at version 2 when told so before
        // its first address (and not strict); its checks below judge it as
        // that. rlvs runs every IPv6 instance as version 3, as RFC 5798 has it.
        let version = match (v6, v.version) {
            (true, Some(2)) if strict => {
                err(self, format!("({iname}) cannot use IPv6 with VRRP version 2; setting version 3"));
                3
            }
            (true, Some(2)) => 2,
            (true, _) => 3,
            (false, Some(ver)) => ver,
            (false, None) => g.version,
        };
        v.version = Some(if v6 { 3 } else { version });
        if v.vips.is_empty() {
            if version == 3 || strict {
                fatal(self, format!("({iname}) No VIP specified; at least one is required"));
                return None;
            }
            err(self, format!("({iname}) No VIP specified; at least one is sensible"));
        }
        if v.priority == 0 {
            v.priority = if v.state == Some(InitialState::Master) { PRIO_OWNER } else { PRIO_DEFAULT };
        }
        if v.state.is_none() {
            v.state = Some(if v.priority == PRIO_OWNER { InitialState::Master } else { InitialState::Backup });
        } else if strict && (v.state == Some(InitialState::Master)) != (v.priority == PRIO_OWNER) {
            err(self, format!("({iname}) State MASTER must match being address owner"));
            v.state = Some(if v.priority == PRIO_OWNER { InitialState::Master } else { InitialState::Backup });
        }
        v.auth = match (auth_type, auth_pass) {
            (None, _) => None,
            (Some(_), _) if strict => {
                err(self, format!("({iname}) Strict mode does not support authentication. Ignoring."));
                None
            }
            (Some(_), _) if version == 3 => {
                err(self, format!("({iname}) VRRP version 3 does not support authentication. Ignoring."));
                None
            }
            (Some(_), None) => {
                err(self, format!("({iname}) Authentication specified but no password given. Ignoring"));
                None
            }
            (Some(_), Some(p)) if p[0] == 0 => {
                err(self, format!("({iname}) Authentication specified but no password given. Ignoring"));
                None
            }
            (Some(true), Some(p)) => Some(Auth::Pass(p)),
            (Some(false), Some(_)) if v6 => {
                err(self, format!("({iname}) Cannot use AH authentication with IPv6. ignoring"));
                None
            }
            (Some(false), Some(_)) if v.state == Some(InitialState::Master) && v.priority != PRIO_OWNER => {
                err(self, format!("({iname}) Initial state master is incompatible with AH authentication - clearing"));
                v.state = Some(InitialState::Backup);
                Some(Auth::Ah)
            }
            (Some(false), Some(_)) => {
                self.diags.push(
                    Diag::warning(&pos, format!("({iname}) AH authentication is not implemented in rlvs"))
                        .with_hint("keepalived itself deprecates AH; adverts will not be authenticated"),
                );
                Some(Auth::Ah)
            }
        };
        let link_local = |a: &IpAddr| matches!(a, IpAddr::V6(x) if x.segments()[0] & 0xffc0 == 0xfe80);
        if unicast_without_peers {
            self.diags.push(Diag::warning(
                &pos,
                format!("({iname}) A unicast keyword has been specified without any unicast peers. Defaulting to multicast. This usage is deprecated - please update your configuration."),
            ));
        }
        if strict && v6 && v.unicast_peers.is_empty() && v.vips.first().is_some_and(|a| !link_local(&a.addr)) {
            err(self, format!("({iname}) the first IPv6 VIP address must be link local"));
        }
        // The count field is 8 bits, and the advert must fit a 1500-byte
        // frame: the rest are kept as excluded addresses, not advertised.
        let max_addr = if v6 {
            (1500 - 14 - 40 - 8) / 16
        } else {
            let auth = if version == 2 { 8 + if matches!(v.auth, Some(Auth::Ah)) { 24 } else { 0 } } else { 0 };
            ((1500 - 14 - 20 - 8 - auth) / 4).min(255)
        };
        if v.vips.len() > max_addr {
            err(
                self,
                format!(
                    "({iname}) Number of VIPs ({}) exceeds maximum/space available in packet (max {max_addr} addresses) - excess moved to eVIPs",
                    v.vips.len()
                ),
            );
            let excess = v.vips.split_off(max_addr);
            v.excluded_vips.splice(0..0, excess);
        }
        if let Some((own, _)) = v.interface.clone() {
            let before = v.track_interfaces.len();
            v.track_interfaces.retain(|t| t.name != own);
            if v.track_interfaces.len() != before {
                err(self, format!("({iname}) Ignoring track_interface {own} since own interface"));
            }
        }
        // An address owner's priority cannot move: weights on its tracked
        // scripts are dropped with the scripts (keepalived).
        if v.priority == PRIO_OWNER {
            let weighted: Vec<String> =
                v.track_scripts.iter().filter(|t| t.weight != 0).map(|t| t.name.clone()).collect();
            for name in &weighted {
                err(self, format!("({iname}) ignoring tracked script {name} with weights due to address_owner"));
            }
            v.track_scripts.retain(|t| t.weight == 0);
        }
        if v.priority == PRIO_OWNER && v.nopreempt {
            err(self, format!("({iname}) nopreempt is incompatible with priority 255. resetting nopreempt"));
            v.nopreempt = false;
        }
        if v.state == Some(InitialState::Master) {
            if v.nopreempt {
                err(self, format!("({iname}) Warning - nopreempt will not work with initial state MASTER - clearing"));
                v.nopreempt = false;
            }
            if !v.preempt_delay.is_zero() {
                err(
                    self,
                    format!("({iname}) Warning - preempt delay will not work with initial state MASTER - clearing"),
                );
                v.preempt_delay = Duration::ZERO;
            }
        }
        if !v.preempt_delay.is_zero() && strict {
            err(self, format!("({iname}) preempt_delay is incompatible with strict mode - resetting"));
            v.preempt_delay = Duration::ZERO;
        }
        if !v.preempt_delay.is_zero() && v.nopreempt {
            err(self, format!("({iname}) preempt_delay is incompatible with nopreempt mode - resetting"));
            v.preempt_delay = Duration::ZERO;
        }
        if v.advert_int.is_zero() {
            v.advert_int = Duration::from_secs(1);
        }
        let us = v.advert_int.as_micros() as u64;
        if version == 2 && !us.is_multiple_of(1_000_000) {
            err(
                self,
                format!("({iname}) VRRPv2 advertisement interval {:.6}s must be an integer. rounding", us as f64 / 1e6),
            );
            v.advert_int = Duration::from_secs(((us + 500_000) / 1_000_000).max(1));
        } else if version == 3 && !us.is_multiple_of(10_000) {
            err(
                self,
                format!(
                    "({iname}) VRRPv3 advertisement interval {:.6}s must be in units of 10ms - rounding",
                    us as f64 / 1e6
                ),
            );
            v.advert_int = Duration::from_micros(((us + 5_000) / 10_000).max(1) * 10_000);
        }
        // Sent in centiseconds in a 12-bit field (v3): 40.95 s at most.
        if version == 3 && v.advert_int > Duration::from_millis(40_950) {
            err(
                self,
                format!(
                    "({iname}) VRRPv3 advertisement interval {:.2}s is out of range. Must be less than 40.96s. Setting to 40.95s",
                    v.advert_int.as_secs_f64()
                ),
            );
            v.advert_int = Duration::from_millis(40_950);
        }
        if strict && v.down_timer_adverts.is_some_and(|d| d != 3) {
            err(self, format!("({iname}) down_timer_adverts is incompatible with strict mode - resetting"));
            v.down_timer_adverts = None;
        }
        if strict && version == 2 && v.priority != PRIO_OWNER && v.accept == Some(true) {
            err(
                self,
                format!("({iname}) warning - accept mode for VRRP version 2 does not comply with RFC3768 - resetting"),
            );
            v.accept = Some(false);
        }
        if v.mcast_dst_ip.is_some() && !v.unicast_peers.is_empty() {
            err(self, format!("({iname}) multicast destination specified with unicast - ignoring"));
            v.mcast_dst_ip = None;
        }
        if strict {
            if let Some(garp) = v.garp.as_mut() {
                if garp.lower_prio_repeat.is_some_and(|r| r != 0) {
                    err(self, format!("({iname}) Strict mode requires no repeat garps. resetting"));
                    garp.lower_prio_repeat = Some(0);
                }
                if garp.lower_prio_delay.is_some_and(|d| !d.is_zero()) {
                    err(self, format!("({iname}) Strict mode requires no repeat garp delay. resetting"));
                    garp.lower_prio_delay = Some(Duration::ZERO);
                }
            }
            if v.lower_prio_no_advert == Some(false) {
                err(self, format!("({iname}) Strict mode requires no lower priority advert. resetting"));
                v.lower_prio_no_advert = Some(true);
            }
            if v.higher_prio_send_advert == Some(true) {
                err(self, format!("({iname}) strict mode requires higher_prio_send_advert to be clear. resetting"));
                v.higher_prio_send_advert = Some(false);
            }
        }
        Some(v.clone())
    }
}
